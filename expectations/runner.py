"""Run one quality suite against the DuckDB warehouse with Great Expectations 1.x, store the results, build
Data Docs.

`run_suite` validates the suite's table in DuckDB through GE's SQL data source (every metric is a SQL
aggregate; see expectations.duckdb_connection for why the connection is read-only with isolated cursors),
then - with GE's engine disposed, so no handle on warehouse.duckdb is left - appends one row per expectation
to `quality.validation_results`, opening a read-write DuckDB connection only for that write.

Column expectations run with result format SUMMARY (counts plus up to `SAMPLE_SIZE` offending values);
the SQL rules (`UnexpectedRowsExpectation`) run as a second GE validation with COMPLETE, for which GE
fetches at most 200 offending rows (streamed, not the whole result), so their rows appear as the sample.

Data Docs: an ephemeral GE context whose validation-results store is a folder next to the docs site, so the
site index lists every run's results, not only the last suite's.
"""

from __future__ import annotations

import json
import logging
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.checkpoint import UpdateDataDocsAction
from great_expectations.data_context.types.base import DataContextConfig, ProgressBarsConfig

from expectations.duckdb_connection import validation_connection_factory
from expectations.suites import Check, Suite

log = logging.getLogger(__name__)

SAMPLE_SIZE = 10
RESULTS_TABLE = "quality.validation_results"
DOCS_SITE = "servicescore"

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
    validated_at timestamptz not null
);
"""


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
                "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                                  "base_directory": str(data_docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
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
            expectation_type=check.expectation_type, column=check.column, severity=check.severity,
            description=check.description, success=bool(ge_result.success),
            unexpected_count=int(count) if count is not None else None,
            partial_unexpected_list=list(rows[:SAMPLE_SIZE]), observed_value=count, exception=exception,
        )
    count = result.get("unexpected_count")
    percent = result.get("unexpected_percent")
    return ExpectationDetail(
        expectation_type=check.expectation_type, column=check.column, severity=check.severity,
        description=check.description, success=bool(ge_result.success),
        unexpected_count=int(count) if count is not None else None,
        unexpected_percent=float(percent) if percent is not None else None,
        partial_unexpected_list=list(result.get("partial_unexpected_list") or [])[:SAMPLE_SIZE],
        observed_value=result.get("observed_value"), exception=exception,
    )


def _summarise(suite: Suite, run_id: str, validated_at: datetime, details: list[ExpectationDetail],
               docs_index: Path | None, table_missing: bool = False) -> SuiteResult:
    failed_errors = sum(1 for d in details if not d.success and d.severity == "error")
    failed_warnings = sum(1 for d in details if not d.success and d.severity == "warning")
    return SuiteResult(
        suite=suite.name, table=suite.table, run_id=run_id, validated_at=validated_at,
        success_for_errors=failed_errors == 0, expectations_run=len(details),
        failed_errors=failed_errors, failed_warnings=failed_warnings, details=tuple(details),
        data_docs_index=docs_index, table_missing=table_missing,
    )


def _json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def store_results(warehouse: Path, result: SuiteResult) -> None:
    """Append one row per expectation to quality.validation_results (a short read-write connection)."""
    rows = [
        (
            result.run_id, result.suite, result.table, d.expectation_type, d.column, d.description, d.severity,
            d.success, d.unexpected_count, d.unexpected_percent, _json(d.partial_unexpected_list),
            _json(d.observed_value), d.exception, result.validated_at,
        )
        for d in result.details
    ]
    with duckdb.connect(str(warehouse)) as con:
        con.execute(RESULTS_DDL)
        if rows:
            con.executemany(
                f"insert into {RESULTS_TABLE} values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )


# ---------------------------------------------------------------------------------------------- run


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
    """Validate `suite` against `warehouse`; store the results; build Data Docs under `data_docs_dir`."""
    warehouse = Path(warehouse)
    validated_at = datetime.now(UTC)
    details: list[ExpectationDetail | None] = [None] * len(suite.checks)
    docs_index: Path | None = None
    table_missing = False

    context = _context(data_docs_dir)
    datasource = context.data_sources.add_sql(
        name="warehouse",
        connection_string=f"duckdb:///{warehouse}",
        kwargs={"creator": validation_connection_factory(warehouse, suite.schema_name, memory_limit, threads)},
    )
    try:
        try:
            with warnings.catch_warnings():
                # GE wants the schema in the connection string; DuckDB URLs have no place for one
                warnings.filterwarnings("ignore", message="`schema_name` is deprecated", category=DeprecationWarning)
                asset = datasource.add_table_asset(
                    name=suite.table, table_name=suite.table_name, schema_name=suite.schema_name
                )
        except Exception as exc:  # GE raises TestConnectionError when the table does not exist
            log.warning("suite %s: table %s cannot be validated: %s", suite.name, suite.table, exc)
            table_missing = True
            reason = f"table {suite.table} does not exist or cannot be read: {str(exc).splitlines()[0]}"
            details = [
                ExpectationDetail(c.expectation_type, c.column, c.severity, c.description, False, exception=reason)
                for c in suite.checks
            ]
        else:
            batch_definition = asset.add_batch_definition_whole_table("whole table")
            sql_rules = [i for i, c in enumerate(suite.checks)
                         if isinstance(c.expectation, gxe.UnexpectedRowsExpectation)]
            column_rules = [i for i in range(len(suite.checks)) if i not in set(sql_rules)]
            passes = (
                (suite.name, column_rules, {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}),
                (f"{suite.name}.sql_rules", sql_rules, {"result_format": "COMPLETE"}),
            )
            actions = [UpdateDataDocsAction(name="data_docs", site_names=[DOCS_SITE])] if data_docs_dir else []
            for ge_suite_name, indexes, result_format in passes:
                if not indexes:
                    continue
                ge_suite = context.suites.add(gx.ExpectationSuite(
                    name=ge_suite_name,
                    expectations=[_ge_copy(suite.checks[i], i) for i in indexes],
                    meta={"table": suite.table, "run_id": run_id},
                ))
                validation = context.validation_definitions.add(
                    gx.ValidationDefinition(name=ge_suite_name, data=batch_definition, suite=ge_suite)
                )
                checkpoint = context.checkpoints.add(gx.Checkpoint(
                    name=ge_suite_name, validation_definitions=[validation], actions=actions,
                    result_format=result_format,
                ))
                checkpoint_result = checkpoint.run(run_id=gx.RunIdentifier(run_name=run_id, run_time=validated_at))
                for suite_result in checkpoint_result.run_results.values():
                    for ge_result in suite_result.results:
                        index = int(ge_result.expectation_config.meta["check_index"])
                        details[index] = _detail(suite.checks[index], ge_result)
            if data_docs_dir:
                docs_index = data_docs_dir / "index.html"
    finally:
        _dispose(datasource)

    missing = [suite.checks[i].description for i, d in enumerate(details) if d is None]
    if missing:
        raise RuntimeError(f"suite {suite.name}: GE returned no result for {missing}")
    result = _summarise(suite, run_id, validated_at, [d for d in details if d is not None], docs_index,
                        table_missing)
    if store:
        store_results(warehouse, result)
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
