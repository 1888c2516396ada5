{#- Incremental: recomputes only the touched periods (macros/incremental.sql). -#}
{{ period_mart_config(['period_type', 'period_start']) }}
{%- set months = touched_months() %}
with

indicator_scores as (
    select * from {{ ref('int_appraisal_indicator_scores') }}
    where {{ touched_period_filter(months=months) }}
)

select
    {{ scoring_key(['technician_id', 'period_type', 'period_label', 'method', 'indicator_code']) }}
        as breakdown_id,
    {{ scoring_key(['technician_id', 'period_type', 'period_label', 'method']) }} as appraisal_id,
    technician_id,
    team_id,
    period_type,
    period_start,
    period_end,
    period_label,
    method,
    indicator_code,
    indicator_name_zh,
    indicator_name_en,
    category,
    kind,
    unit,
    direction,
    hours_basis,
    value,
    sample_size,
    min_sample,
    target,
    threshold,
    is_rated,
    not_rated_reason,
    score,
    weight,
    weight_used,
    contribution,
    indicator_effective_from
from indicator_scores
