"""Which rows a suite validates: the watermark of an append-only table, or the periods a period mart rebuilt.

Incremental validation of append-only tables (suites with an `increment_column`: the raw feeds, `_loaded_at`)
-----------------------------------------------------------------------------------------------------------
The `rows` rules of such a suite (expectations.suites: a rule that holds for a table when it holds for every
row or load) validate only the rows after the suite's *watermark*; its `table` rules (volume, freshness,
uniqueness, the newest load) always run on the whole table. Every stored result row says what it covered:
`scope` ('rows' or 'table'), `loaded_after` (exclusive, null = from the first row) and `loaded_through`
(inclusive) bounds of the increment column, `rows_validated`, `rows_through` (rows up to `loaded_through`
then) and `rules_version` (a hash of the suite's rows rules). The watermark is the `loaded_through` of the
latest validation of the suite whose rows rules *all passed* (warnings included) with the same
`rules_version`; so rows whose validation failed, raised or never ran stay in scope until a validation of
them passes, and a new or changed rows rule sees the whole table once. The watermark is used only if the
table still has exactly `rows_through` rows up to it (otherwise rows were added behind it, deleted or
reloaded: the whole table is validated) and no row lacks a load time. A table without the column, with no
earlier passing validation, or a full run from empty: everything is validated, as before. A scope with no
new rows records its rows rules as passed on 0 rows without a GE query.

Incremental validation of period marts (suites with a `period_grain`: the KPI and appraisal marts)
-------------------------------------------------------------------------------------------------
The same watermark, on the change-window audit instead of a column of the table. A period mart is rebuilt by
period (delete+insert of the months of the run's change window, docs/incremental.md), and after every dbt build
the orchestration appends that window to audit.change_windows (ingestion/change_window.py: `run_id, built_at,
is_full_build, month_start, ...`). The `rows` and `periods` rules of such a suite (a `periods` rule holds for the
mart when it holds for each period: uniqueness of a key that includes the period, a quota per team and period)
validate only the rows of the periods rebuilt since the suite's watermark: the periods (of the mart's grain, or of
each period_type) containing a month of a window with `built_at` after it. Its `table` rules (anything reading
other tables or comparing periods) run on the whole table. The stored columns mean the same with the audit as
the increment: `loaded_after` / `loaded_through` bound the windows' `built_at`, `rows_through` counts the audit's
rows up to `loaded_through`, and `scope_condition` is the SQL condition of the rows validated (for both kinds of
suite; null = every row). The whole table is validated when there is no passing validation of these rules, no
audit, a full window since the watermark (first build, `dbt build --full-refresh`, a run that did not build the
window), an audit with a different number of rows up to the watermark than then (reset or rewritten), or a row
whose period is not well-formed (null, unknown type, not the first day of its period: no list of periods can
place it). The scope trusts the audit, as the serving publication does: a mart edited outside dbt is not seen
until its periods are rebuilt (a full refresh validates it whole).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb

from expectations.checks import Suite
from expectations.results import RESULTS_TABLE
from ingestion.change_window import AUDIT_TABLE, audit_mark, changes_since

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# what a stored result of a period mart's scope is bounded by (the change-window audit's built_at)
WINDOW_COLUMN = f"{AUDIT_TABLE}.built_at"


@dataclass(frozen=True)
class ValidationScope:
    """What an incremental suite validated: its rows rules on the rows whose `column` is in
    (`loaded_after`, `loaded_through`] (`loaded_after` None: every row), its table rules on the whole table.
    A period mart's scope (`period_grain` set): its rows and periods rules on the rows of the periods containing
    `months`, rebuilt by the mart's builds with `built_at` in (`loaded_after`, `loaded_through`] (`condition`)."""

    table: str
    column: str  # the increment: the table's load-time column, or the change-window audit's built_at
    loaded_after: datetime | None
    loaded_through: datetime | None  # None: the table has no rows (no logged build of a period mart)
    rows: int  # rows the rows rules validated
    rows_through: int  # rows with column <= loaded_through (the table when validated); log entries of a mart
    table_rows: int
    rules_version: str
    reason: str
    period_grain: str | None = None  # a period mart's grain (expectations.suites.PeriodGrain)
    months: tuple[date, ...] = ()  # a period mart: the months rebuilt since loaded_after
    condition: str | None = None  # a period mart: the SQL condition of its rows in scope

    @property
    def incremental(self) -> bool:
        return self.loaded_after is not None

    def where(self) -> str:
        """The SQL condition selecting the scope's rows (literals only: bounds come from the warehouse)."""
        if self.condition is not None:
            return self.condition
        column = _quote(self.column)
        if self.loaded_through is None:
            return "false"
        condition = f"{column} <= timestamptz '{self.loaded_through.isoformat()}'"
        if self.loaded_after is not None:
            condition = f"{column} > timestamptz '{self.loaded_after.isoformat()}' and {condition}"
        return condition

    def describe(self) -> str:
        table = f"table rules on the whole table ({self.table_rows} rows); {self.reason}"
        if self.period_grain is not None:
            if not self.incremental:
                return f"row and period rules on all {self.rows} rows; {table}"
            months = (
                f"the periods containing months {', '.join(m.strftime('%Y-%m') for m in self.months)}"
                if self.months
                else "no rebuilt period"
            )
            return (
                f"row and period rules on {self.rows} rows: {months} (rebuilt by builds with {self.column} in "
                f"({self.loaded_after.isoformat()}, {self.loaded_through.isoformat()}]); {table}"
            )
        if not self.incremental:
            rows = f"all {self.rows} rows" + (
                f" ({self.column} up to {self.loaded_through.isoformat()})" if self.loaded_through else ""
            )
        else:
            rows = (
                f"{self.rows} rows with {self.column} in ({self.loaded_after.isoformat()}, "
                f"{self.loaded_through.isoformat() if self.loaded_through else '-'}]"
            )
        return f"row rules on {rows}; {table}"


