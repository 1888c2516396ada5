{#- Generic test: every composite_score equals the sum of its breakdown contributions, exactly. -#}
{% test scoring_contributions_sum_to_composite(model, breakdown) %}

with

contribution_sums as (
    select
        appraisal_id,
        sum(contribution) as contribution_total
    from {{ breakdown }}
    group by appraisal_id
)

select
    scores.appraisal_id,
    scores.composite_score,
    contribution_sums.contribution_total
from {{ model }} as scores
left join contribution_sums
    on scores.appraisal_id = contribution_sums.appraisal_id
where coalesce(scores.composite_score, 0) <> coalesce(contribution_sums.contribution_total, 0)

{% endtest %}
