{#- Outcome of training 培训效果应用: per course and indicator of the course, difference in differences.
    Per cohort (course, training month) the trained mean change and the control mean change over the same
    months (int_training_outcome_members); cohorts without a trained or a control member are left out. The
    course value pools the cohorts weighted by their trained technicians: each trained technician is compared
    with the control group of their own months, so
      trained_change = mean over trained technicians of (after_mean - before_mean)
      control_change = mean over trained technicians of their cohort's control mean change
      diff_in_diff   = trained_change - control_change. -#}
with members as (
    select * from {{ ref('int_training_outcome_members') }}
),

course_indicators as (
    select * from {{ ref('int_training_course_indicators') }}
),

courses as (
    select * from {{ ref('stg_training_courses__courses') }}
),

settings as (
    select * from {{ ref('int_training_settings') }}
),

cohort_stats as (
    select
        course_id,
        indicator_code,
        cohort_month_index,
        cohort_month_start,
        cast(sum(case when comparison_group = 'trained' then 1 else 0 end) as integer) as trained_n,
        cast(sum(case when comparison_group = 'control' then 1 else 0 end) as integer) as control_n,
        {{ stable_avg("case when comparison_group = 'trained' then before_mean end") }} as trained_before,
        {{ stable_avg("case when comparison_group = 'trained' then after_mean end") }} as trained_after,
        {{ stable_avg("case when comparison_group = 'control' then before_mean end") }} as control_before,
        {{ stable_avg("case when comparison_group = 'control' then after_mean end") }} as control_after
    from members
    group by course_id, indicator_code, cohort_month_index, cohort_month_start
),

usable_cohorts as (
    select * from cohort_stats
    where trained_n > 0
        and control_n > 0
),

pooled as (
    select
        course_id,
        indicator_code,
        cast(count(*) as integer) as cohorts_count,
        min(cohort_month_start) as first_cohort_month_start,
        max(cohort_month_start) as last_cohort_month_start,
        cast(sum(trained_n) as integer) as trained_count,
        {{ stable_sum('trained_n * trained_before') }} / sum(trained_n) as trained_before_mean,
        {{ stable_sum('trained_n * trained_after') }} / sum(trained_n) as trained_after_mean,
        {{ stable_sum('trained_n * control_before') }} / sum(trained_n) as control_before_mean,
        {{ stable_sum('trained_n * control_after') }} / sum(trained_n) as control_after_mean
    from usable_cohorts
    group by course_id, indicator_code
),

control_counts as (
    select
        members.course_id,
        members.indicator_code,
        cast(count(distinct members.technician_id) as integer) as control_count
    from members
    inner join usable_cohorts
        on members.course_id = usable_cohorts.course_id
        and members.indicator_code = usable_cohorts.indicator_code
        and members.cohort_month_index = usable_cohorts.cohort_month_index
    where members.comparison_group = 'control'
    group by members.course_id, members.indicator_code
),

compared as (
    select
        course_indicators.course_id,
        course_indicators.indicator_code,
        course_indicators.indicator_position,
        course_indicators.indicator_name_zh,
        course_indicators.indicator_name_en,
        course_indicators.direction,
        course_indicators.unit,
        coalesce(pooled.cohorts_count, 0) as cohorts_count,
        pooled.first_cohort_month_start,
        pooled.last_cohort_month_start,
        coalesce(pooled.trained_count, 0) as trained_count,
        coalesce(control_counts.control_count, 0) as control_count,
        pooled.trained_before_mean,
        pooled.trained_after_mean,
        pooled.trained_after_mean - pooled.trained_before_mean as trained_change,
        pooled.control_before_mean,
        pooled.control_after_mean,
        pooled.control_after_mean - pooled.control_before_mean as control_change
    from course_indicators
    left join pooled
        on course_indicators.course_id = pooled.course_id
        and course_indicators.indicator_code = pooled.indicator_code
    left join control_counts
        on course_indicators.course_id = control_counts.course_id
        and course_indicators.indicator_code = control_counts.indicator_code
),

final as (
    select
        {{ scoring_key(['compared.course_id', 'compared.indicator_code']) }} as outcome_id,
        compared.course_id,
        courses.title as course_title,
        courses.topic as content_category,
        compared.indicator_code,
        compared.indicator_position,
        compared.indicator_name_zh,
        compared.indicator_name_en,
        compared.direction,
        compared.unit,
        case
            when compared.unit = 'hours' then settings.outcome_hours_basis
        end as hours_basis,
        settings.outcome_window_months as window_months,
        compared.cohorts_count,
        compared.first_cohort_month_start,
        compared.last_cohort_month_start,
        compared.trained_count,
        compared.control_count,
        compared.trained_before_mean,
        compared.trained_after_mean,
        compared.trained_change,
        compared.control_before_mean,
        compared.control_after_mean,
        compared.control_change,
        compared.trained_change - compared.control_change as diff_in_diff,
        case
            when compared.direction = 'lower' then compared.control_change - compared.trained_change
            when compared.direction = 'higher' then compared.trained_change - compared.control_change
        end as improvement,
        case
            when compared.direction = 'lower' then compared.trained_change - compared.control_change < 0
            when compared.direction = 'higher' then compared.trained_change - compared.control_change > 0
        end as is_improved,
        settings.min_group_size,
        compared.trained_count < settings.min_group_size
        or compared.control_count < settings.min_group_size as is_insufficient
    from compared
    cross join settings
    left join courses
        on compared.course_id = courses.course_id
)

select * from final
