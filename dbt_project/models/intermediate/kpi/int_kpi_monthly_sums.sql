{#-
    The exact monthly sums and counts every KPI is computed from (models/marts/kpi/, macros/kpi.sql): one row per
    technician, team at the event and month, with the numerators and denominators of each indicator at its own
    period date (the attribution rules of macros/kpi.sql). The six KPI marts add these rows up over their month,
    quarter or year and divide once, so a quarter's value is the value of all its facts together, never a mean of
    monthly values.
    Durations are summed as DECIMAL(38, 18) (macros/numeric.sql): a decimal sum is exact, so a sum of monthly
    sums equals the sum over the facts, in any order, and a quarter's mean is the very number a mean over its
    facts gives. Counts are of non-null values (a mean divides by its own count).
    Why a model: the marts of a nightly run recompute the touched months, their quarters and the year; from the
    facts, the year alone is a pass over twelve months of tickets for each of the two subjects. From these rows a
    nightly reads only the touched months of facts, once.
    Incremental like the period marts (macros/incremental.sql): the touched months are deleted and recomputed.
-#}
{{ period_mart_config('period_start', 'month') }}
{%- set starts = touched_period_starts('month') %}
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

-- resolution indicators and the complaint-rate denominator: month of resolved_at
resolved_tickets as (
    select
        technician_id,
        team_id,
        {{ period_start('month', 'resolved_date') }} as period_start,
        count(*) as tickets_resolved,
        {{ exact_sum('handling_hours') }} as handling_hours_sum,
        count(handling_hours) as handling_hours_n,
        {{ exact_sum('handling_business_hours') }} as handling_business_hours_sum,
        count(handling_business_hours) as handling_business_hours_n,
        {{ exact_sum('case when is_repair then handling_hours end') }} as repair_hours_sum,
        count(case when is_repair then handling_hours end) as repair_hours_n,
        {{ exact_sum('case when is_repair then handling_business_hours end') }} as repair_business_hours_sum,
        count(case when is_repair then handling_business_hours end) as repair_business_hours_n,
        cast(sum(case when is_sla_met then 1 else 0 end) as bigint) as sla_met_count,
        count(is_sla_met) as sla_n,
        cast(sum(case when is_repair and is_first_time_fix then 1 else 0 end) as bigint) as first_time_fix_count,
        count(case when is_repair then is_first_time_fix end) as first_time_fix_n,
        cast(sum(case when is_reopened then 1 else 0 end) as bigint) as reopened_count,
        -- tickets whose source says whether they were reopened (not measured is not zero)
        count(is_reopened) as reopen_n
    from tickets
    where is_resolved
        and (technician_id is not null or team_id is not null)
        and {{ touched_filter('month', 'resolved_date', starts) }}
    group by
        technician_id,
        team_id,
        {{ period_start('month', 'resolved_date') }}
),

-- first response: month of created_at
responded_tickets as (
    select
        technician_id,
        team_id,
        {{ period_start('month', 'created_date') }} as period_start,
        {{ exact_sum('first_response_hours') }} as first_response_hours_sum,
        count(*) as first_response_hours_n,
        {{ exact_sum('first_response_business_hours') }} as first_response_business_hours_sum,
        count(first_response_business_hours) as first_response_business_hours_n
    from tickets
    where first_response_hours is not null
        and (technician_id is not null or team_id is not null)
        and {{ touched_filter('month', 'created_date', starts) }}
    group by
        technician_id,
        team_id,
        {{ period_start('month', 'created_date') }}
),

-- survey indicators: month of responded_at
survey_results as (
    select
        technician_id,
        team_id,
        {{ period_start('month', 'responded_date') }} as period_start,
        cast(sum(case when is_satisfied then 1 else 0 end) as bigint) as satisfied_count,
        {{ exact_sum('overall_score') }} as overall_score_sum,
        count(overall_score) as overall_score_n,
        cast(sum(case when nps_bucket = 'promoter' then 1 else 0 end) as bigint) as nps_promoters,
        cast(sum(case when nps_bucket = 'passive' then 1 else 0 end) as bigint) as nps_passives,
        cast(sum(case when nps_bucket = 'detractor' then 1 else 0 end) as bigint) as nps_detractors,
        count(nps_bucket) as nps_n,
        {{ exact_sum('attitude_score') }} as attitude_score_sum,
        count(attitude_score) as attitude_score_n,
        {{ exact_sum('technical_score') }} as technical_score_sum,
        count(technical_score) as technical_score_n
    from responses
    where (technician_id is not null or team_id is not null)
        and {{ touched_filter('month', 'responded_date', starts) }}
    group by
        technician_id,
        team_id,
        {{ period_start('month', 'responded_date') }}
),

-- complaint indicators and the complaint-rate numerator: month of received_at
complaint_results as (
    select
        technician_id,
        team_id,
        {{ period_start('month', 'received_date') }} as period_start,
        count(*) as complaints_received,
        {{ exact_sum('acceptance_hours') }} as acceptance_hours_sum,
        count(acceptance_hours) as acceptance_hours_n,
        {{ exact_sum('acceptance_business_hours') }} as acceptance_business_hours_sum,
        count(acceptance_business_hours) as acceptance_business_hours_n,
        cast(sum(case when is_problem_resolved then 1 else 0 end) as bigint) as problems_resolved
    from complaints
    where (technician_id is not null or team_id is not null)
        and {{ touched_filter('month', 'received_date', starts) }}
    group by
        technician_id,
        team_id,
        {{ period_start('month', 'received_date') }}
),

-- supervisor review: the reviewed month
review_results as (
    select
        technician_id,
        team_id,
        {{ period_start('month', 'period_start') }} as period_start,
        {{ exact_sum('score') }} as review_score_sum,
        count(score) as review_score_n
    from reviews
    where (technician_id is not null or team_id is not null)
        and {{ touched_filter('month', 'period_start', starts) }}
    group by
        technician_id,
        team_id,
        {{ period_start('month', 'period_start') }}
),

subject_months as (
    select
        technician_id,
        team_id,
        period_start
    from resolved_tickets
    union
    select
        technician_id,
        team_id,
        period_start
    from responded_tickets
    union
    select
        technician_id,
        team_id,
        period_start
    from survey_results
    union
    select
        technician_id,
        team_id,
        period_start
    from complaint_results
    union
    select
        technician_id,
        team_id,
        period_start
    from review_results
),

final as (
    select
        subject_months.technician_id,
        subject_months.team_id,
        subject_months.period_start,

        resolved_tickets.tickets_resolved,
        resolved_tickets.handling_hours_sum,
        resolved_tickets.handling_hours_n,
        resolved_tickets.handling_business_hours_sum,
        resolved_tickets.handling_business_hours_n,
        resolved_tickets.repair_hours_sum,
        resolved_tickets.repair_hours_n,
        resolved_tickets.repair_business_hours_sum,
        resolved_tickets.repair_business_hours_n,
        resolved_tickets.sla_met_count,
        resolved_tickets.sla_n,
        resolved_tickets.first_time_fix_count,
        resolved_tickets.first_time_fix_n,
        resolved_tickets.reopened_count,
        resolved_tickets.reopen_n,

        responded_tickets.first_response_hours_sum,
        responded_tickets.first_response_hours_n,
        responded_tickets.first_response_business_hours_sum,
        responded_tickets.first_response_business_hours_n,

        survey_results.satisfied_count,
        survey_results.overall_score_sum,
        survey_results.overall_score_n,
        survey_results.nps_promoters,
        survey_results.nps_passives,
        survey_results.nps_detractors,
        survey_results.nps_n,
        survey_results.attitude_score_sum,
        survey_results.attitude_score_n,
        survey_results.technical_score_sum,
        survey_results.technical_score_n,

        complaint_results.complaints_received,
        complaint_results.acceptance_hours_sum,
        complaint_results.acceptance_hours_n,
        complaint_results.acceptance_business_hours_sum,
        complaint_results.acceptance_business_hours_n,
        complaint_results.problems_resolved,

        review_results.review_score_sum,
        review_results.review_score_n
    from subject_months
    left join resolved_tickets
        on subject_months.technician_id is not distinct from resolved_tickets.technician_id
        and subject_months.team_id is not distinct from resolved_tickets.team_id
        and subject_months.period_start = resolved_tickets.period_start
    left join responded_tickets
        on subject_months.technician_id is not distinct from responded_tickets.technician_id
        and subject_months.team_id is not distinct from responded_tickets.team_id
        and subject_months.period_start = responded_tickets.period_start
    left join survey_results
        on subject_months.technician_id is not distinct from survey_results.technician_id
        and subject_months.team_id is not distinct from survey_results.team_id
        and subject_months.period_start = survey_results.period_start
    left join complaint_results
        on subject_months.technician_id is not distinct from complaint_results.technician_id
        and subject_months.team_id is not distinct from complaint_results.team_id
        and subject_months.period_start = complaint_results.period_start
    left join review_results
        on subject_months.technician_id is not distinct from review_results.technician_id
        and subject_months.team_id is not distinct from review_results.team_id
        and subject_months.period_start = review_results.period_start
)

select * from final