# ---------------------------------------------------------------------------------------------- scope


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _from_us(micros: int | None) -> datetime | None:
    return None if micros is None else EPOCH + timedelta(microseconds=int(micros))


def rules_version(suite: Suite) -> str:
    """A hash of the suite's scoped rules (Suite.scoped) and increment (column or period grain): a watermark
    holds only for the rules it was validated with (a new or changed scoped rule validates the whole table
    once)."""
    rules = [
        [check.severity, json.loads(json.dumps(check.expectation.configuration.to_json_dict(), default=str))]
        for check in suite.checks
        if suite.scoped(check)
    ]
    identity: list[Any] = [suite.table, suite.increment_column, rules]
    if suite.period_grain is not None:  # (raw suites keep the versions they were stored with)
        identity.append(suite.period_grain)
    payload = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    schema, name = table.split(".")
    return {
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
            [schema, name],
        ).fetchall()
    }


def _watermark(con: duckdb.DuckDBPyConnection, suite: Suite, version: str) -> tuple[int, int, str] | None:
    """(loaded_through in epoch microseconds, rows_through, run id) of the latest validation of `suite`'s
    scoped rules (this `version`) in which every one of them passed; None if there is none."""
    if "rules_version" not in _columns(con, RESULTS_TABLE):
        return None
    n_rules = sum(1 for c in suite.checks if suite.scoped(c))
    return con.execute(
        f"""
        select epoch_us(loaded_through), any_value(rows_through), run_id
        from {RESULTS_TABLE}
        where suite = ? and scope = 'rows' and rules_version = ? and loaded_through is not null
        group by run_id, validated_at, loaded_through
        having bool_and(success) and count(*) = ?
        order by loaded_through desc, validated_at desc
        limit 1
        """,
        [suite.name, version, n_rules],
    ).fetchone()


def validation_scope(con: duckdb.DuckDBPyConnection, suite: Suite) -> ValidationScope | None:
    """The scope of an incremental suite's scoped rules (None: not incremental, or the table / column is
    missing, in which case the whole table is validated as for any suite)."""
    if suite.period_grain is not None:
        return _period_scope(con, suite)
    column = suite.increment_column
    if column is None or column not in _columns(con, suite.table):
        return None
    version = rules_version(suite)
    c = _quote(column)
    through_us, total, without = con.execute(
        f"select epoch_us(max({c})), count(*), count(*) - count({c}) from {suite.table}"
    ).fetchone()
    through = _from_us(through_us)
    whole = {
        "table": suite.table,
        "column": column,
        "loaded_after": None,
        "loaded_through": through,
        "rows": total,
        "rows_through": total - without,
        "table_rows": total,
        "rules_version": version,
    }
    if without:
        return ValidationScope(**whole, reason=f"{without} rows have no {column}: every row validated")
    mark = _watermark(con, suite, version)
    if mark is None:
        return ValidationScope(**whole, reason="no earlier validation of these rules passed: every row validated")
    mark_us, mark_rows, mark_run = mark
    loaded_after = _from_us(mark_us)
    (now_rows,) = con.execute(
        f"select count(*) from {suite.table} where {c} <= cast(? as timestamptz)", [loaded_after.isoformat()]
    ).fetchone()
    if now_rows != mark_rows:
        return ValidationScope(
            **whole,
            reason=(
                f"{now_rows} rows up to the watermark of run {mark_run}, {mark_rows} then: rows were added, deleted "
                "or reloaded behind it, every row validated"
            ),
        )
    return ValidationScope(
        table=suite.table,
        column=column,
        loaded_after=loaded_after,
        loaded_through=through if through is not None and through > loaded_after else loaded_after,
        rows=total - now_rows,
        rows_through=total,
        table_rows=total,
        rules_version=version,
        reason=f"rows loaded after the last passing validation (run {mark_run})",
    )


