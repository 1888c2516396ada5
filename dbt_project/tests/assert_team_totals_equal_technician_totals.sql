{#- Team marts aggregate the same facts as the technician marts: per month, the counts summed over
    teams equal the counts summed over technicians (facts without a team aside). Returns mismatches. -#}
with technician_totals as (
    select
        period_start,
        sum(csat_n) as csat_n,
        sum(avg_handling_time_n) as avg_handling_time_n,
        sum(problem_resolution_rate_n) as problem_resolution_rate_n,
        sum(supervisor_review_n) as supervisor_review_n
    from {{ ref('kpi_technician_monthly') }}
    group by period_start
),

team_totals as (
    select
        period_start,
        sum(csat_n) as csat_n,
        sum(avg_handling_time_n) as avg_handling_time_n,
        sum(problem_resolution_rate_n) as problem_resolution_rate_n,
        sum(supervisor_review_n) as supervisor_review_n
    from {{ ref('kpi_team_monthly') }}
    group by period_start
),

unassigned as (
    select
        {{ period_start('month', 'responded_date') }} as period_start,
        count(*) as csat_n,
        0 as avg_handling_time_n,
        0 as problem_resolution_rate_n,
        0 as supervisor_review_n
    from {{ ref('fct_survey_responses') }}
    where team_id is null
    group by {{ period_start('month', 'responded_date') }}
    union all
    select
        {{ period_start('month', 'resolved_date') }},
        0,
        count(*),
        0,
        0
    from {{ ref('fct_service_tickets') }}
    where team_id is null and is_resolved
    group by {{ period_start('month', 'resolved_date') }}
    union all
    select
        {{ period_start('month', 'received_date') }},
        0,
        0,
        count(*),
        0
    from {{ ref('fct_complaints') }}
    where team_id is null
    group by {{ period_start('month', 'received_date') }}
    union all
    select
        period_start,
        0,
        0,
        0,
        count(*)
    from {{ ref('fct_supervisor_reviews') }}
    where team_id is null
    group by period_start
),

unassigned_totals as (
    select
        period_start,
        sum(csat_n) as csat_n,
        sum(avg_handling_time_n) as avg_handling_time_n,
        sum(problem_resolution_rate_n) as problem_resolution_rate_n,
        sum(supervisor_review_n) as supervisor_review_n
    from unassigned
    group by period_start
)

select technician_totals.*
from technician_totals
left join team_totals
    on technician_totals.period_start = team_totals.period_start
left join unassigned_totals
    on technician_totals.period_start = unassigned_totals.period_start
where technician_totals.csat_n <> coalesce(team_totals.csat_n, 0) + coalesce(unassigned_totals.csat_n, 0)
    or technician_totals.avg_handling_time_n
        <> coalesce(team_totals.avg_handling_time_n, 0) + coalesce(unassigned_totals.avg_handling_time_n, 0)
    or technician_totals.problem_resolution_rate_n
        <> coalesce(team_totals.problem_resolution_rate_n, 0) + coalesce(unassigned_totals.problem_resolution_rate_n, 0)
    or technician_totals.supervisor_review_n
        <> coalesce(team_totals.supervisor_review_n, 0) + coalesce(unassigned_totals.supervisor_review_n, 0)
