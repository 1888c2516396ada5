{#- Incremental: recomputes only the touched periods (macros/incremental.sql). -#}
{{ period_mart_config(['period_type', 'period_start']) }}
{%- set months = touched_months() %}
with

composites as (
    select * from {{ ref('int_appraisal_composites') }}
    where {{ touched_period_filter(months=months) }}
)

select
    {{ scoring_key(['technician_id', 'period_type', 'period_label', 'method']) }} as appraisal_id,
    technician_id,
    team_id,
    period_type,
    period_start,
    period_end,
    period_label,
    method,
    status,
    composite_score,
    grade,
    grade_name_zh,
    grade_name_en,
    band_grade,
    is_forced_down,
    rank_in_team,
    rank_overall,
    tie_order_in_team,
    team_graded_count,
    rated_weight,
    total_weight,
    rated_weight_share,
    rated_indicator_count,
    indicator_count,
    min_rated_weight_share,
    forced_a_max_share,
    settings_effective_from,
    scoring_effective_from
from composites
