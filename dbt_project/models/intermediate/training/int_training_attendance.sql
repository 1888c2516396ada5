{#- Attendance rows with their session and course: dates (local), month, and the per-row flags the
    evaluation, needs and outcome models aggregate. Rows of unknown sessions are left out (the loader
    rejects them). -#}
with attendance as (
    select * from {{ ref('stg_training_attendance__attendance') }}
),

sessions as (
    select * from {{ ref('stg_training_sessions__sessions') }}
),

courses as (
    select * from {{ ref('stg_training_courses__courses') }}
),

joined as (
    select
        attendance.session_id,
        attendance.technician_id,
        sessions.course_id,
        coalesce(courses.is_onboarding, false) as is_onboarding,
        sessions.status as session_status,
        sessions.starts_at,
        sessions.ends_at,
        cast(sessions.starts_at as date) as session_date,
        coalesce(attendance.is_attended, false) as is_attended,
        attendance.is_passed,
        attendance.pre_score,
        attendance.post_score,
        attendance.feedback_score
    from attendance
    inner join sessions
        on attendance.session_id = sessions.session_id
    left join courses
        on sessions.course_id = courses.course_id
),

final as (
    select
        session_id,
        technician_id,
        course_id,
        is_onboarding,
        session_status,
        starts_at,
        ends_at,
        session_date,
        {{ period_start('month', 'session_date') }} as session_month_start,
        cast(
            {{ date_part_of('year', 'session_date') }} * 12 + {{ date_part_of('month', 'session_date') }}
            as integer
        ) as session_month_index,
        is_attended,
        is_passed,
        pre_score,
        post_score,
        feedback_score,
        is_attended and post_score is not null as is_completed,
        is_attended and coalesce(is_passed, false) as is_attended_and_passed,
        is_attended and is_passed = false as is_attended_and_failed,
        is_attended and pre_score is not null and post_score is not null as has_score_pair,
        case
            when is_attended and pre_score is not null and post_score is not null
                then post_score - pre_score
        end as score_gain,
        case when is_attended then feedback_score end as attended_feedback_score
    from joined
)

select * from final
