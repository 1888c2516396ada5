{#- One row per supervisor review (one score per technician and month); the technician's team on the
    last day of the reviewed month. -#}
with reviews as (
    select * from {{ ref('stg_supervisor_reviews__reviews') }}
),

technicians as (
    select * from {{ ref('dim_technicians') }}
),

periods as (
    select
        *,
        {{ period_end('month', 'period_start') }} as period_end
    from reviews
),

final as (
    select
        periods.review_id,
        periods.technician_id,
        technicians.team_id,
        periods.reviewer_id,
        periods.period_start,
        periods.period_end,
        periods.score,
        periods.reviewed_at,
        periods.comment
    from periods
    left join technicians
        on periods.technician_id = technicians.technician_id
        and {{ scd2_valid_on('technicians', 'periods.period_end') }}
)

select * from final
