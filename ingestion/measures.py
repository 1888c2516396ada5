"""What each indicator is computed from: indicator code -> the (feed, column) inputs it needs.

One place for the question "can this source measure that indicator?" (issue 16: not measured is not
zero). The codes are those of dbt_project/seeds/indicator_settings.csv; the inputs follow the dbt
definitions (macros/kpi.sql, models/intermediate/kpi/int_kpi_monthly_sums.sql and the fct_* models):

- resolution indicators count resolved tickets: status resolved/closed with a resolved_at
  (fct_service_tickets.is_resolved), attributed to the month of resolved_at;
- first_time_fix_rate reads first_time_fix, or onsite_visits <= 1 where it is empty;
- reopen_rate reads reopened_count (an empty count is 0 in fct_service_tickets: without the column
  mapped, every ticket would look never reopened);
- sla_attainment compares handling hours with the priority's target (seed sla_targets) or the
  ticket's own sla_due_at; priority is a required ticket column, so resolved_at is what it needs;
- problem_resolution_rate needs resolution_confirmed (empty counts as not confirmed);
- complaint_rate divides complaints received by resolved tickets: it needs both feeds.

Required columns of a feed (ingestion.contracts) are always there when the feed is; they are
listed anyway where an indicator reads them, so the table reads as the definition.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingestion.contracts import FEEDS

FeedColumn = tuple[str, str]


@dataclass(frozen=True)
class IndicatorInputs:
    """`all_of`: every (feed, column) is needed; `any_of`: at least one of them (when given)."""

    all_of: tuple[FeedColumn, ...]
    any_of: tuple[FeedColumn, ...] = ()

    def missing(self, available: set[FeedColumn]) -> list[str]:
        """What is missing, as `feed.column` texts (any_of as `a.x or b.y`); [] when measurable."""
        out = [f"{feed}.{col}" for feed, col in self.all_of if (feed, col) not in available]
        if self.any_of and not any(x in available for x in self.any_of):
            out.append(" or ".join(f"{feed}.{col}" for feed, col in self.any_of))
        return out

    @property
    def feeds(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f for f, _ in (*self.all_of, *self.any_of)))


_RESOLVED = (("tickets", "status"), ("tickets", "created_at"), ("tickets", "resolved_at"), ("tickets", "technician_id"))
_SURVEY = (("surveys", "responded_at"), ("surveys", "technician_id"))
_COMPLAINT = (("complaints", "received_at"), ("complaints", "technician_id"))

INDICATOR_INPUTS: dict[str, IndicatorInputs] = {
    "csat": IndicatorInputs((*_SURVEY, ("surveys", "overall_score"))),
    "customer_rating": IndicatorInputs((*_SURVEY, ("surveys", "overall_score"))),
    "nps": IndicatorInputs((*_SURVEY, ("surveys", "nps"))),
    "avg_handling_time": IndicatorInputs(_RESOLVED),
    "mttr": IndicatorInputs((*_RESOLVED, ("tickets", "service_type"))),
    "first_response_time": IndicatorInputs(
        (("tickets", "created_at"), ("tickets", "first_response_at"), ("tickets", "technician_id"))
    ),
    "sla_attainment": IndicatorInputs((*_RESOLVED, ("tickets", "priority"))),
    "service_attitude": IndicatorInputs((*_SURVEY, ("surveys", "attitude_score"))),
    "technical_level": IndicatorInputs((*_SURVEY, ("surveys", "technical_score"))),
    "first_time_fix_rate": IndicatorInputs(
        (*_RESOLVED, ("tickets", "service_type")), any_of=(("tickets", "first_time_fix"), ("tickets", "onsite_visits"))
    ),
    "reopen_rate": IndicatorInputs((*_RESOLVED, ("tickets", "reopened_count"))),
    "complaint_acceptance_time": IndicatorInputs((*_COMPLAINT, ("complaints", "accepted_at"))),
    "problem_resolution_rate": IndicatorInputs(
        (*_COMPLAINT, ("complaints", "status"), ("complaints", "resolution_confirmed"))
    ),
    "complaint_rate": IndicatorInputs((*_COMPLAINT, *_RESOLVED)),
    "supervisor_review": IndicatorInputs(
        (("supervisor_reviews", "technician_id"), ("supervisor_reviews", "period"), ("supervisor_reviews", "score"))
    ),
}


def unsupported(available: set[FeedColumn]) -> dict[str, list[str]]:
    """Indicator code -> what is missing, for every indicator the available (feed, column)s cannot measure."""
    return {code: miss for code, inputs in INDICATOR_INPUTS.items() if (miss := inputs.missing(available))}


def _check() -> None:
    for code, inputs in INDICATOR_INPUTS.items():
        for feed, col in (*inputs.all_of, *inputs.any_of):
            if feed not in FEEDS or col not in FEEDS[feed].column_names:
                raise ValueError(f"INDICATOR_INPUTS[{code!r}]: {feed}.{col} is not a contract column")


_check()
