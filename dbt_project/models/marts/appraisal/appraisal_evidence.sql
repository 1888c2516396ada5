{#-
    The facts behind each breakdown value: one row per technician, period, indicator and source record
    (ticket, survey, complaint, supervisor review) attributed to a day within the period.
    The value of an indicator does not depend on the method, so evidence is not repeated per method:
    join a breakdown row on (technician_id, period_type, period_start, indicator_code).
-#}
{{ period_mart_config(['period_type', 'period_start']) }}
{%- set months = touched_months() %}
with

indicator_evidence as (
    select * from {{ ref('int_indicator_evidence') }}
    {%- set from_date = touched_from_date(months) %}
    {%- if from_date is not none %}
    where activity_date >= {{ date_literal(from_date) }}
    {%- endif %}
),

indicator_scores as (
    select * from {{ ref('int_appraisal_indicator_scores') }}
    where {{ touched_period_filter(months=months) }}
),

breakdown_values as (
    select distinct
        technician_id,
        team_id,
        period_type,
        period_start,
        period_end,
        period_label,
        indicator_code
    from indicator_scores
),

evidence as (
    select distinct
        breakdown_values.technician_id,
        breakdown_values.team_id,
        breakdown_values.period_type,
        breakdown_values.period_start,
        breakdown_values.period_end,
        breakdown_values.period_label,
        breakdown_values.indicator_code,
        indicator_evidence.source_type,
        indicator_evidence.source_id,
        indicator_evidence.activity_date,
        indicator_evidence.team_id as activity_team_id
    from breakdown_values
    inner join indicator_evidence
        on breakdown_values.technician_id = indicator_evidence.technician_id
        and breakdown_values.indicator_code = indicator_evidence.indicator_code
        and indicator_evidence.activity_date >= breakdown_values.period_start
        and indicator_evidence.activity_date <= breakdown_values.period_end
)

select
    {{ scoring_key(['technician_id', 'period_type', 'period_label', 'indicator_code', 'source_type', 'source_id']) }}
        as evidence_id,
    technician_id,
    team_id,
    period_type,
    period_start,
    period_end,
    period_label,
    indicator_code,
    source_type,
    source_id,
    activity_date,
    activity_team_id
from evidence
