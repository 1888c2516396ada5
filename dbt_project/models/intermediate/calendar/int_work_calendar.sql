{#- One row per calendar date with the working seconds of the day and of all earlier days:
    the basis of business_hours_between() (macros/business_hours.sql). -#}
with days as (
    select * from {{ ref('stg_work_calendar__days') }}
),

with_seconds as (
    select
        calendar_date,
        is_workday,
        is_holiday,
        holiday_name,
        is_makeup_workday,
        is_estimated,
        case
            when is_workday then {{ workday_end_seconds() }} - {{ workday_start_seconds() }}
            else 0
        end as work_seconds
    from days
),

cumulated as (
    select
        *,
        coalesce(
            sum(work_seconds) over (
                order by calendar_date
                rows between unbounded preceding and 1 preceding
            ),
            0
        ) as cum_work_seconds_before
    from with_seconds
)

select * from cumulated
