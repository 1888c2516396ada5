{#- Implementation and evaluation per course: the same measures as training_session_evaluation computed
    from all attendance rows of the course's sessions (never averaged from session rates), plus session
    counts by status and the sessions behind schedule (as of var('as_of_date'), default today). -#}
{%- set as_of = "cast('" ~ var('as_of_date') ~ "' as date)" if var('as_of_date', none)
    else "cast(" ~ dbt.current_timestamp() ~ " as date)" -%}
with courses as (
    select * from {{ ref('stg_training_courses__courses') }}
),

session_evaluation as (
    select * from {{ ref('training_session_evaluation') }}
),

attendance as (
    select * from {{ ref('int_training_attendance') }}
),

course_sessions as (
    select
        course_id,
        cast(count(*) as integer) as sessions_count,
        cast(sum(case when status = 'held' then 1 else 0 end) as integer) as held_sessions_count,
        cast(sum(case when status = 'planned' then 1 else 0 end) as integer) as planned_sessions_count,
        cast(sum(case when status = 'cancelled' then 1 else 0 end) as integer) as cancelled_sessions_count,
        cast(sum(case when is_behind_schedule then 1 else 0 end) as integer) as behind_schedule_sessions_count
    from session_evaluation
    group by course_id
),

course_attendance as (
    select
        course_id,
        cast(count(*) as integer) as enrolled_count,
        cast(sum(case when is_attended then 1 else 0 end) as integer) as attended_count,
        cast(count(distinct case when is_attended then technician_id end) as integer) as trained_technicians_count,
        cast(sum(case when is_completed then 1 else 0 end) as integer) as completed_count,
        cast(sum(case when is_attended_and_passed then 1 else 0 end) as integer) as passed_count,
        cast(sum(case when has_score_pair then 1 else 0 end) as integer) as scored_pairs_count,
        {{ stable_avg("case when has_score_pair then pre_score end") }} as mean_pre_score,
        {{ stable_avg("case when has_score_pair then post_score end") }} as mean_post_score,
        {{ stable_avg("score_gain") }} as mean_score_gain,
        cast(count(attended_feedback_score) as integer) as feedback_count,
        {{ stable_avg("cast(attended_feedback_score as double)") }} as mean_feedback_score
    from attendance
    group by course_id
),

final as (
    select
        courses.course_id,
        courses.title as course_title,
        courses.topic as content_category,
        courses.course_hours,
        courses.is_onboarding,
        coalesce(course_sessions.sessions_count, 0) as sessions_count,
        coalesce(course_sessions.held_sessions_count, 0) as held_sessions_count,
        coalesce(course_sessions.planned_sessions_count, 0) as planned_sessions_count,
        coalesce(course_sessions.cancelled_sessions_count, 0) as cancelled_sessions_count,
        coalesce(course_sessions.behind_schedule_sessions_count, 0) as behind_schedule_sessions_count,
        coalesce(course_attendance.enrolled_count, 0) as enrolled_count,
        coalesce(course_attendance.attended_count, 0) as attended_count,
        coalesce(course_attendance.trained_technicians_count, 0) as trained_technicians_count,
        case
            when course_attendance.enrolled_count > 0
                then cast(course_attendance.attended_count as double) / course_attendance.enrolled_count
        end as attendance_rate,
        coalesce(course_attendance.completed_count, 0) as completed_count,
        case
            when course_attendance.enrolled_count > 0
                then cast(course_attendance.completed_count as double) / course_attendance.enrolled_count
        end as completion_rate,
        coalesce(course_attendance.passed_count, 0) as passed_count,
        case
            when course_attendance.completed_count > 0
                then cast(course_attendance.passed_count as double) / course_attendance.completed_count
        end as pass_rate,
        coalesce(course_attendance.scored_pairs_count, 0) as scored_pairs_count,
        course_attendance.mean_pre_score,
        course_attendance.mean_post_score,
        course_attendance.mean_score_gain,
        coalesce(course_attendance.feedback_count, 0) as feedback_count,
        course_attendance.mean_feedback_score,
        cast({{ as_of }} as date) as as_of_date
    from courses
    left join course_sessions
        on courses.course_id = course_sessions.course_id
    left join course_attendance
        on courses.course_id = course_attendance.course_id
)

select * from final
