"""Run Great Expectations 1.x quality suites against the DuckDB warehouse, store the results, build Data
Docs.

A `ValidationSession` validates any number of suites with one GE context (`run_suites` for a list,
`run_suite` for one): each suite's table is validated in DuckDB through GE's SQL data source (every metric
is a SQL aggregate; see expectations.duckdb_connection for why the connection is read-only with isolated
cursors). At the end of the session - with GE's engines disposed, so no handle on warehouse.duckdb is left -
one row per expectation of every suite is appended to `quality.validation_results` through one read-write
DuckDB connection, and Data Docs are rendered once for the session.

Column expectations run with result format SUMMARY (counts plus up to `SAMPLE_SIZE` offending values);
the SQL rules (`UnexpectedRowsExpectation`) run as a second GE validation with COMPLETE, for which GE
fetches at most 200 offending rows (streamed, not the whole result), so their rows appear as the sample.

Data Docs: an ephemeral GE context whose validation-results store is a folder next to the docs site, so the
site index lists the results of every run (the newest `DOCS_INDEX_RESULTS`: rendering the index reads each
result it lists), not only the last session's.

Why one session per Dagster step, not one per suite (benchmark issue 8): a GE context, its data source and
the rendering of the site index cost the same each time whatever the size of the table, more than a suite's own
queries, so sharing them cuts most of the checks' time (figures in docs/benchmarks.md).

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
The same watermark, on dbt's build log instead of a column of the table. A period mart is rebuilt by period
(delete+insert of the touched periods, docs/incremental.md) and every build appends to
intermediate.int_incremental_build_log the months it recomputed (`model_name, built_at, is_full_build,
month_start`). The `rows` and `periods` rules of such a suite (a `periods` rule holds for the mart when it holds
for each period: uniqueness of a key that includes the period, a quota per team and period) validate only the
rows of the periods rebuilt since the suite's watermark: the periods (of the mart's grain, or of each
period_type) containing a month logged by a build of the mart with `built_at` after it. Its `table` rules
(anything reading other tables or comparing periods) run on the whole table. The stored columns mean the
same with the build log as the increment: `loaded_after` / `loaded_through` bound the `built_at` of the
mart's builds, `rows_through` counts the mart's log entries up to `loaded_through`, and `scope_condition` is
the SQL condition of the rows validated (for both kinds of suite; null = every row). The whole table is
validated when there is no passing validation of these rules, no build log, no log entry of the mart, a
full build since the watermark (first build, `dbt build --full-refresh`: every period rebuilt), a log with a
different number of the mart's entries up to the watermark than then (reset or rewritten), or a row whose
period is not well-formed (null, unknown type, not the first day of its period: no list of periods can place
it). The scope trusts the build log, as the serving publication does: a mart edited outside dbt is not seen
until its periods are rebuilt (a full refresh, or deleting the mart's entries from the log, validates it
whole).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.data_context.types.base import DataContextConfig, ProgressBarsConfig

from expectations.duckdb_connection import validation_connection_factory
from expectations.suites import Check, Suite
from ingestion.paths import duckdb_settings

log = logging.getLogger(__name__)

SAMPLE_SIZE = 10
RESULTS_TABLE = "quality.validation_results"
DOCS_SITE = "servicescore"
# validation results listed on the Data Docs index (newest first; ~40 per nightly ingest + build, so about
# two weeks of runs). Older results keep their pages and stay in quality.validation_results.
DOCS_INDEX_RESULTS = 600

RESULTS_DDL = f"""
create schema if not exists quality;
create table if not exists {RESULTS_TABLE} (
    run_id varchar not null,
    suite varchar not null,
    "table" varchar not null,
    expectation varchar not null,
    "column" varchar,
    description varchar,
    severity varchar not null,
    success boolean not null,
    unexpected_count bigint,
    unexpected_percent double,
    sample json,
    observed_value json,
    exception varchar,
    validated_at timestamptz not null,
    scope varchar,
    loaded_after timestamptz,
    loaded_through timestamptz,
    rows_validated bigint,
    rows_through bigint,
    rules_version varchar,
    scope_condition varchar
);
"""
# columns added after the first release: a warehouse from before gets them (null in its earlier rows)
RESULTS_SCOPE_COLUMNS = (
    ("scope", "varchar"),
    ("loaded_after", "timestamptz"),
    ("loaded_through", "timestamptz"),
    ("rows_validated", "bigint"),
    ("rows_through", "bigint"),
    ("rules_version", "varchar"),
    ("scope_condition", "varchar"),
)
RESULTS_COLUMNS = (
    "run_id",
    "suite",
    "table",
    "expectation",
    "column",
    "description",
    "severity",
    "success",
    "unexpected_count",
    "unexpected_percent",
    "sample",
    "observed_value",
    "exception",
    "validated_at",
    *(name for name, _ in RESULTS_SCOPE_COLUMNS),
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# dbt's build log of the period marts (dbt_project/macros/incremental.sql, record_incremental_build)
BUILD_LOG_TABLE = "int_incremental_build_log"


@dataclass(frozen=True)
class ExpectationDetail:
    expectation_type: str
    column: str | None
    severity: str
    description: str
    success: bool
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    partial_unexpected_list: list[Any] = field(default_factory=list)
    observed_value: Any = None
    exception: str | None = None
    scope: str = "table"  # "rows": validated on the scope's rows only; "table": on the whole table


@dataclass(frozen=True)
class ValidationScope:
    """What an incremental suite validated: its rows rules on the rows whose `column` is in
    (`loaded_after`, `loaded_through`] (`loaded_after` None: every row), its table rules on the whole table.
    A period mart's scope (`period_grain` set): its rows and periods rules on the rows of the periods containing
    `months`, rebuilt by the mart's builds with `built_at` in (`loaded_after`, `loaded_through`] (`condition`)."""

    table: str
    column: str  # the increment: the table's load-time column, or the build log's built_at
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


