{#-
    The facts behind the breakdown values: one row per technician, month, scored indicator and source record
    (ticket, survey, complaint, supervisor review) attributed to a day of the month (int_indicator_evidence).
    Month grain: the evidence of a quarter or a year is the evidence of its months, so a breakdown row of any
    grain joins on (technician_id, indicator_code) and activity_date between its period_start and period_end.
    The value of an indicator does not depend on the method, so evidence is not repeated per method.

    A view, not a table: stored, it would be the largest table of the warehouse (about 8 rows per ticket, 80 M
    rows at tier L), rebuilt and re-published for every touched month, for rows that are a function of the
    facts. A query for one technician and period reads the facts it needs. serving.duckdb has the same view
    over its own copy of the facts and the current breakdown (orchestration/publication/evidence.py).
-#}
{{ config(materialized='view', meta={'serving': 'none'}) }}
with

indicator_evidence as (
    select * from {{ ref('int_indicator_evidence') }}
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
