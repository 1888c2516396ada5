"""Can this source measure that indicator? The inputs of each indicator (feed columns) are the catalogue's
(`inputs` of each entry of var `indicators`, dbt_project.yml; ingestion/indicator_catalogue.py): not measured is
not zero (issue 16). The inputs follow the dbt definitions of the facts and sums:

- resolution indicators count resolved tickets: status resolved/closed with a resolved_at
  (fct_service_tickets.is_resolved), attributed to the month of resolved_at;
- first_time_fix_rate reads first_time_fix, or onsite_visits <= 1 where it is empty;
- reopen_rate reads reopened_count (not reported by the source: not measured);
- sla_attainment compares handling hours with the priority's target (seed sla_targets) or the
  ticket's own sla_due_at; priority is a required ticket column, so resolved_at is what it needs;
- problem_resolution_rate needs resolution_confirmed (empty counts as not confirmed);
- complaint_rate divides complaints received by resolved tickets: it needs both feeds.

Required columns of a feed (ingestion.contracts) are always there when the feed is; they are
listed anyway where an indicator reads them, so the catalogue reads as the definition.
tests/test_indicator_catalogue.py checks that every input is a contract column.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingestion.indicator_catalogue import indicators

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


def indicator_inputs() -> dict[str, IndicatorInputs]:
    """Indicator code -> its inputs, in catalogue order."""
    return {i.code: IndicatorInputs(i.inputs_all_of, i.inputs_any_of) for i in indicators()}


def unsupported(available: set[FeedColumn]) -> dict[str, list[str]]:
    """Indicator code -> what is missing, for every indicator the available (feed, column)s cannot measure."""
    return {code: miss for code, inputs in indicator_inputs().items() if (miss := inputs.missing(available))}
