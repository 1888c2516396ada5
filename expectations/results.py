"""The stored results of the quality suites: quality.validation_results, one row per expectation of every
validation, and the Python objects a validation gives."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import great_expectations.expectations as gxe

from expectations.checks import Check, Suite

if TYPE_CHECKING:
    from expectations.scope import ValidationScope
from ingestion.paths import duckdb_settings

log = logging.getLogger(__name__)

SAMPLE_SIZE = 10  # offending values kept per expectation (result format SUMMARY)
RESULTS_TABLE = "quality.validation_results"
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


def detail(check: Check, ge_result: Any) -> ExpectationDetail:
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


def summarise(
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
