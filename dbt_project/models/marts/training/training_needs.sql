{#- Training needs analysis 培训需求分析: one row per technician, month and need, each with its reason.
    See _training__models.yml for the four reasons, the priorities and the gaps. -#}
with settings as (
    select * from {{ ref('int_training_settings') }}
),

appraisals as (
    select * from {{ ref('appraisal_scores') }}
),

breakdown as (
    select * from {{ ref('appraisal_score_breakdown') }}
),

technicians as (
    select * from {{ ref('dim_technicians') }}
),

attendance as (
    select * from {{ ref('int_training_attendance') }}
),

courses as (
    select * from {{ ref('stg_training_courses__courses') }}
),

course_mapping as (
    select * from {{ ref('training_course_mapping') }}
),

-- the appraised technicians of each month (the roster of the chosen method)
roster as (
    select
        appraisals.technician_id,
        appraisals.team_id,
        appraisals.period_type,
        appraisals.period_start,
        appraisals.period_end,
        appraisals.period_label
    from appraisals
    inner join settings
        on appraisals.method = settings.appraisal_method
    where appraisals.period_type = 'month'
),

-- rated indicator values; goodness puts every indicator on a higher-is-better scale
rated as (
    select
        breakdown.technician_id,
        breakdown.team_id,
        breakdown.period_type,
        breakdown.period_start,
        breakdown.period_end,
        breakdown.period_label,
        breakdown.indicator_code,
        breakdown.direction,
        breakdown.unit,
        breakdown.hours_basis,
        breakdown.value,
        breakdown.sample_size,
        breakdown.target,
        breakdown.threshold,
        case when breakdown.direction = 'lower' then -breakdown.value else breakdown.value end as goodness,
        case when breakdown.direction = 'lower' then -breakdown.threshold else breakdown.threshold end
            as threshold_goodness,
        case when breakdown.direction = 'lower' then -breakdown.target else breakdown.target end
            as target_goodness
    from breakdown
    inner join settings
        on breakdown.method = settings.appraisal_method
    where breakdown.period_type = 'month'
        and breakdown.is_rated
        and breakdown.value is not null
),

ranked as (
    select
        rated.*,
        row_number() over (
            partition by rated.period_start, rated.indicator_code
            order by rated.goodness, rated.technician_id
        ) as worst_first_position,
        count(*) over (partition by rated.period_start, rated.indicator_code) as rated_count
    from rated
),

quartile_positions as (
    select distinct
        ranked.period_start,
        ranked.indicator_code,
        ranked.rated_count,
        1 + settings.bottom_quartile_share * (ranked.rated_count - 1) as boundary_position
    from ranked
    cross join settings
    where ranked.rated_count >= settings.bottom_quartile_min_rated
),

-- continuous percentile at bottom_quartile_share of the worst-first values (linear interpolation)
quartile_boundaries as (
    select
        quartile_positions.period_start,
        quartile_positions.indicator_code,
        quartile_positions.rated_count,
        lower_neighbour.goodness
        + (quartile_positions.boundary_position - floor(quartile_positions.boundary_position))
        * (upper_neighbour.goodness - lower_neighbour.goodness) as boundary_goodness
    from quartile_positions
    inner join ranked as lower_neighbour
        on quartile_positions.period_start = lower_neighbour.period_start
        and quartile_positions.indicator_code = lower_neighbour.indicator_code
        and lower_neighbour.worst_first_position = floor(quartile_positions.boundary_position)
    inner join ranked as upper_neighbour
        on quartile_positions.period_start = upper_neighbour.period_start
        and quartile_positions.indicator_code = upper_neighbour.indicator_code
        and upper_neighbour.worst_first_position = ceiling(quartile_positions.boundary_position)
),

below_threshold as (
    select
        ranked.technician_id,
        ranked.team_id,
        ranked.period_type,
        ranked.period_start,
        ranked.period_end,
        ranked.period_label,
        'below_threshold' as need_reason,
        ranked.indicator_code as need_subject,
        ranked.indicator_code,
        ranked.direction,
        ranked.unit,
        ranked.hours_basis,
        ranked.value,
        ranked.sample_size,
        ranked.target,
        ranked.threshold,
        ranked.threshold as reference_value,
        ranked.threshold_goodness - ranked.goodness as gap,
        ranked.target_goodness - ranked.goodness as gap_to_target,
        ranked.rated_count,
        cast(null as date) as hire_date,
        cast(null as integer) as days_since_hire,
        cast(null as {{ dbt.type_string() }}) as failed_session_id,
        cast(null as date) as failed_session_date,
        cast(null as double) as failed_post_score,
        course_mapping.course_id as recommended_course_id
    from ranked
    left join course_mapping
        on ranked.indicator_code = course_mapping.indicator_code
    where ranked.goodness < ranked.threshold_goodness
),

bottom_quartile as (
    select
        ranked.technician_id,
        ranked.team_id,
        ranked.period_type,
        ranked.period_start,
        ranked.period_end,
        ranked.period_label,
        'bottom_quartile' as need_reason,
        ranked.indicator_code as need_subject,
        ranked.indicator_code,
        ranked.direction,
        ranked.unit,
        ranked.hours_basis,
        ranked.value,
        ranked.sample_size,
        ranked.target,
        ranked.threshold,
        case
            when ranked.direction = 'lower' then -quartile_boundaries.boundary_goodness
            else quartile_boundaries.boundary_goodness
        end as reference_value,
        quartile_boundaries.boundary_goodness - ranked.goodness as gap,
        ranked.target_goodness - ranked.goodness as gap_to_target,
        ranked.rated_count,
        cast(null as date) as hire_date,
        cast(null as integer) as days_since_hire,
        cast(null as {{ dbt.type_string() }}) as failed_session_id,
        cast(null as date) as failed_session_date,
        cast(null as double) as failed_post_score,
        course_mapping.course_id as recommended_course_id
    from ranked
    inner join quartile_boundaries
        on ranked.period_start = quartile_boundaries.period_start
        and ranked.indicator_code = quartile_boundaries.indicator_code
    left join course_mapping
        on ranked.indicator_code = course_mapping.indicator_code
    where ranked.goodness < quartile_boundaries.boundary_goodness
        and ranked.goodness < ranked.target_goodness
        and ranked.goodness >= ranked.threshold_goodness
),

onboarding_course as (
    select min(course_id) as course_id
    from courses
    where is_onboarding
),

first_onboarding as (
    select
        technician_id,
        min(session_date) as first_onboarding_date
    from attendance
    where is_attended
        and is_onboarding
    group by technician_id
),

hires as (
    select
        technician_id,
        max(hire_date) as hire_date
    from technicians
    where is_current
    group by technician_id
),

new_hire_onboarding as (
    select
        roster.technician_id,
        roster.team_id,
        roster.period_type,
        roster.period_start,
        roster.period_end,
        roster.period_label,
        'new_hire_onboarding' as need_reason,
        coalesce(onboarding_course.course_id, 'onboarding') as need_subject,
        cast(null as {{ dbt.type_string() }}) as indicator_code,
        cast(null as {{ dbt.type_string() }}) as direction,
        cast(null as {{ dbt.type_string() }}) as unit,
        cast(null as {{ dbt.type_string() }}) as hours_basis,
        cast(null as double) as value,
        cast(null as bigint) as sample_size,
        cast(null as double) as target,
        cast(null as double) as threshold,
        cast(null as double) as reference_value,
        cast(null as double) as gap,
        cast(null as double) as gap_to_target,
        cast(null as bigint) as rated_count,
        hires.hire_date,
        cast(
            {{ dbt.datediff('hires.hire_date', 'roster.period_end', 'day') }}
            as integer
        ) as days_since_hire,
        cast(null as {{ dbt.type_string() }}) as failed_session_id,
        cast(null as date) as failed_session_date,
        cast(null as double) as failed_post_score,
        onboarding_course.course_id as recommended_course_id
    from roster
    inner join hires
        on roster.technician_id = hires.technician_id
    cross join settings
    cross join onboarding_course
    left join first_onboarding
        on roster.technician_id = first_onboarding.technician_id
        and roster.period_end >= first_onboarding.first_onboarding_date
    where hires.hire_date <= roster.period_end
        and {{ dbt.datediff('hires.hire_date', 'roster.period_end', 'day') }}
        < settings.onboarding_window_days
        and first_onboarding.technician_id is null
),

failed_attempts as (
    select
        technician_id,
        course_id,
        session_id,
        starts_at,
        session_date,
        post_score
    from attendance
    where is_attended_and_failed
),

passed_attempts as (
    select
        technician_id,
        course_id,
        starts_at,
        session_date
    from attendance
    where is_attended_and_passed
),

-- a failed attempt known at the period end with no pass of the same course after it by then
open_failures as (
    select
        roster.technician_id,
        roster.team_id,
        roster.period_type,
        roster.period_start,
        roster.period_end,
        roster.period_label,
        failed_attempts.course_id,
        failed_attempts.session_id,
        failed_attempts.session_date,
        failed_attempts.post_score,
        row_number() over (
            partition by roster.technician_id, roster.period_start, failed_attempts.course_id
            order by failed_attempts.starts_at desc, failed_attempts.session_id desc
        ) as attempt_rank
    from roster
    inner join failed_attempts
        on roster.technician_id = failed_attempts.technician_id
        and roster.period_end >= failed_attempts.session_date
    left join passed_attempts
        on failed_attempts.technician_id = passed_attempts.technician_id
        and failed_attempts.course_id = passed_attempts.course_id
        and failed_attempts.starts_at < passed_attempts.starts_at
        and roster.period_end >= passed_attempts.session_date
    where passed_attempts.technician_id is null
),

failed_course_retake as (
    select
        technician_id,
        team_id,
        period_type,
        period_start,
        period_end,
        period_label,
        'failed_course_retake' as need_reason,
        course_id as need_subject,
        cast(null as {{ dbt.type_string() }}) as indicator_code,
        cast(null as {{ dbt.type_string() }}) as direction,
        cast(null as {{ dbt.type_string() }}) as unit,
        cast(null as {{ dbt.type_string() }}) as hours_basis,
        cast(null as double) as value,
        cast(null as bigint) as sample_size,
        cast(null as double) as target,
        cast(null as double) as threshold,
        cast(null as double) as reference_value,
        cast(null as double) as gap,
        cast(null as double) as gap_to_target,
        cast(null as bigint) as rated_count,
        cast(null as date) as hire_date,
        cast(null as integer) as days_since_hire,
        session_id as failed_session_id,
        session_date as failed_session_date,
        post_score as failed_post_score,
        course_id as recommended_course_id
    from open_failures
    where attempt_rank = 1
),

needs as (
    select * from below_threshold
    union all
    select * from bottom_quartile
    union all
    select * from new_hire_onboarding
    union all
    select * from failed_course_retake
),

described as (
    select
        needs.*,
        case
            when needs.need_reason in ('below_threshold', 'failed_course_retake') then 'high'
            when needs.need_reason = 'new_hire_onboarding' then 'medium'
            else 'low'
        end as priority,
        case
            when needs.need_reason in ('below_threshold', 'failed_course_retake') then 1
            when needs.need_reason = 'new_hire_onboarding' then 2
            else 3
        end as priority_rank,
        case needs.need_reason
            when 'below_threshold' then {{ dbt.concat([
                "needs.indicator_code", "' '",
                dbt.cast("round(needs.value, 4)", dbt.type_string()),
                "' below threshold '",
                dbt.cast("round(needs.threshold, 4)", dbt.type_string()),
                "' (gap '", dbt.cast("round(needs.gap, 4)", dbt.type_string()), "')'",
            ]) }}
            when 'bottom_quartile' then {{ dbt.concat([
                "needs.indicator_code", "' '",
                dbt.cast("round(needs.value, 4)", dbt.type_string()),
                "' in the bottom group of '",
                dbt.cast("needs.rated_count", dbt.type_string()),
                "' rated technicians (boundary '",
                dbt.cast("round(needs.reference_value, 4)", dbt.type_string()),
                "', gap '", dbt.cast("round(needs.gap, 4)", dbt.type_string()), "')'",
            ]) }}
            when 'new_hire_onboarding' then {{ dbt.concat([
                "'hired '", dbt.cast("needs.hire_date", dbt.type_string()),
                "' ('", dbt.cast("needs.days_since_hire", dbt.type_string()),
                "' days before the period end), no onboarding course attended'",
            ]) }}
            else {{ dbt.concat([
                "'failed course '", "needs.need_subject",
                "' in session '", "needs.failed_session_id",
                "' on '", dbt.cast("needs.failed_session_date", dbt.type_string()),
                "', not passed since'",
            ]) }}
        end as reason_detail
    from needs
),

final as (
    select
        {{ scoring_key(['described.technician_id', 'described.period_label', 'described.need_reason',
                        'described.need_subject']) }} as need_id,
        described.technician_id,
        described.team_id,
        described.period_type,
        described.period_start,
        described.period_end,
        described.period_label,
        described.need_reason,
        described.need_subject,
        described.priority,
        described.priority_rank,
        described.reason_detail,
        described.indicator_code,
        described.direction,
        described.unit,
        described.hours_basis,
        described.value,
        described.sample_size,
        described.target,
        described.threshold,
        described.reference_value,
        described.gap,
        described.gap_to_target,
        described.rated_count,
        described.hire_date,
        described.days_since_hire,
        described.failed_session_id,
        described.failed_session_date,
        described.failed_post_score,
        described.recommended_course_id,
        courses.title as recommended_course_title,
        courses.topic as recommended_course_topic,
        courses.course_id is not null as has_recommended_course,
        settings.appraisal_method
    from described
    cross join settings
    left join courses
        on described.recommended_course_id = courses.course_id
)

select * from final
