{#-
    The facts behind the breakdown values: one row per technician, month, scored indicator and source record
    (ticket, survey, complaint, supervisor review) attributed to a day of the month (int_indicator_evidence).
    Month grain only: the evidence of a quarter or a year is the evidence of its months, so a breakdown row of
    any grain joins on (technician_id, indicator_code) and activity_date between its period_start and
    period_end. Storing it again per quarter and year would triple the largest table of the warehouse (about
    7 rows per ticket per grain) and make every nightly run rebuild the whole year's evidence.
    The value of an indicator does not depend on the method, so evidence is not repeated per method.
-#}
{{ period_mart_config(['period_type', 'period_start'], 'month') }}
{%- set starts = touched_period_starts('month') %}
with

indicator_evidence as (
    select * from {{ ref('int_indicator_evidence') }}
    where {{ touched_filter('month', 'activity_date', starts) }}
    {%- if starts %}
        and activity_date >= {{ date_literal(starts[0]) }}
    {%- endif %}
),

breakdown_values as (
    select distinct
        technician_id,
        team_id,
        period_start,
        period_end,
        period_label,
        indicator_code
    from {{ ref('int_appraisal_indicator_scores') }}
    where period_type = 'month'
        and {{ touched_filter('month', 'period_start', starts) }}
),

evidence as (
    select
        breakdown_values.technician_id,
        breakdown_values.team_id,
        'month' as period_type,
        breakdown_values.period_start,
        breakdown_values.period_end,
        breakdown_values.period_label,
        breakdown_values.indicator_code,
        indicator_evidence.source_type,
        indicator_evidence.source_id,
        indicator_evidence.activity_date,
        indicator_evidence.team_id as activity_team_id
    from indicator_evidence
    inner join breakdown_values
        on indicator_evidence.technician_id = breakdown_values.technician_id
        and indicator_evidence.indicator_code = breakdown_values.indicator_code
        and {{ period_start('month', 'indicator_evidence.activity_date') }} = breakdown_values.period_start
)

select
    {{ scoring_key(['technician_id', 'period_label', 'indicator_code', 'source_type', 'source_id']) }}
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
