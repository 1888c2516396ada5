"""Great Expectations suites for the training marts (docs/architecture.md, "Training"), built with the helpers of
expectations.suites.

`training_suites()` returns one Suite per training mart; the error-level checks block publication like the
appraisal suites. Rules: every need has a reason, a priority matching its reason and, for indicator reasons,
a positive gap measured against the right line; coverage respects the course, the horizon and the capacity;
every need is covered or listed as uncovered, never both; rates within 0..1; test gains consistent with the
pre- and post-test means; counts nested (passed <= completed <= attended <= enrolled); the outcome's
difference in differences, improvement sign and insufficient-group flag consistent with its own columns.
"""

from __future__ import annotations

from expectations.checks import Check, Suite, between, in_set, not_null, sql_rule, unique

NEED_REASONS = ("below_threshold", "bottom_quartile", "new_hire_onboarding", "failed_course_retake")
PRIORITIES = ("high", "medium", "low")
UNCOVERED_REASONS = ("no_recommended_course", "no_session_in_horizon", "capacity_full")
TOLERANCE = 1e-6


def _needs_suite(schema: str) -> Suite:
    checks = [
        *(not_null(c) for c in ("need_id", "technician_id", "period_start", "period_end", "need_subject")),
        not_null("need_reason", description="every need has a reason"),
        not_null("reason_detail", description="every need explains its reason in words"),
        not_null("priority"),
        unique(["need_id"]),
        unique(["technician_id", "period_start", "need_reason", "need_subject"]),
        in_set("need_reason", NEED_REASONS),
        in_set("priority", PRIORITIES),
        sql_rule(
            """
select need_id, need_reason, priority, priority_rank
from {batch}
where not (
    (need_reason in ('below_threshold', 'failed_course_retake') and priority = 'high' and priority_rank = 1)
    or (need_reason = 'new_hire_onboarding' and priority = 'medium' and priority_rank = 2)
    or (need_reason = 'bottom_quartile' and priority = 'low' and priority_rank = 3)
)
""",
            "the priority follows the reason (high: below threshold, failed retake; medium: new hire; low: quartile)",
        ),
        sql_rule(
            f"""
select need_id, need_reason, indicator_code, direction, value, threshold, reference_value, gap
from {{batch}}
where need_reason in ('below_threshold', 'bottom_quartile')
    and (
        indicator_code is null
        or value is null
        or reference_value is null
        or gap is null
        or gap <= 0
        or abs(gap - case when direction = 'lower' then value - reference_value
                          else reference_value - value end) > {TOLERANCE}
        or (need_reason = 'below_threshold' and abs(reference_value - threshold) > {TOLERANCE})
    )
""",
            "an indicator need has a positive gap to its line (the threshold, or the bottom-group boundary)",
        ),
        sql_rule(
            """
select need_id, need_reason, hire_date, days_since_hire, failed_session_id
from {batch}
where (need_reason = 'new_hire_onboarding' and (hire_date is null or days_since_hire is null or days_since_hire < 0))
    or (need_reason = 'failed_course_retake' and failed_session_id is null)
""",
            "a new-hire need has its hire date, a retake need its failed session",
        ),
        sql_rule(
            """
select need_id, need_reason, indicator_code, recommended_course_id
from {batch}
where not has_recommended_course
""",
            "every need has a recommended course that exists in the courses feed",
            severity="warning",
        ),
    ]
    return Suite(name="training_needs", table=f"{schema}.training_needs", checks=tuple(checks))


def _plan_suite(schema: str) -> Suite:
    checks = [
        not_null("session_id"),
        not_null("course_id"),
        unique(["session_id"]),
        in_set("status", ("planned", "held")),
        between("capacity", 1, None, description="capacity >= 1"),
        between("covered_technicians_count", 0, None, description="covered_technicians_count >= 0"),
        sql_rule(
            """
select session_id, capacity, covered_technicians_count
from {batch}
where capacity is not null
    and covered_technicians_count > capacity
""",
            "a session covers no more technicians than its capacity",
        ),
        sql_rule(
            """
select session_id, course_id, starts_at, as_of_date
from {batch}
where is_behind_schedule
""",
            "no planned session is behind schedule (start date passed, not held)",
            severity="warning",
        ),
    ]
    return Suite(name="training_plan", table=f"{schema}.training_plan", checks=tuple(checks))


def _coverage_suite(schema: str) -> Suite:
    checks = [
        not_null("need_id"),
        not_null("session_id"),
        unique(["need_id"], description="a need is covered by at most one session"),
        between("days_after_period_end", 1, None, description="the session starts after the need's period end"),
        sql_rule(
            """
select need_id, session_id, seat_number, capacity
from {batch}
where capacity is not null
    and seat_number > capacity
""",
            "a covered need's technician has a seat within the capacity",
        ),
        sql_rule(
            f"""
with batch_rows as (
    select * from {{batch}}
)

select
    batch_rows.need_id,
    batch_rows.session_id,
    batch_rows.course_id,
    needs.recommended_course_id
from batch_rows
left join {schema}.training_needs as needs
    on batch_rows.need_id = needs.need_id
where needs.need_id is null
    or needs.recommended_course_id is distinct from batch_rows.course_id
""",
            "a need is covered by a session of its recommended course",
        ),
    ]
    return Suite(name="training_plan_coverage", table=f"{schema}.training_plan_coverage", checks=tuple(checks))


