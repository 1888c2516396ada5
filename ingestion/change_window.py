"""The change window's audit: what each run rebuilt, in one append-only table the orchestration writes.

dbt decides once per run which months the period marts recompute (dbt_project/models/intermediate/incremental/
int_change_window.sql: the months touched since the last complete run). After the build the orchestration
appends that window to `audit.change_windows` in the warehouse (`record_window`), and everything else reads the
same rows: the next run's instant (`window_since`), the quality suites' period scope (expectations/scope.py), the
publication's candidate periods (orchestration/publication/periods.py) and the whole-history tests' first month
(orchestration/transform.py verified_build_env). One row per run and month (one row with a null month when the
run recomputed nothing, or everything: is_full_build). A run that did not build the window (a dbt selection
without it) is recorded as a full, incomplete window: its marts may have recomputed anything.

A reader remembers a *mark* (`audit_mark`: the latest built_at and the number of rows up to it) and later asks
what changed since (`changes_since`): every period, when the audit was reset or rewritten (not the same number
of rows up to the mark) or a full window was recorded since; otherwise the months recorded since.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from ingestion.warehouse import quote_ident

AUDIT_SCHEMA = "audit"
AUDIT_TABLE = "change_windows"
# the dbt model that decides the window, and its schema (dbt_project.yml: intermediate models)
WINDOW_MODEL = "int_change_window"
WINDOW_SCHEMA = "intermediate"


@dataclass(frozen=True)
class Mark:
    """A position in the audit: the latest built_at (epoch µs, None when empty) and the rows up to it."""

    built_at_us: int | None
    rows: int
    built_at: str | None

    def as_dict(self) -> dict[str, object]:
        return {"built_at_us": self.built_at_us, "rows": self.rows, "built_at": self.built_at}


@dataclass(frozen=True)
class Changes:
    """What the audit says changed since a mark: `full` (every period), else the months recorded since."""

    full: bool
    months: tuple[dt.date, ...]
    reason: str


def _prefix(catalog: str | None) -> str:
    return f"{quote_ident(catalog)}." if catalog else ""


def audit_relation(catalog: str | None = None) -> str:
    return f"{_prefix(catalog)}{quote_ident(AUDIT_SCHEMA)}.{quote_ident(AUDIT_TABLE)}"


def _exists(con: duckdb.DuckDBPyConnection, catalog: str | None, schema: str, table: str) -> bool:
    database = "current_database()" if catalog is None else "?"
    params = [table, schema] if catalog is None else [catalog, table, schema]
    (count,) = con.execute(
        f"select count(*) from duckdb_tables() where database_name = {database} and table_name = ? and schema_name = ?",
        params,
    ).fetchone()
    return count > 0


def has_audit(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> bool:
    return _exists(con, catalog, AUDIT_SCHEMA, AUDIT_TABLE)


def audit_ddl() -> tuple[str, ...]:
    """The statements that create the audit (idempotent)."""
    return (
        f"create schema if not exists {quote_ident(AUDIT_SCHEMA)}",
        f"create table if not exists {audit_relation()} (run_id varchar not null, built_at timestamptz not null, "
        "changed_since timestamptz, is_full_build boolean not null, month_start date, is_complete boolean not null, "
        "recorded_at timestamptz not null)",
    )


def ensure_audit(con: duckdb.DuckDBPyConnection) -> None:
    for statement in audit_ddl():
        con.execute(statement)


def record_window(
    con: duckdb.DuckDBPyConnection, run_id: str, started_at: dt.datetime, complete: bool
) -> dict[str, object]:
    """Append this run's window (the warehouse's int_change_window, built by the dbt run that started after
    `started_at`) to the audit. `complete`: the run built every dbt model, so the next run may start its window
    from this one. A window older than `started_at` (not rebuilt by this run) is recorded as a full, incomplete
    window. Returns what was recorded: full, months, complete."""
    ensure_audit(con)
    window = f"{quote_ident(WINDOW_SCHEMA)}.{quote_ident(WINDOW_MODEL)}"
    fresh = False
    if _exists(con, None, WINDOW_SCHEMA, WINDOW_MODEL):
        (fresh,) = con.execute(f"select coalesce(min(built_at) >= ?, false) from {window}", [started_at]).fetchone()
    if fresh:
        con.execute(
            f"insert into {audit_relation()} select ?, built_at, changed_since, is_full_build, month_start, ?, "
            f"current_timestamp from {window} order by month_start",
            [run_id, complete],
        )
        full, months = con.execute(
            f"select bool_or(is_full_build), list(month_start order by month_start) filter (where month_start is not "
            f"null) from {window}"
        ).fetchone()
        return {"full": bool(full), "months": [m.isoformat() for m in months or []], "complete": complete}
    con.execute(
        f"insert into {audit_relation()} values (?, current_timestamp, null, true, null, false, current_timestamp)",
        [run_id],
    )
    return {"full": True, "months": [], "complete": False, "reason": f"{WINDOW_MODEL} was not built by this run"}


def window_since(con: duckdb.DuckDBPyConnection) -> str | None:
    """The instant the next run's window starts from: the start of the last complete run (ISO-8601, UTC), or None
    (no complete run recorded: every period)."""
    if not has_audit(con):
        return None
    (since,) = con.execute(f"select max(built_at) from {audit_relation()} where is_complete").fetchone()
    return None if since is None else since.astimezone(dt.UTC).isoformat()


def audit_mark(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> Mark | None:
    """The audit's current position (None: no audit yet)."""
    if not has_audit(con, catalog):
        return None
    built_at_us, rows, built_at = con.execute(
        f"select epoch_us(max(built_at)), count(*), cast(max(built_at) as varchar) from {audit_relation(catalog)}"
    ).fetchone()
    return Mark(built_at_us, int(rows), built_at)


def changes_since(
    con: duckdb.DuckDBPyConnection,
    since_us: int,
    since_rows: int,
    catalog: str | None = None,
    through_us: int | None = None,
) -> Changes:
    """What the audit recorded after the mark (`since_us`, `since_rows`) and up to `through_us` (None: the end)."""
    if not has_audit(con, catalog):
        return Changes(True, (), "no change-window audit: every period")
    relation = audit_relation(catalog)
    (kept,) = con.execute(f"select count(*) from {relation} where epoch_us(built_at) <= ?", [since_us]).fetchone()
    if kept != since_rows:
        return Changes(
            True,
            (),
            f"{kept} change-window rows up to the mark, {since_rows} then: the audit was reset or rewritten, "
            "every period",
        )
    upper = "" if through_us is None else f" and epoch_us(built_at) <= {int(through_us)}"
    full, months = con.execute(
        f"select coalesce(bool_or(is_full_build), false), list(distinct month_start order by month_start) filter "
        f"(where month_start is not null) from {relation} where epoch_us(built_at) > ?{upper}",
        [since_us],
    ).fetchone()
    if full:
        return Changes(True, (), "every period was rebuilt whole by a run since (a full window)")
    return Changes(False, tuple(months or ()), "months recomputed since")
