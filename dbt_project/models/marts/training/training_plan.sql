{#- Training plan 培训计划: one row per scheduled session (status planned or held; cancelled sessions are not
    part of the plan) with its goal, content category, schedule and the needs it covers.
    as_of_date = var('as_of_date') (default: today) decides is_behind_schedule. -#}
{%- set as_of = "cast('" ~ var('as_of_date') ~ "' as date)" if var('as_of_date', none)
    else "cast(" ~ dbt.current_timestamp() ~ " as date)" -%}
with sessions as (
    select * from {{ ref('stg_training_sessions__sessions') }}
),

courses as (
    select * from {{ ref('stg_training_courses__courses') }}
),

course_indicators as (
    select * from {{ ref('int_training_course_indicators') }}
),

indicator_settings as (
    select * from {{ ref('indicator_settings') }}
),

settings as (
    select * from {{ ref('int_training_settings') }}
),

attendance as (
    select * from {{ ref('int_training_attendance') }}
),

coverage as (
    select * from {{ ref('training_plan_coverage') }}
),

scheduled as (
    select
        session_id,
        course_id,
        starts_at,
        ends_at,
        cast(starts_at as date) as session_date,
        trainer,
        capacity,
        status
    from sessions
    where status in ('planned', 'held')
),

-- the target in force on the session date: the row of the chosen appraisal method first, else any method
goal_candidates as (
    select
        scheduled.session_id,
        course_indicators.indicator_code,
        course_indicators.indicator_position,
        course_indicators.direction,
        indicator_settings.target,
        indicator_settings.threshold,
        row_number() over (
            partition by scheduled.session_id, course_indicators.indicator_code
            order by
                case when indicator_settings.method = settings.appraisal_method then 0 else 1 end,
                indicator_settings.method
        ) as settings_choice
    from scheduled
    inner join course_indicators
        on scheduled.course_id = course_indicators.course_id
    cross join settings
    left join indicator_settings
        on course_indicators.indicator_code = indicator_settings.indicator_code
        and scheduled.session_date >= indicator_settings.effective_from
        and (indicator_settings.effective_to is null or scheduled.session_date <= indicator_settings.effective_to)
),

goal_items as (
    select
        session_id,
        indicator_code,
        indicator_position,
        case
            when target is null then indicator_code
            else {{ dbt.concat([
                "indicator_code",
                "case when direction = 'lower' then ' <= ' else ' >= ' end",
                dbt.cast("round(target, 4)", dbt.type_string()),
            ]) }}
        end as goal_item
    from goal_candidates
    where settings_choice = 1
),

goals as (
    select
        session_id,
        cast(count(*) as integer) as goal_indicators_count,
        {{ dbt.listagg('indicator_code', "';'", 'order by indicator_position') }} as goal_indicator_codes,
        {{ dbt.listagg('goal_item', "'; '", 'order by indicator_position') }} as goal
    from goal_items
    group by session_id
),

enrolment as (
    select
        session_id,
        cast(count(*) as integer) as enrolled_count
    from attendance
    group by session_id
),

covered as (
    select
        session_id,
        cast(count(*) as integer) as covered_needs_count,
        cast(count(distinct technician_id) as integer) as covered_technicians_count
    from coverage
    group by session_id
),

final as (
    select
        scheduled.session_id,
        scheduled.course_id,
        courses.title as course_title,
        courses.topic as content_category,
        courses.course_hours,
        coalesce(courses.is_onboarding, false) as is_onboarding,
        goals.goal_indicator_codes,
        goals.goal,
        coalesce(goals.goal_indicators_count, 0) as goal_indicators_count,
        scheduled.starts_at,
        scheduled.ends_at,
        scheduled.session_date,
        {{ period_label('month', period_start('month', 'scheduled.session_date')) }} as session_month_label,
        scheduled.trainer,
        scheduled.capacity,
        scheduled.status,
        scheduled.status = 'planned' and scheduled.session_date < cast({{ as_of }} as date)
            as is_behind_schedule,
        cast({{ as_of }} as date) as as_of_date,
        coalesce(enrolment.enrolled_count, 0) as enrolled_count,
        coalesce(covered.covered_needs_count, 0) as covered_needs_count,
        coalesce(covered.covered_technicians_count, 0) as covered_technicians_count,
        case
            when scheduled.capacity is not null
                then scheduled.capacity - coalesce(covered.covered_technicians_count, 0)
        end as seats_left_for_needs,
        settings.appraisal_method as goal_method
    from scheduled
    cross join settings
    left join courses
        on scheduled.course_id = courses.course_id
    left join goals
        on scheduled.session_id = goals.session_id
    left join enrolment
        on scheduled.session_id = enrolment.session_id
    left join covered
        on scheduled.session_id = covered.session_id
)

select * from final