def _uncovered_suite(schema: str) -> Suite:
    checks = [
        not_null("need_id"),
        not_null("need_reason", description="every uncovered need has a reason"),
        unique(["need_id"]),
        in_set("uncovered_reason", UNCOVERED_REASONS),
        sql_rule(
            f"""
select need_id
from {{batch}}
where need_id in (select need_id from {schema}.training_plan_coverage)
""",
            "no need is both covered and uncovered",
        ),
        sql_rule(
            f"""
with batch_rows as (
    select need_id from {{batch}}
)

select needs.need_id, needs.need_reason
from {schema}.training_needs as needs
left join batch_rows
    on needs.need_id = batch_rows.need_id
left join {schema}.training_plan_coverage as coverage
    on needs.need_id = coverage.need_id
where batch_rows.need_id is null
    and coverage.need_id is null
""",
            "every need is either covered by a session or listed as uncovered",
        ),
    ]
    return Suite(name="training_needs_uncovered", table=f"{schema}.training_needs_uncovered", checks=tuple(checks))


def _evaluation_checks() -> list[Check]:
    """Checks shared by the session and course evaluations."""
    return [
        *(
            between(rate, 0, 1, description=f"{rate} is a rate within 0..1")
            for rate in ("attendance_rate", "completion_rate", "pass_rate")
        ),
        between("mean_pre_score", 0, 100, description="mean_pre_score within 0..100"),
        between("mean_post_score", 0, 100, description="mean_post_score within 0..100"),
        between("mean_score_gain", -100, 100, description="mean_score_gain within -100..100"),
        between("mean_feedback_score", 1, 5, description="mean_feedback_score within 1..5"),
        sql_rule(
            f"""
select *
from {{batch}}
where (scored_pairs_count > 0
        and (mean_score_gain is null or mean_pre_score is null or mean_post_score is null
             or abs(mean_score_gain - (mean_post_score - mean_pre_score)) > {TOLERANCE}))
    or (coalesce(scored_pairs_count, 0) = 0 and mean_score_gain is not null)
""",
            "mean_score_gain = mean_post_score - mean_pre_score (gain consistent with the pre/post scores)",
        ),
        sql_rule(
            """
select *
from {batch}
where not (
    passed_count <= completed_count
    and completed_count <= attended_count
    and scored_pairs_count <= attended_count
    and feedback_count <= attended_count
    and attended_count <= enrolled_count
)
""",
            "counts are nested: passed <= completed <= attended <= enrolled",
        ),
        sql_rule(
            f"""
select *
from {{batch}}
where (enrolled_count > 0
        and abs(attendance_rate - cast(attended_count as double) / enrolled_count) > {TOLERANCE})
    or (completed_count > 0 and abs(pass_rate - cast(passed_count as double) / completed_count) > {TOLERANCE})
""",
            "rates match their counts (attended / enrolled, passed / completed)",
        ),
    ]


def _session_evaluation_suite(schema: str) -> Suite:
    checks = [
        not_null("session_id"),
        unique(["session_id"]),
        in_set("status", ("planned", "held", "cancelled")),
        not_null("is_behind_schedule"),
        *_evaluation_checks(),
        sql_rule(
            """
select session_id, status, session_date, as_of_date
from {batch}
where is_behind_schedule <> (status = 'planned' and session_date < as_of_date)
""",
            "behind schedule = planned and the start date passed",
        ),
    ]
    return Suite(
        name="training_session_evaluation", table=f"{schema}.training_session_evaluation", checks=tuple(checks)
    )


def _course_evaluation_suite(schema: str) -> Suite:
    checks = [
        not_null("course_id"),
        unique(["course_id"]),
        *_evaluation_checks(),
        sql_rule(
            """
select course_id, sessions_count, held_sessions_count, planned_sessions_count, cancelled_sessions_count
from {batch}
where sessions_count <> held_sessions_count + planned_sessions_count + cancelled_sessions_count
    or behind_schedule_sessions_count > planned_sessions_count
""",
            "session counts add up (held + planned + cancelled; behind schedule <= planned)",
        ),
    ]
    return Suite(name="training_course_evaluation", table=f"{schema}.training_course_evaluation", checks=tuple(checks))


def _outcome_suite(schema: str) -> Suite:
    checks = [
        not_null("course_id"),
        not_null("indicator_code"),
        not_null("is_insufficient"),
        unique(["course_id", "indicator_code"]),
        between("trained_count", 0, None, description="trained_count >= 0"),
        between("control_count", 0, None, description="control_count >= 0"),
        sql_rule(
            """
select course_id, indicator_code, trained_count, control_count, min_group_size, is_insufficient
from {batch}
where is_insufficient <> (trained_count < min_group_size or control_count < min_group_size)
""",
            "is_insufficient exactly when the trained or the control group is below min_group_size",
        ),
        sql_rule(
            f"""
select course_id, indicator_code, direction, trained_change, control_change, diff_in_diff, improvement, is_improved
from {{batch}}
where diff_in_diff is not null
    and (
        abs(diff_in_diff - (trained_change - control_change)) > {TOLERANCE}
        or abs(trained_change - (trained_after_mean - trained_before_mean)) > {TOLERANCE}
        or abs(control_change - (control_after_mean - control_before_mean)) > {TOLERANCE}
        or abs(improvement - case when direction = 'lower' then -diff_in_diff else diff_in_diff end) > {TOLERANCE}
        or is_improved <> (improvement > 0)
    )
""",
            "difference in differences, direction-aware improvement and is_improved are consistent",
        ),
    ]
    return Suite(name="training_outcome", table=f"{schema}.training_outcome", checks=tuple(checks))


def training_suites(schema: str = "marts") -> list[Suite]:
    """One suite per training mart, in build order."""
    return [
        _needs_suite(schema),
        _plan_suite(schema),
        _coverage_suite(schema),
        _uncovered_suite(schema),
        _session_evaluation_suite(schema),
        _course_evaluation_suite(schema),
        _outcome_suite(schema),
    ]
