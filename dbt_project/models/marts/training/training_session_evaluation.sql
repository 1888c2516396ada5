{#- Implementation and evaluation 培训实施与评估, per session (every status). Rates are null when their
    denominator is 0. Test means are over the scored pairs (attended with both pre- and post-test) so that
    mean_score_gain = mean_post_score - mean_pre_score exactly. -#}
{%- set as_of = "cast('" ~ var('as_of_date') ~ "' as date)" if var('as_of_date', none)
    else "cast(" ~ dbt.current_timestamp() ~ " as date)" -%}
with sessions as (
    select * from {{ ref('stg_training_sessions__sessions') }}
),

courses as (
    select * from {{ ref('stg_training_courses__courses') }}
),

attendance as (
    select * from {{ ref('int_training_attendance') }}
),

session_attendance as (
    select
        session_id,
        cast(count(*) as integer) as enrolled_count,
        cast(sum(case when is_attended then 1 else 0 end) as integer) as attended_count,
        cast(sum(case when is_completed then 1 else 0 end) as integer) as completed_count,
        cast(sum(case when is_attended_and_passed then 1 else 0 end) as integer) as passed_count,
        cast(sum(case when has_score_pair then 1 else 0 end) as integer) as scored_pairs_count,
        {{ stable_avg("case when has_score_pair then pre_score end") }} as mean_pre_score,
        {{ stable_avg("case when has_score_pair then post_score end") }} as mean_post_score,
        {{ stable_avg("score_gain") }} as mean_score_gain,
        cast(count(attended_feedback_score) as integer) as feedback_count,
        {{ stable_avg("cast(attended_feedback_score as double)") }} as mean_feedback_score
    from attendance
    group by session_id
),

final as (
    select
        sessions.session_id,
        sessions.course_id,
        courses.title as course_title,
        courses.topic as content_category,
        sessions.starts_at,
        sessions.ends_at,
        cast(sessions.starts_at as date) as session_date,
        sessions.trainer,
        sessions.capacity,
        sessions.status,
        sessions.status = 'planned' and cast(sessions.starts_at as date) < cast({{ as_of }} as date)
            as is_behind_schedule,
        case
            when sessions.status = 'planned' and cast(sessions.starts_at as date) < cast({{ as_of }} as date)
                then cast(
                        {{ dbt.datediff('cast(sessions.starts_at as date)', 'cast(' ~ as_of ~ ' as date)', 'day') }}
                        as integer
                    )
        end as days_behind_schedule,
        cast({{ as_of }} as date) as as_of_date,
        coalesce(session_attendance.enrolled_count, 0) as enrolled_count,
        coalesce(session_attendance.attended_count, 0) as attended_count,
        case
            when session_attendance.enrolled_count > 0
                then cast(session_attendance.attended_count as double) / session_attendance.enrolled_count
        end as attendance_rate,
        coalesce(session_attendance.completed_count, 0) as completed_count,
        case
            when session_attendance.enrolled_count > 0
                then cast(session_attendance.completed_count as double) / session_attendance.enrolled_count
        end as completion_rate,
        coalesce(session_attendance.passed_count, 0) as passed_count,
        case
            when session_attendance.completed_count > 0
                then cast(session_attendance.passed_count as double) / session_attendance.completed_count
        end as pass_rate,
        coalesce(session_attendance.scored_pairs_count, 0) as scored_pairs_count,
        session_attendance.mean_pre_score,
        session_attendance.mean_post_score,
        session_attendance.mean_score_gain,
        coalesce(session_attendance.feedback_count, 0) as feedback_count,
        session_attendance.mean_feedback_score
    from sessions
    left join courses
        on sessions.course_id = courses.course_id
    left join session_attendance
        on sessions.session_id = session_attendance.session_id
)

select * from final