@dataclass(frozen=True)
class SuiteResult:
    suite: str
    table: str
    run_id: str
    validated_at: datetime
    success_for_errors: bool
    expectations_run: int
    failed_errors: int
    failed_warnings: int
    details: tuple[ExpectationDetail, ...]
    data_docs_index: Path | None = None
    table_missing: bool = False
    scope: ValidationScope | None = None  # incremental suites: what the rows rules covered

    @property
    def failed(self) -> tuple[ExpectationDetail, ...]:
        return tuple(d for d in self.details if not d.success)


# ---------------------------------------------------------------------------------------------- GE context


def _context(data_docs_dir: Path | None) -> Any:
    in_memory = {"class_name": "InMemoryStoreBackend"}
    if data_docs_dir is None:
        results_backend: dict[str, Any] = in_memory
        sites: dict[str, Any] = {}
    else:
        results_backend = {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(data_docs_dir.parent / "gx_validation_results"),
        }
        sites = {
            DOCS_SITE: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(data_docs_dir)},
                # the index reads every result it lists: list the newest ones so its cost stays bounded
                "site_index_builder": {
                    "class_name": "DefaultSiteIndexBuilder",
                    "validation_results_limit": DOCS_INDEX_RESULTS,
                },
            }
        }
    config = DataContextConfig(
        stores={
            "expectations_store": {"class_name": "ExpectationsStore", "store_backend": in_memory},
            "validation_results_store": {"class_name": "ValidationResultsStore", "store_backend": results_backend},
            "checkpoint_store": {"class_name": "CheckpointStore", "store_backend": in_memory},
            "validation_definition_store": {"class_name": "ValidationDefinitionStore", "store_backend": in_memory},
        },
        expectations_store_name="expectations_store",
        validation_results_store_name="validation_results_store",
        checkpoint_store_name="checkpoint_store",
        data_docs_sites=sites,
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _ge_copy(check: Check, index: int) -> gxe.Expectation:
    """A fresh copy per run (GE assigns ids), tagged so results map back to their Check."""
    expectation = check.expectation.copy(deep=True)
    expectation.id = None
    expectation.meta = {**(expectation.meta or {}), "check_index": index, "severity": check.severity}
    expectation.notes = f"[{check.severity}] {check.description}"
    return expectation


# ---------------------------------------------------------------------------------------------- results


def _exception_message(exception_info: Any) -> str | None:
    """GE reports either {raised_exception, exception_message} or {metric_id: {...}} per failing metric."""
    if not exception_info:
        return None
    infos = [exception_info] if "raised_exception" in exception_info else list(exception_info.values())
    for info in infos:
        if isinstance(info, dict) and info.get("raised_exception"):
            message = str(info.get("exception_message") or "exception")
            return message.split("\n[SQL:")[0].strip()
    return None


def _detail(check: Check, ge_result: Any) -> ExpectationDetail:
    result = dict(ge_result.result or {})
    exception = _exception_message(ge_result.exception_info)
    if isinstance(check.expectation, gxe.UnexpectedRowsExpectation):
        rows = (result.get("details") or {}).get("unexpected_rows") or []
        count = result.get("observed_value")
        return ExpectationDetail(
            expectation_type=check.expectation_type,
            column=check.column,
            severity=check.severity,
            description=check.description,
            success=bool(ge_result.success),
            unexpected_count=int(count) if count is not None else None,
            partial_unexpected_list=list(rows[:SAMPLE_SIZE]),
            observed_value=count,
            exception=exception,
        )
    count = result.get("unexpected_count")
    percent = result.get("unexpected_percent")
    return ExpectationDetail(
        expectation_type=check.expectation_type,
        column=check.column,
        severity=check.severity,
        description=check.description,
        success=bool(ge_result.success),
        unexpected_count=int(count) if count is not None else None,
        unexpected_percent=float(percent) if percent is not None else None,
        partial_unexpected_list=list(result.get("partial_unexpected_list") or [])[:SAMPLE_SIZE],
        observed_value=result.get("observed_value"),
        exception=exception,
    )


def _summarise(
    suite: Suite,
    run_id: str,
    validated_at: datetime,
    details: list[ExpectationDetail],
    docs_index: Path | None,
    table_missing: bool = False,
    scope: ValidationScope | None = None,
) -> SuiteResult:
    failed_errors = sum(1 for d in details if not d.success and d.severity == "error")
    failed_warnings = sum(1 for d in details if not d.success and d.severity == "warning")
    return SuiteResult(
        suite=suite.name,
        table=suite.table,
        run_id=run_id,
        validated_at=validated_at,
        success_for_errors=failed_errors == 0,
        expectations_run=len(details),
        failed_errors=failed_errors,
        failed_warnings=failed_warnings,
        details=tuple(details),
        data_docs_index=docs_index,
        table_missing=table_missing,
        scope=scope,
    )


def _json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def _scope_columns(result: SuiteResult, d: ExpectationDetail) -> tuple:
    """scope, loaded_after, loaded_through, rows_validated, rows_through, rules_version, scope_condition of one
    result row ('rows': validated on the suite's increment, every row when loaded_after is null)."""
    scope = result.scope
    if scope is None:
        return ("table", None, None, None, None, None, None)
    if d.scope == "rows":
        return (
            "rows",
            scope.loaded_after,
            scope.loaded_through,
            scope.rows,
            scope.rows_through,
            scope.rules_version,
            scope.where() if scope.incremental else None,
        )
    return ("table", None, scope.loaded_through, scope.table_rows, scope.rows_through, None, None)


def ensure_results_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(RESULTS_DDL)
    for name, dtype in RESULTS_SCOPE_COLUMNS:
        con.execute(f"alter table {RESULTS_TABLE} add column if not exists {name} {dtype}")


def store_results(warehouse: Path, *results: SuiteResult) -> None:
    """Append one row per expectation of every result to quality.validation_results (one short read-write
    connection, one transaction). The scope columns are what moves an incremental suite's watermark: they are
    written in the same transaction as the results, so a watermark never runs ahead of its results."""
    rows = [
        (
            result.run_id,
            result.suite,
            result.table,
            d.expectation_type,
            d.column,
            d.description,
            d.severity,
            d.success,
            d.unexpected_count,
            d.unexpected_percent,
            _json(d.partial_unexpected_list),
            _json(d.observed_value),
            d.exception,
            result.validated_at,
            *_scope_columns(result, d),
        )
        for result in results
        for d in result.details
    ]
    columns = ", ".join(f'"{c}"' for c in RESULTS_COLUMNS)
    with duckdb.connect(str(warehouse), config=duckdb_settings()) as con:
        ensure_results_table(con)
        if rows:
            con.begin()
            con.executemany(
                f"insert into {RESULTS_TABLE} ({columns}) values ({', '.join('?' * len(RESULTS_COLUMNS))})", rows
            )
            con.commit()


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


def _build_log(con: duckdb.DuckDBPyConnection) -> str | None:
    """dbt's build log of the period marts, wherever dbt put it (None: a warehouse without one)."""
    rows = con.execute(
        "select schema_name from duckdb_tables() where database_name = current_database() and table_name = ? "
        "order by schema_name <> 'intermediate', schema_name",
        [BUILD_LOG_TABLE],
    ).fetchall()
    return f"{_quote(rows[0][0])}.{_quote(BUILD_LOG_TABLE)}" if rows else None


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
    model = suite.table_name
    (total,) = con.execute(f"select count(*) from {suite.table}").fetchone()
    log = _build_log(con)
    through, log_rows = None, 0
    if log is not None:
        through_us, log_rows = con.execute(
            f"select epoch_us(max(built_at)), count(*) from {log} where model_name = ?", [model]
        ).fetchone()
        through = _from_us(through_us)
    column = f"{BUILD_LOG_TABLE}.built_at"
    whole = {
        "table": suite.table,
        "column": column,
        "loaded_after": None,
        "loaded_through": through,
        "rows": total,
        "rows_through": log_rows,
        "table_rows": total,
        "rules_version": version,
        "period_grain": grain,
    }
    if log is None:
        return ValidationScope(**whole, reason=f"no dbt build log ({BUILD_LOG_TABLE}): every row validated")
    if through is None:
        return ValidationScope(**whole, reason=f"the build log has no build of {model}: every row validated")
    mark = _watermark(con, suite, version)
    if mark is None:
        return ValidationScope(**whole, reason="no earlier validation of these rules passed: every row validated")
    mark_us, mark_rows, mark_run = mark
    (kept,) = con.execute(
        f"select count(*) from {log} where model_name = ? and epoch_us(built_at) <= ?", [model, mark_us]
    ).fetchone()
    if kept != mark_rows:
        return ValidationScope(
            **whole,
            reason=(
                f"{kept} build log entries of {model} up to the watermark of run {mark_run}, {mark_rows} then: the log "
                "was reset or rewritten (a full refresh), every row validated"
            ),
        )
    full, months = con.execute(
        f"select coalesce(bool_or(is_full_build), false), list(distinct month_start order by month_start) "
        f"filter (where month_start is not null) from {log} where model_name = ? and epoch_us(built_at) > ?",
        [model, mark_us],
    ).fetchone()
    if full:
        return ValidationScope(
            **whole,
            reason=(
                f"{model} was rebuilt whole since the last passing validation (run {mark_run}): every row validated"
            ),
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
    months = tuple(months or ())
    condition = period_condition(grain, months)
    (rows,) = con.execute(f"select count(*) from {suite.table} where {condition}").fetchone()
    loaded_after = _from_us(mark_us)
    return ValidationScope(
        table=suite.table,
        column=column,
        loaded_after=loaded_after,
        loaded_through=through if through > loaded_after else loaded_after,
        rows=rows,
        rows_through=log_rows,
        table_rows=total,
        rules_version=version,
        reason=f"periods rebuilt since the last passing validation (run {mark_run})",
        period_grain=grain,
        months=months,
        condition=condition,
    )


# ---------------------------------------------------------------------------------------------- run


class ValidationSession:
    """Validate several suites with one GE context; store their results and build Data Docs once.

    A Dagster step (one multi-asset check per layer) opens one session: the GE context, one SQL data source
    per schema and the table assets are built once, not per suite; `finish()` disposes every engine (no
    handle on the warehouse stays open), appends the rows of all suites to quality.validation_results in
    one short read-write connection and renders Data Docs once - the pages of this session's results and the
    site index, which lists the stored results of every run (the newest `DOCS_INDEX_RESULTS`).

        with ValidationSession(warehouse, run_id, docs_dir) as session:
            for suite in suites:
                session.validate(suite)
        results = session.results        # stored and documented when the block ends without error
    """

    def __init__(
        self,
        warehouse: Path,
        run_id: str,
        data_docs_dir: Path | None,
        *,
        memory_limit: str | None = None,
        threads: int | None = None,
    ) -> None:
        self.warehouse = Path(warehouse)
        self.run_id = run_id
        self.data_docs_dir = data_docs_dir
        self.memory_limit = memory_limit
        self.threads = threads
        self.results: list[SuiteResult] = []
        self._context: Any = None
        self._datasources: dict[str, Any] = {}
        self._batch_definitions: dict[str, Any] = {}
        self._ge_suite_names: set[str] = set()
        self._docs_identifiers: list[Any] = []
        self._scope_con: duckdb.DuckDBPyConnection | None = None
        self._finished = False

    # -- GE objects, built once per session

    @property
    def context(self) -> Any:
        if self._context is None:
            self._context = _context(self.data_docs_dir)
        return self._context

    def _datasource(self, schema: str) -> Any:
        if schema not in self._datasources:
            self._datasources[schema] = self.context.data_sources.add_sql(
                name=f"warehouse_{schema}",
                connection_string=f"duckdb:///{self.warehouse}",
                kwargs={
                    "creator": validation_connection_factory(self.warehouse, schema, self.memory_limit, self.threads)
                },
            )
        return self._datasources[schema]

    def _batch_definition(self, suite: Suite) -> Any:
        """The table's whole-table batch (one table asset per table; raises when the table cannot be read)."""
        if suite.table not in self._batch_definitions:
            datasource = self._datasource(suite.schema_name)
            with warnings.catch_warnings():
                # GE wants the schema in the connection string; DuckDB URLs have no place for one
                warnings.filterwarnings("ignore", message="`schema_name` is deprecated", category=DeprecationWarning)
                asset = datasource.add_table_asset(
                    name=suite.table, table_name=suite.table_name, schema_name=suite.schema_name
                )
            self._batch_definitions[suite.table] = asset.add_batch_definition_whole_table("whole table")
        return self._batch_definitions[suite.table]

    def _rows_batch_definition(self, suite: Suite, scope: ValidationScope) -> Any:
        """The batch of the scope's rows: a query asset over the table (DuckDB prunes row groups by the
        load-time bounds, so the rows rules read the new loads, not the table)."""
        asset = self._datasource(suite.schema_name).add_query_asset(
            name=f"{suite.name} rows in scope",
            query=f"select * from {suite.table} where {scope.where()}",
        )
        return asset.add_batch_definition_whole_table("rows in scope")

    def _scope(self, suite: Suite) -> ValidationScope | None:
        """The rows an incremental suite's rows rules validate (one read-only connection per session, with the
        same settings as GE's, closed with the session)."""
        if not suite.incremental:
            return None
        try:
            if self._scope_con is None:
                self._scope_con = duckdb.connect(
                    str(self.warehouse), read_only=True, config=duckdb_settings(self.memory_limit, self.threads)
                )
            scope = validation_scope(self._scope_con, suite)
        except duckdb.Error as exc:  # validating more than needed is always sound: the whole table
            log.warning("suite %s: no incremental scope (%s); every row is validated", suite.name, exc)
            return None
        if scope is not None:
            log.info("suite %s: %s", suite.name, scope.describe())
        return scope

    # -- validation

    def validate(self, suite: Suite) -> SuiteResult:
        """Validate one suite (results are stored and documented by `finish`)."""
        if self._finished:
            raise RuntimeError("this validation session is finished")
        if suite.name in self._ge_suite_names:
            raise ValueError(f"suite {suite.name} is validated twice in one session")
        self._ge_suite_names.add(suite.name)
        validated_at = datetime.now(UTC)
        details: list[ExpectationDetail | None] = [None] * len(suite.checks)
        table_missing = False
        scope = self._scope(suite)
        try:
            batch_definition = self._batch_definition(suite)
        except Exception as exc:  # GE raises TestConnectionError when the table does not exist
            log.warning("suite %s: table %s cannot be validated: %s", suite.name, suite.table, exc)
            table_missing = True
            reason = f"table {suite.table} does not exist or cannot be read: {str(exc).splitlines()[0]}"
            details = [
                ExpectationDetail(c.expectation_type, c.column, c.severity, c.description, False, exception=reason)
                for c in suite.checks
            ]
        else:
            scoped = scope is not None and scope.incremental
            row_rules = {i for i, c in enumerate(suite.checks) if scoped and suite.scoped(c)}
            kinds = {
                i: "rows" if scope is not None and suite.scoped(c) else "table" for i, c in enumerate(suite.checks)
            }
            if row_rules and scope is not None and scope.rows == 0:
                # nothing loaded (or rebuilt) since the watermark: no row can break a scoped rule
                for i in row_rules:
                    c = suite.checks[i]
                    details[i] = ExpectationDetail(
                        c.expectation_type, c.column, c.severity, c.description, True, unexpected_count=0, scope="rows"
                    )
                row_rules = set()
            sql_rules = {
                i for i, c in enumerate(suite.checks) if isinstance(c.expectation, gxe.UnexpectedRowsExpectation)
            }
            todo = [i for i in range(len(suite.checks)) if details[i] is None]
            summary = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}
            complete = {"result_format": "COMPLETE"}
            passes = (
                (suite.name, batch_definition, [i for i in todo if i not in row_rules and i not in sql_rules], summary),
                (
                    f"{suite.name}.sql_rules",
                    batch_definition,
                    [i for i in todo if i not in row_rules and i in sql_rules],
                    complete,
                ),
                (
                    f"{suite.name}.rows_in_scope",
                    None,
                    [i for i in todo if i in row_rules and i not in sql_rules],
                    summary,
                ),
                (
                    f"{suite.name}.rows_in_scope.sql_rules",
                    None,
                    [i for i in todo if i in row_rules and i in sql_rules],
                    complete,
                ),
            )
            rows_batch = None
            for ge_suite_name, batch, indexes, result_format in passes:
                if not indexes:
                    continue
                if batch is None:
                    if rows_batch is None:
                        rows_batch = self._rows_batch_definition(suite, scope)
                    batch = rows_batch
                ge_suite = self.context.suites.add(
                    gx.ExpectationSuite(
                        name=ge_suite_name,
                        expectations=[_ge_copy(suite.checks[i], i) for i in indexes],
                        meta={"table": suite.table, "run_id": self.run_id},
                    )
                )
                validation = self.context.validation_definitions.add(
                    gx.ValidationDefinition(name=ge_suite_name, data=batch, suite=ge_suite)
                )
                # no actions: Data Docs are built once for the whole session in finish()
                checkpoint = self.context.checkpoints.add(
                    gx.Checkpoint(
                        name=ge_suite_name,
                        validation_definitions=[validation],
                        actions=[],
                        result_format=result_format,
                    )
                )
                checkpoint_result = checkpoint.run(run_id=gx.RunIdentifier(run_name=self.run_id, run_time=validated_at))
                for identifier, suite_result in checkpoint_result.run_results.items():
                    self._docs_identifiers += [identifier, identifier.expectation_suite_identifier]
                    for ge_result in suite_result.results:
                        index = int(ge_result.expectation_config.meta["check_index"])
                        details[index] = replace(_detail(suite.checks[index], ge_result), scope=kinds[index])

        missing = [suite.checks[i].description for i, d in enumerate(details) if d is None]
        if missing:
            raise RuntimeError(f"suite {suite.name}: GE returned no result for {missing}")
        docs_index = self.data_docs_dir / "index.html" if self.data_docs_dir and not table_missing else None
        result = _summarise(
            suite,
            self.run_id,
            validated_at,
            [d for d in details if d is not None],
            docs_index,
            table_missing,
            None if table_missing else scope,
        )
        self.results.append(result)
        return result

    # -- end of the session

    def close(self) -> None:
        """Dispose every engine GE built (no handle on warehouse.duckdb stays open). Idempotent."""
        for datasource in self._datasources.values():
            _dispose(datasource)
        self._datasources.clear()
        self._batch_definitions.clear()
        if self._scope_con is not None:
            self._scope_con.close()
            self._scope_con = None

    def finish(self, store: bool = True) -> list[SuiteResult]:
        """Close, store all results in one write, build Data Docs once (this session's pages + the index)."""
        self.close()
        if self._finished:
            return self.results
        self._finished = True
        if store and self.results:
            store_results(self.warehouse, *self.results)
        if self.data_docs_dir is not None and self._docs_identifiers:
            self.context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=self._docs_identifiers)
        return self.results

    def __enter__(self) -> ValidationSession:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.close()


