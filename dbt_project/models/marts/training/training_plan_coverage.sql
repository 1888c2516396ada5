{#- Bridge need -> session: the needs a scheduled session covers (see int_training_coverage_candidates). -#}
with candidates as (
    select * from {{ ref('int_training_coverage_candidates') }}
),

needs as (
    select * from {{ ref('training_needs') }}
),

attendance as (
    select * from {{ ref('int_training_attendance') }}
),

final as (
    select
        candidates.need_id,
        candidates.session_id,
        candidates.technician_id,
        needs.team_id,
        needs.period_label,
        needs.period_end,
        needs.need_reason,
        needs.need_subject,
        needs.priority,
        candidates.course_id,
        candidates.session_status,
        candidates.starts_at,
        candidates.session_date,
        candidates.days_after_period_end,
        candidates.capacity,
        candidates.seat_number,
        attendance.session_id is not null as is_enrolled,
        coalesce(attendance.is_attended, false) as is_attended,
        attendance.is_passed
    from candidates
    inner join needs
        on candidates.need_id = needs.need_id
    left join attendance
        on candidates.session_id = attendance.session_id
        and candidates.technician_id = attendance.technician_id
    where candidates.is_within_capacity
)

select * from final
