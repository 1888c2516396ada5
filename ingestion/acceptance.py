"""How much of a feed is rejected, and when that is too much to go on.

Counted over the whole feed, not one load: a second run that loads nothing new must not turn a feed whose rows
are mostly rejected into an `OK` (raw is append-only; the rejected rows stay until fixed or recovered). Rows
recovered later (ingestion.recovery) no longer count as rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from ingestion.contracts import FEEDS

# share of a feed's rows that may be rejected before the run fails (operations setting max_rejected_share)
DEFAULT_MAX_REJECTED_SHARE = 0.5
TOP_REASONS = 3


@dataclass(frozen=True)
class FeedStanding:
    feed: str
    rows_loaded: int
    rows_rejected: int  # rejected and not recovered
    top_rules: tuple[tuple[str, int], ...]

    @property
    def rows(self) -> int:
        return self.rows_loaded + self.rows_rejected

    @property
    def rejected_share(self) -> float:
        return self.rows_rejected / self.rows if self.rows else 0.0

    def problem(self, max_share: float) -> str | None:
        """A sentence saying why this feed stops the run, or None."""
        if not self.rows_rejected:
            return None
        if self.rows_loaded and self.rejected_share <= max_share:
            return None
        rules = ", ".join(f"{rule} ({n})" for rule, n in self.top_rules)
        what = (
            "no row loaded"
            if not self.rows_loaded
            else f"more than the limit of {max_share:.0%} (setting max_rejected_share)"
        )
        return (
            f"feed {self.feed}: {self.rows_rejected} of {self.rows} rows rejected ({self.rejected_share:.1%}), "
            f"{what}; top rules: {rules}; see: select rule, reason, source_file, line_number from "
            f"raw.rejected_rows where feed = '{self.feed}' and recovered_at is null"
        )


def feed_standings(con: duckdb.DuckDBPyConnection, feeds: list[str] | None = None) -> list[FeedStanding]:
    """Loaded and (still) rejected rows of each feed that has any, with its most frequent rules; one query."""
    names = feeds or list(FEEDS)
    loaded = " union all ".join(f"select '{f}' as feed, count(*) as n from raw.\"{f}\"" for f in names)
    rows = con.execute(f"""
        with loaded as ({loaded}),
        rejected as (
            select feed, rule, count(*) as n from raw.rejected_rows
            where recovered_at is null and feed in (select feed from loaded) group by all
        ),
        ranked as (
            select feed, rule, n, row_number() over (partition by feed order by n desc, rule) as r from rejected
        )
        select l.feed, l.n, coalesce((select sum(n) from rejected as j where j.feed = l.feed), 0),
            coalesce((select list([rule, n::varchar] order by r) from ranked as k
                      where k.feed = l.feed and k.r <= {TOP_REASONS}), [])
        from loaded as l order by l.feed
    """).fetchall()
    return [
        FeedStanding(feed, int(n), int(rej), tuple((r, int(c)) for r, c in top))
        for feed, n, rej, top in rows
        if n or rej
    ]
