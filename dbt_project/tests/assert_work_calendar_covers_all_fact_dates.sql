{#- Business hours need the working calendar on every date a duration starts or ends: a date missing
    from raw.work_calendar would silently give null business hours. Returns the uncovered dates;
    fix by writing a wider calendar (ingestion.work_calendar.write_work_calendar). -#}
with calendar as (
    select calendar_date from {{ ref('int_work_calendar') }}
),

fact_dates as (
    select cast(created_at as date) as fact_date from {{ ref('fct_service_tickets') }}
    union
    select cast(first_response_at as date) from {{ ref('fct_service_tickets') }}
    union
    select cast(resolved_at as date) from {{ ref('fct_service_tickets') }}
    union
    select cast(received_at as date) from {{ ref('fct_complaints') }}
    union
    select cast(accepted_at as date) from {{ ref('fct_complaints') }}
)

select fact_dates.fact_date
from fact_dates
left join calendar
    on fact_dates.fact_date = calendar.calendar_date
where fact_dates.fact_date is not null
    and calendar.calendar_date is null
