{#- One row per team; name and region from the team's most recent roster row. -#}
with technicians as (
    select * from {{ ref('dim_technicians') }}
),

ranked as (
    select
        team_id,
        team_name,
        region,
        manager_id,
        row_number() over (
            partition by team_id
            order by valid_from desc, updated_at desc nulls last, technician_id asc
        ) as recency_rank
    from technicians
),

members as (
    select
        team_id,
        count(distinct technician_id) as technicians_ever_count,
        count(distinct case when is_current then technician_id end) as current_technicians_count,
        min(valid_from) as first_valid_from
    from technicians
    group by team_id
),

final as (
    select
        ranked.team_id,
        ranked.team_name,
        ranked.region,
        ranked.manager_id,
        members.technicians_ever_count,
        members.current_technicians_count,
        members.first_valid_from
    from ranked
    inner join members
        on ranked.team_id = members.team_id
    where ranked.recency_rank = 1
)

select * from final
