{#- Needs no scheduled session covers, with why: no_recommended_course (the mapping has no course for the
    indicator, or the course is not in the feed), no_session_in_horizon (no planned or held session of the
    course starts 1..coverage_horizon_days days after the period end) or capacity_full (the earliest such
    session had no seat left; candidate_session_id names it). -#}
with needs as (
    select * from {{ ref('training_needs') }}
),

candidates as (
    select * from {{ ref('int_training_coverage_candidates') }}
),

settings as (
    select * from {{ ref('int_training_settings') }}
),

final as (
    select
        needs.need_id,
        needs.technician_id,
        needs.team_id,
        needs.period_type,
        needs.period_start,
        needs.period_end,
        needs.period_label,
        needs.need_reason,
        needs.need_subject,
        needs.priority,
        needs.priority_rank,
        needs.reason_detail,
        needs.indicator_code,
        needs.gap,
        needs.recommended_course_id,
        needs.recommended_course_title,
        case
            when not needs.has_recommended_course then 'no_recommended_course'
            when candidates.need_id is null then 'no_session_in_horizon'
            else 'capacity_full'
        end as uncovered_reason,
        candidates.session_id as candidate_session_id,
        settings.coverage_horizon_days
    from needs
    cross join settings
    left join candidates
        on needs.need_id = candidates.need_id
    where candidates.need_id is null
        or not candidates.is_within_capacity
)

select * from final
