{#- Use of results: the technicians graded in the top band (A, 优秀) after the forced distribution. -#}
{{ period_mart_config(['period_type', 'period_start']) }}
{%- set months = touched_months() %}
with

scores as (
    select * from {{ ref('appraisal_scores') }}
    where {{ touched_period_filter(months=months) }}
)

select
    appraisal_id,
    technician_id,
    team_id,
    period_type,
    period_start,
    period_end,
    period_label,
    method,
    composite_score,
    grade,
    grade_name_zh,
    rank_in_team,
    rank_overall,
    rated_weight_share
from scores
where grade = 'A'
