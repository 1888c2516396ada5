{#- One row per ticket (its newest version), local timestamps, durations in calendar and business
    hours, SLA result, the technician's team when the ticket was created. -#}
with tickets as (
    select * from {{ ref('stg_tickets__tickets') }}
),

calendar as (
    select * from {{ ref('int_work_calendar') }}
),

technicians as (
    select * from {{ ref('dim_technicians') }}
),

sla_targets as (
    select * from {{ ref('sla_targets') }}
),

durations as (
    select
        tickets.*,
        cast(tickets.created_at as date) as created_date,
        cast(tickets.resolved_at as date) as resolved_date,
        {{ hours_between('tickets.created_at', 'tickets.first_response_at') }} as first_response_hours,
        {{ business_hours_between('tickets.created_at', 'created_day', 'tickets.first_response_at', 'response_day') }}
            as first_response_business_hours,
        {{ hours_between('tickets.created_at', 'tickets.resolved_at') }} as handling_hours,
        {{ business_hours_between('tickets.created_at', 'created_day', 'tickets.resolved_at', 'resolved_day') }}
            as handling_business_hours
    from tickets
    left join calendar as created_day
        on cast(tickets.created_at as date) = created_day.calendar_date
    left join calendar as response_day
        on cast(tickets.first_response_at as date) = response_day.calendar_date
    left join calendar as resolved_day
        on cast(tickets.resolved_at as date) = resolved_day.calendar_date
),

flagged as (
    select
        durations.*,
        durations.status in ('resolved', 'closed') and durations.resolved_at is not null as is_resolved,
        durations.service_type = 'repair' as is_repair,
        durations.status = 'cancelled' as is_cancelled,
        coalesce(durations.first_time_fix, durations.onsite_visits <= 1) as is_first_time_fix,
        coalesce(durations.reopened_count, 0) > 0 as is_reopened,
        sla_targets.target_hours as sla_target_hours,
        sla_targets.hours_basis as sla_hours_basis,
        (durations.first_response_at < durations.created_at)
            or (durations.resolved_at < coalesce(durations.first_response_at, durations.created_at))
            or (durations.closed_at < durations.resolved_at)
            or (durations.resolved_at is null and durations.closed_at is not null)
            as has_stage_order_issue_raw
    from durations
    left join sla_targets
        on durations.priority = sla_targets.priority
),

final as (
    select
        flagged.ticket_id,
        flagged.technician_id,
        technicians.team_id,
        flagged.customer_id,
        flagged.product_id,
        flagged.status,
        flagged.service_type,
        flagged.priority,
        flagged.channel,
        flagged.created_at,
        flagged.first_response_at,
        flagged.resolved_at,
        flagged.closed_at,
        flagged.updated_at,
        flagged.created_date,
        flagged.resolved_date,
        flagged.onsite_visits,
        flagged.first_time_fix,
        flagged.reopened_count,
        flagged.is_resolved,
        flagged.is_repair,
        flagged.is_cancelled,
        flagged.is_first_time_fix,
        flagged.is_reopened,
        flagged.first_response_hours,
        flagged.first_response_business_hours,
        case when flagged.is_resolved then flagged.handling_hours end as handling_hours,
        case when flagged.is_resolved then flagged.handling_business_hours end as handling_business_hours,
        flagged.sla_target_hours,
        flagged.sla_hours_basis,
        case
            when not flagged.is_resolved or flagged.sla_target_hours is null then null
            when flagged.sla_hours_basis = 'business'
                then flagged.handling_business_hours <= flagged.sla_target_hours
            else flagged.handling_hours <= flagged.sla_target_hours
        end as is_sla_met,
        coalesce(flagged.has_stage_order_issue_raw, false) as has_stage_order_issue
    from flagged
    left join technicians
        on flagged.technician_id = technicians.technician_id
        and {{ scd2_valid_on('technicians', 'flagged.created_date') }}
)

select * from final