def _period_starts(months: Iterable[date], grain: str) -> list[date]:
    """The starts of the periods of `grain` containing `months` (as macros/incremental.sql roll_up_months)."""
    if grain == "month":
        starts = {date(m.year, m.month, 1) for m in months}
    elif grain == "quarter":
        starts = {date(m.year, (m.month - 1) // 3 * 3 + 1, 1) for m in months}
    elif grain == "year":
        starts = {date(m.year, 1, 1) for m in months}
    else:
        raise ValueError(f"period grain must be month, quarter or year, not {grain!r}")
    return sorted(starts)


def _period_starts_sql(months: Iterable[date], grain: str) -> str:
    return ", ".join("date '" + s.isoformat() + "'" for s in _period_starts(months, grain))


def period_condition(grain: str, months: Iterable[date]) -> str:
    """The SQL condition selecting the rows of a period mart's periods (of its grain, or of each period_type)
    containing `months` ("false" when there are none). Only sound with well-formed periods
    (`malformed_periods` is 0): a row with a null, unknown or misaligned period is in no list."""
    months = list(months)
    if not months:
        return "false"
    start = _quote("period_start")
    if grain != "period_type":
        return f"{start} in ({_period_starts_sql(months, grain)})"
    return " or ".join(
        f"({_quote('period_type')} = '{g}' and {start} in ({_period_starts_sql(months, g)}))"
        for g in ("month", "quarter", "year")
    )


def malformed_periods(con: duckdb.DuckDBPyConnection, table: str, grain: str) -> int:
    """How many distinct periods of a period mart are not well-formed: a null start or type, a type other than
    month / quarter / year, a start that is not the first day of its period (one scan of the period columns,
    the test on the few distinct values)."""
    start = _quote("period_start")
    if grain == "period_type":
        kind = _quote("period_type")
        columns = f"{kind}, {start}"
        aligned = (
            f"{kind} in ('month', 'quarter', 'year') and {start} = case {kind} "
            + " ".join(f"when '{g}' then date_trunc('{g}', {start})" for g in ("month", "quarter", "year"))
            + " end"
        )
    else:
        columns = start
        aligned = f"{start} = date_trunc('{grain}', {start})"
    (count,) = con.execute(
        f"select count(*) from (select distinct {columns} from {table}) where not coalesce({aligned}, false)"
    ).fetchone()
    return int(count)


def _period_scope(con: duckdb.DuckDBPyConnection, suite: Suite) -> ValidationScope | None:
    """The scope of a period mart's rows and periods rules: the periods its builds recomputed since the
    watermark (see the module doc). None when the table lacks its period columns (validated whole)."""
    grain = suite.period_grain
    needed = {"period_start", "period_type"} if grain == "period_type" else {"period_start"}
    if not needed <= _columns(con, suite.table):
        return None
    version = rules_version(suite)
    (total,) = con.execute(f"select count(*) from {suite.table}").fetchone()
    audit = audit_mark(con)
    through = None if audit is None else _from_us(audit.built_at_us)
    audit_rows = 0 if audit is None else audit.rows
    whole = {
        "table": suite.table,
        "column": WINDOW_COLUMN,
        "loaded_after": None,
        "loaded_through": through,
        "rows": total,
        "rows_through": audit_rows,
        "table_rows": total,
        "rules_version": version,
        "period_grain": grain,
    }
    if through is None:
        return ValidationScope(**whole, reason="no change window recorded yet: every row validated")
    mark = _watermark(con, suite, version)
    if mark is None:
        return ValidationScope(**whole, reason="no earlier validation of these rules passed: every row validated")
    mark_us, mark_rows, mark_run = mark
    changes = changes_since(con, mark_us, mark_rows)
    if changes.full:
        return ValidationScope(
            **whole, reason=f"{changes.reason}, since the last passing validation (run {mark_run}): every row validated"
        )
    malformed = malformed_periods(con, suite.table, grain)
    if malformed:
        return ValidationScope(
            **whole,
            reason=(
                f"{malformed} periods are null, of an unknown type or not the first day of their period: no list of "
                "rebuilt periods can place their rows, every row validated"
            ),
        )
    months = changes.months
    condition = period_condition(grain, months)
    (rows,) = con.execute(f"select count(*) from {suite.table} where {condition}").fetchone()
    loaded_after = _from_us(mark_us)
    return ValidationScope(
        table=suite.table,
        column=WINDOW_COLUMN,
        loaded_after=loaded_after,
        loaded_through=through if through > loaded_after else loaded_after,
        rows=rows,
        rows_through=audit_rows,
        table_rows=total,
        rules_version=version,
        reason=f"periods rebuilt since the last passing validation (run {mark_run})",
        period_grain=grain,
        months=months,
        condition=condition,
    )
