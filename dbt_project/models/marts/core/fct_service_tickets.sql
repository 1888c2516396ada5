{#- One row per ticket (its newest version), local timestamps, durations in calendar and business
    hours, SLA result, the technician's team when the ticket was created.
    Incremental (delete+insert on ticket_id): see macros/incremental.sql and docs/incremental.md. -#}
-- depends_on: {{ ref('stg_technicians__roster') }}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='ticket_id',
    on_schema_change='fail',
) }}
{%- set since = fact_refresh_since() %}
{%- set business_hours_gap -%}
    (first_response_at is not null and first_response_business_hours is null)
    or (is_resolved and handling_business_hours is null)
{%- endset %}
with tickets as (
    {%- if since %}
    {%- set keys = fact_keys_to_refresh('tickets', 'ticket_id', 'cast(staged.created_at as date)', since, business_hours_gap) %}
    select * from ({{ stg_tickets__tickets_select(keys) }}) as staged
    where {{ fact_rows_to_refresh('ticket_id', 'cast(staged.created_at as date)', since, business_hours_gap) }}
    {%- else %}
    select * from {{ ref('stg_tickets__tickets') }} as staged
    {%- endif %}
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
        -- null when the source does not say (not measured is not zero)
        durations.reopened_count > 0 as is_reopened,
        -- the source's own deadline where the ticket has one, else the priority's target
        case
            when durations.sla_due_at is not null then 'source_due_date'
            when sla_targets.target_hours is not null then 'priority_target'
        end as sla_rule,
        case
            when durations.sla_due_at is not null
                then {{ hours_between('durations.created_at', 'durations.sla_due_at') }}
            else sla_targets.target_hours
        end as sla_target_hours,
        case when durations.sla_due_at is not null then 'calendar' else sla_targets.hours_basis end
            as sla_hours_basis,
        (
            (durations.first_response_at < durations.created_at)
            or (durations.resolved_at < coalesce(durations.first_response_at, durations.created_at))
            or (durations.closed_at < durations.resolved_at)
            or (durations.resolved_at is null and durations.closed_at is not null)
        ) as has_stage_order_issue_raw
    from durations
    left join sla_targets
        on durations.priority = sla_targets.priority
),

derived as (
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
        flagged.sla_due_at,
        flagged.is_resolved,
        flagged.is_repair,
        flagged.is_cancelled,
        flagged.is_first_time_fix,
        flagged.is_reopened,
        flagged.first_response_hours,
        flagged.first_response_business_hours,
        case when flagged.is_resolved then flagged.handling_hours end as handling_hours,
        case when flagged.is_resolved then flagged.handling_business_hours end as handling_business_hours,
        flagged.sla_rule,
        flagged.sla_target_hours,
        flagged.sla_hours_basis,
        case
            when not flagged.is_resolved or flagged.sla_target_hours is null then null
            when flagged.sla_rule = 'source_due_date' then flagged.resolved_at <= flagged.sla_due_at
            when flagged.sla_hours_basis = 'business'
                then flagged.handling_business_hours <= flagged.sla_target_hours
            else flagged.handling_hours <= flagged.sla_target_hours
        end as is_sla_met,
        coalesce(flagged.has_stage_order_issue_raw, false) as has_stage_order_issue,
        flagged.loaded_at as _loaded_at
    from flagged
    left join technicians
        on flagged.technician_id = technicians.technician_id
        and {{ scd2_valid_on('technicians', 'flagged.created_date') }}
),

final as (
    select
        derived.*,
        {{ replaced_date('derived.created_date', 'previous', 'created_date') }} as _replaced_created_date,
        {{ replaced_date('derived.resolved_date', 'previous', 'resolved_date') }} as _replaced_resolved_date,
        {{ fact_built_at('previous', 'derived', 'ticket_id', [
            'team_id', 'first_response_business_hours', 'handling_business_hours']) }} as _built_at,
        {{ fact_columns_built_at('previous', 'derived', 'ticket_id', [
            'created_date', 'technician_id', 'team_id', 'first_response_hours', 'first_response_business_hours'],
            '_created_built_at') }} as _created_built_at
    from derived
    {%- if is_incremental() %}
    left join {{ this }} as previous
        on derived.ticket_id = previous.ticket_id
    {%- endif %}
)

select * from final
