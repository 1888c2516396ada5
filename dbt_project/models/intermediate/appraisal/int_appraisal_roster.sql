{#-
    The technicians to appraise: one row per technician and period (month, quarter, year) in which the
    technician was active (hired on or before the period end, not left before the period start).
    The periods are those int_indicator_values holds for technicians. team_id is the team at the end of the
    period (the SCD2 version in force on period_end; before the first version, the first one).
    hire_date / leave_date come from the technician's latest version.
-#}
{{ period_mart_config(['period_type', 'period_start']) }}
{%- set months = touched_months() %}
with

indicator_values as (
    select * from {{ ref('int_indicator_values') }}
),

technicians as (
    select * from {{ ref('dim_technicians') }}
),

periods as (
    select distinct
        period_type,
        period_start,
        period_end,
        period_label
    from indicator_values
    where subject_type = 'technician'
        and {{ touched_period_filter(months=months) }}
),

technician_versions as (
    select
        technician_id,
        team_id,
        cast(valid_from as date) as valid_from,
        row_number() over (
            partition by technician_id
            order by valid_from desc
        ) as recency_rank,
        hire_date,
        leave_date
    from technicians
),

latest_versions as (
    select
        technician_id,
        hire_date,
        leave_date
    from technician_versions
    where recency_rank = 1
),

active_in_period as (
    select
        periods.period_type,
        periods.period_start,
        periods.period_end,
        periods.period_label,
        latest_versions.technician_id,
        latest_versions.hire_date,
        latest_versions.leave_date
    from periods
    cross join latest_versions
    where
        (latest_versions.hire_date is null or latest_versions.hire_date <= periods.period_end)
        and (latest_versions.leave_date is null or latest_versions.leave_date >= periods.period_start)
),

team_at_period_end as (
    select
        active_in_period.period_type,
        active_in_period.period_start,
        active_in_period.technician_id,
        technician_versions.team_id,
        row_number() over (
            partition by active_in_period.period_type, active_in_period.period_start, active_in_period.technician_id
            order by
                case when technician_versions.valid_from <= active_in_period.period_end then 0 else 1 end,
                case
                    when technician_versions.valid_from <= active_in_period.period_end
                        then technician_versions.valid_from
                end desc,
                technician_versions.valid_from
        ) as version_rank
    from active_in_period
    inner join technician_versions
        on active_in_period.technician_id = technician_versions.technician_id
)

select
    active_in_period.technician_id,
    team_at_period_end.team_id,
    active_in_period.period_type,
    active_in_period.period_start,
    active_in_period.period_end,
    active_in_period.period_label,
    active_in_period.hire_date,
    active_in_period.leave_date
from active_in_period
inner join team_at_period_end
    on active_in_period.period_type = team_at_period_end.period_type
    and active_in_period.period_start = team_at_period_end.period_start
    and active_in_period.technician_id = team_at_period_end.technician_id
    and team_at_period_end.version_rank = 1
