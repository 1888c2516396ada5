{#- One row per complaint (newest version); the technician's team when it was received.
    Incremental (delete+insert on complaint_id): see macros/incremental.sql and docs/incremental.md. -#}
-- depends_on: {{ ref('stg_technicians__roster') }}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='complaint_id',
    on_schema_change='fail',
) }}
{%- set since = fact_refresh_since() %}
{%- set acceptance_gap = 'accepted_at is not null and acceptance_business_hours is null' %}
with complaints as (
    {%- if since %}
    {%- set keys = fact_keys_to_refresh('complaints', 'complaint_id', 'cast(staged.received_at as date)', since, acceptance_gap) %}
    select * from ({{ stg_complaints__complaints_select(keys) }}) as staged
    where {{ fact_rows_to_refresh('complaint_id', 'cast(staged.received_at as date)', since, acceptance_gap) }}
    {%- else %}
    select * from {{ ref('stg_complaints__complaints') }} as staged
    {%- endif %}
),

calendar as (
    select * from {{ ref('int_work_calendar') }}
),

technicians as (
    select * from {{ ref('dim_technicians') }}
),

durations as (
    select
        complaints.*,
        cast(complaints.received_at as date) as received_date,
        {{ hours_between('complaints.received_at', 'complaints.accepted_at') }} as acceptance_hours,
        {{ business_hours_between('complaints.received_at', 'received_day', 'complaints.accepted_at', 'accepted_day') }}
            as acceptance_business_hours,
        {{ hours_between('complaints.received_at', 'complaints.resolved_at') }} as resolution_hours
    from complaints
    left join calendar as received_day
        on cast(complaints.received_at as date) = received_day.calendar_date
    left join calendar as accepted_day
        on cast(complaints.accepted_at as date) = accepted_day.calendar_date
),

derived as (
    select
        durations.complaint_id,
        durations.ticket_id,
        durations.customer_id,
        durations.technician_id,
        technicians.team_id,
        durations.category,
        durations.severity,
        durations.status,
        durations.received_at,
        durations.accepted_at,
        durations.resolved_at,
        durations.updated_at,
        durations.received_date,
        durations.acceptance_hours,
        durations.acceptance_business_hours,
        durations.resolution_hours,
        durations.accepted_at is not null as is_accepted,
        durations.resolved_at is not null or durations.status in ('resolved', 'closed') as is_resolved,
        coalesce(durations.resolution_confirmed, false) as is_resolution_confirmed,
        (
            (durations.resolved_at is not null or durations.status in ('resolved', 'closed'))
            and coalesce(durations.resolution_confirmed, false)
        ) as is_problem_resolved,
        durations.loaded_at as _loaded_at
    from durations
    left join technicians
        on durations.technician_id = technicians.technician_id
        and {{ scd2_valid_on('technicians', 'durations.received_date') }}
),

final as (
    select
        derived.*,
        {{ replaced_date('derived.received_date', 'previous', 'received_date') }} as _replaced_received_date,
        {{ fact_built_at('previous', 'derived', 'complaint_id', ['team_id', 'acceptance_business_hours']) }}
            as _built_at
    from derived
    {%- if is_incremental() %}
    left join {{ this }} as previous
        on derived.complaint_id = previous.complaint_id
    {%- endif %}
)

select * from final
