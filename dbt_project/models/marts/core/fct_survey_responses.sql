{#- One row per survey response; NPS bucket; the technician's team when the customer responded. -#}
with responses as (
    select * from {{ ref('stg_surveys__responses') }}
),

technicians as (
    select * from {{ ref('dim_technicians') }}
),

bucketed as (
    select
        *,
        cast(responded_at as date) as responded_date,
        overall_score >= 4 as is_satisfied,
        case
            when nps_score is null then null
            when nps_score >= 9 then 'promoter'
            when nps_score >= 7 then 'passive'
            else 'detractor'
        end as nps_bucket
    from responses
),

final as (
    select
        bucketed.response_id,
        bucketed.ticket_id,
        bucketed.technician_id,
        technicians.team_id,
        bucketed.customer_id,
        bucketed.sent_at,
        bucketed.responded_at,
        bucketed.responded_date,
        bucketed.overall_score,
        bucketed.attitude_score,
        bucketed.technical_score,
        bucketed.timeliness_score,
        bucketed.nps_score,
        bucketed.nps_bucket,
        bucketed.is_satisfied,
        bucketed.comment
    from bucketed
    left join technicians
        on bucketed.technician_id = technicians.technician_id
        and {{ scd2_valid_on('technicians', 'bucketed.responded_date') }}
)

select * from final
