{#-
    Use of results: improvement cases and their weakest indicators.
    A case is a technician, period and method graded D (待改进) or with any rated indicator below its
    threshold. For each case, up to 3 rated indicators scoring below 100 are listed, weakest first
    (lowest score, then larger configured weight, then indicator_code), with the gap to target
    (how far the value is from the target, in the indicator's unit, positive = short of target) and the
    recommended training topic (the indicator's category; the training marts map it to courses).
-#}
{{ period_mart_config(['period_type', 'period_start']) }}
{%- set months = touched_months() %}
with

scores as (
    select * from {{ ref('appraisal_scores') }}
    where {{ touched_period_filter(months=months) }}
),

breakdown as (
    select * from {{ ref('appraisal_score_breakdown') }}
    where {{ touched_period_filter(months=months) }}
),

below_threshold as (
    select
        appraisal_id,
        count(*) as below_threshold_count
    from breakdown
    where
        is_rated
        and (
            (direction = 'higher' and value < threshold)
            or (direction = 'lower' and value > threshold)
        )
    group by appraisal_id
),

cases as (
    select
        scores.appraisal_id,
        scores.technician_id,
        scores.team_id,
        scores.period_type,
        scores.period_start,
        scores.period_end,
        scores.period_label,
        scores.method,
        scores.status,
        scores.composite_score,
        scores.grade,
        scores.grade_name_zh,
        coalesce(below_threshold.below_threshold_count, 0) as below_threshold_count,
        case
            when scores.grade = 'D' and below_threshold.appraisal_id is not null then 'grade_d_and_below_threshold'
            when scores.grade = 'D' then 'grade_d'
            else 'below_threshold'
        end as improvement_reason
    from scores
    left join below_threshold
        on scores.appraisal_id = below_threshold.appraisal_id
    where scores.grade = 'D' or below_threshold.appraisal_id is not null
),

weak_indicators as (
    select
        appraisal_id,
        indicator_code,
        indicator_name_zh,
        indicator_name_en,
        category,
        direction,
        unit,
        value,
        target,
        threshold,
        score,
        weight,
        case when direction = 'higher' then target - value else value - target end as gap_to_target,
        (direction = 'higher' and value < threshold) or (direction = 'lower' and value > threshold)
            as is_below_threshold,
        row_number() over (
            partition by appraisal_id
            order by score asc, weight desc, indicator_code asc
        ) as weakness_rank
    from breakdown
    where is_rated and score < 100
)

select
    {{ scoring_key(['cases.appraisal_id', 'weak_indicators.weakness_rank']) }} as improvement_id,
    cases.appraisal_id,
    cases.technician_id,
    cases.team_id,
    cases.period_type,
    cases.period_start,
    cases.period_end,
    cases.period_label,
    cases.method,
    cases.status,
    cases.composite_score,
    cases.grade,
    cases.grade_name_zh,
    cases.improvement_reason,
    cases.below_threshold_count,
    weak_indicators.weakness_rank,
    weak_indicators.indicator_code,
    weak_indicators.indicator_name_zh,
    weak_indicators.indicator_name_en,
    weak_indicators.direction,
    weak_indicators.unit,
    weak_indicators.value,
    weak_indicators.target,
    weak_indicators.threshold,
    weak_indicators.score,
    weak_indicators.weight,
    weak_indicators.gap_to_target,
    weak_indicators.is_below_threshold,
    weak_indicators.category as recommended_training_topic
from cases
inner join weak_indicators
    on cases.appraisal_id = weak_indicators.appraisal_id
    and weak_indicators.weakness_rank <= 3