def run_suites(
    warehouse: Path,
    suites: Iterable[Suite],
    run_id: str,
    data_docs_dir: Path | None,
    *,
    memory_limit: str | None = None,
    threads: int | None = None,
    store: bool = True,
) -> tuple[list[SuiteResult], dict[str, BaseException]]:
    """Validate `suites` in one session. A suite that raises does not stop the others: the results of the
    rest are stored and documented, and the exceptions come back by suite name for the caller to raise."""
    session = ValidationSession(warehouse, run_id, data_docs_dir, memory_limit=memory_limit, threads=threads)
    errors: dict[str, BaseException] = {}
    try:
        for suite in suites:
            try:
                session.validate(suite)
            except Exception as exc:  # noqa: BLE001 - reported to the caller per suite
                log.exception("suite %s could not be validated", suite.name)
                errors[suite.name] = exc
    except BaseException:
        session.close()
        raise
    return session.finish(store=store), errors


def run_suite(
    warehouse: Path,
    suite: Suite,
    run_id: str,
    data_docs_dir: Path | None,
    *,
    memory_limit: str | None = None,
    threads: int | None = None,
    store: bool = True,
) -> SuiteResult:
    """Validate one suite (a session of one): store the results; build Data Docs under `data_docs_dir`."""
    session = ValidationSession(warehouse, run_id, data_docs_dir, memory_limit=memory_limit, threads=threads)
    try:
        result = session.validate(suite)
    except BaseException:
        session.close()
        raise
    session.finish(store=store)
    return result


def _dispose(datasource: Any) -> None:
    """Close every SQLAlchemy engine GE built for this datasource (no handle on the warehouse stays open)."""
    execution_engine = getattr(datasource, "_execution_engine", None)
    if execution_engine is not None:
        execution_engine.close()
    engine = getattr(datasource, "_engine", None)
    if engine is not None:
        engine.dispose()


def new_run_id() -> str:
    return uuid.uuid4().hex
