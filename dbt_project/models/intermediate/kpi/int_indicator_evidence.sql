{{ config(materialized='view') }}
{#- The facts behind every indicator value (audit trail): filter by indicator_code, technician_id or
    team_id and activity_date within the period to list the rows a KPI value was computed from.
    A view: at tier L it would be ~10x the ticket count. -#}
with tickets as (
    select * from {{ ref('fct_service_tickets') }}
),

complaints as (
    select * from {{ ref('fct_complaints') }}
),

responses as (
    select * from {{ ref('fct_survey_responses') }}
),

reviews as (
    select * from {{ ref('fct_supervisor_reviews') }}
),

{%- set ticket_rules = [
    ('avg_handling_time', 'resolved_date', 'is_resolved'),
    ('mttr', 'resolved_date', 'is_resolved and is_repair'),
    ('sla_attainment', 'resolved_date', 'is_resolved and is_sla_met is not null'),
    ('first_time_fix_rate', 'resolved_date', 'is_resolved and is_repair and is_first_time_fix is not null'),
    ('reopen_rate', 'resolved_date', 'is_resolved'),
    ('complaint_rate', 'resolved_date', 'is_resolved'),
    ('first_response_time', 'created_date', 'first_response_hours is not null'),
] %}
{%- set survey_rules = [
    ('csat', 'overall_score is not null'),
    ('customer_rating', 'overall_score is not null'),
    ('nps', 'nps_bucket is not null'),
    ('service_attitude', 'attitude_score is not null'),
    ('technical_level', 'technical_score is not null'),
] %}
{%- set complaint_rules = [
    ('complaint_acceptance_time', 'acceptance_hours is not null'),
    ('problem_resolution_rate', '1 = 1'),
    ('complaint_rate', '1 = 1'),
] %}

evidence as (
    {%- for code, date_column, condition in ticket_rules %}
    select
        '{{ code }}' as indicator_code,
        technician_id,
        team_id,
        {{ date_column }} as activity_date,
        'ticket' as source_type,
        ticket_id as source_id
    from tickets
    where {{ condition }}
    union all
    {%- endfor %}
    {%- for code, condition in survey_rules %}
    select
        '{{ code }}' as indicator_code,
        technician_id,
        team_id,
        responded_date as activity_date,
        'survey' as source_type,
        response_id as source_id
    from responses
    where {{ condition }}
    union all
    {%- endfor %}
    {%- for code, condition in complaint_rules %}
    select
        '{{ code }}' as indicator_code,
        technician_id,
        team_id,
        received_date as activity_date,
        'complaint' as source_type,
        complaint_id as source_id
    from complaints
    where {{ condition }}
    union all
    {%- endfor %}
    select
        'supervisor_review' as indicator_code,
        technician_id,
        team_id,
        period_start as activity_date,
        'supervisor_review' as source_type,
        review_id as source_id
    from reviews
    where score is not null
)

select * from evidence
