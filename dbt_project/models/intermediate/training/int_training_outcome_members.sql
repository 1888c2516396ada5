{#- The technicians compared by training_outcome, one row per course, indicator, cohort and technician:
    - cohort = (course, training month m): trained technicians are those whose first attended session of the
      course starts in month m; the control group of the cohort is every technician with monthly values who
      never attended that course (enrolled but absent counts as untrained).
    - before_mean / after_mean: plain mean of the technician's monthly values (int_indicator_values,
      technician, month; duration indicators on settings.outcome_hours_basis) over months m-W..m-1 and
      m+1..m+W (W = outcome_window_months; the training month itself is left out), months without a value
      skipped. Only technicians with at least one value in each window are kept. -#}
with settings as (
    select * from {{ ref('int_training_settings') }}
),

indicator_values as (
    select * from {{ ref('int_indicator_values') }}
),

course_indicators as (
    select * from {{ ref('int_training_course_indicators') }}
),

attendance as (
    select * from {{ ref('int_training_attendance') }}
),

monthly_values as (
    select
        indicator_values.subject_id as technician_id,
        indicator_values.indicator_code,
        cast(
            {{ date_part_of('year', 'indicator_values.period_start') }} * 12
            + {{ date_part_of('month', 'indicator_values.period_start') }} as integer
        ) as month_index,
        indicator_values.value
    from indicator_values
    cross join settings
    where indicator_values.subject_type = 'technician'
        and indicator_values.period_type = 'month'
        and indicator_values.value is not null
        and (indicator_values.hours_basis is null or indicator_values.hours_basis = settings.outcome_hours_basis)
),

first_training as (
    select
        course_id,
        technician_id,
        min(session_month_index) as cohort_month_index,
        min(session_month_start) as cohort_month_start
    from attendance
    where is_attended
    group by course_id, technician_id
),

cohorts as (
    select distinct
        course_id,
        cohort_month_index,
        cohort_month_start
    from first_training
),

valued_technicians as (
    select distinct technician_id from monthly_values
),

members as (
    select
        course_id,
        cohort_month_index,
        cohort_month_start,
        technician_id,
        'trained' as comparison_group
    from first_training

    union all

    select
        cohorts.course_id,
        cohorts.cohort_month_index,
        cohorts.cohort_month_start,
        valued_technicians.technician_id,
        'control' as comparison_group
    from cohorts
    cross join valued_technicians
    left join first_training
        on cohorts.course_id = first_training.course_id
        and valued_technicians.technician_id = first_training.technician_id
    where first_training.technician_id is null
),

windowed as (
    select
        members.course_id,
        course_indicators.indicator_code,
        members.cohort_month_index,
        members.cohort_month_start,
        members.technician_id,
        members.comparison_group,
        settings.outcome_window_months as window_months,
        {{ stable_avg(
            "case when monthly_values.month_index < members.cohort_month_index then monthly_values.value end"
        ) }}
            as before_mean,
        count(case when monthly_values.month_index < members.cohort_month_index then monthly_values.value end)
            as before_months_count,
        {{ stable_avg(
            "case when monthly_values.month_index > members.cohort_month_index then monthly_values.value end"
        ) }}
            as after_mean,
        count(case when monthly_values.month_index > members.cohort_month_index then monthly_values.value end)
            as after_months_count
    from members
    inner join course_indicators
        on members.course_id = course_indicators.course_id
    cross join settings
    inner join monthly_values
        on members.technician_id = monthly_values.technician_id
        and course_indicators.indicator_code = monthly_values.indicator_code
        and monthly_values.month_index >= members.cohort_month_index - settings.outcome_window_months
        and monthly_values.month_index <= members.cohort_month_index + settings.outcome_window_months
        and members.cohort_month_index <> monthly_values.month_index
    group by
        members.course_id,
        course_indicators.indicator_code,
        members.cohort_month_index,
        members.cohort_month_start,
        members.technician_id,
        members.comparison_group,
        settings.outcome_window_months
),

final as (
    select
        course_id,
        indicator_code,
        cohort_month_start,
        cohort_month_index,
        technician_id,
        comparison_group,
        window_months,
        before_months_count,
        before_mean,
        after_months_count,
        after_mean,
        after_mean - before_mean as change
    from windowed
    where before_months_count > 0
        and after_months_count > 0
)

select * from final
