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

Which rows each suite validates (the watermark of an append-only table, the periods a period mart rebuilt):
expectations/scope.py. The stored results: expectations/results.py.
"""

from __future__ import annotations

import logging
import uuid
import warnings
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.data_context.types.base import DataContextConfig, ProgressBarsConfig

from expectations.checks import Check, Suite
from expectations.duckdb_connection import validation_connection_factory
from expectations.results import (
    SAMPLE_SIZE,
    ExpectationDetail,
    SuiteResult,
    detail,
    store_results,
    summarise,
)
from expectations.scope import ValidationScope, validation_scope
from ingestion.paths import duckdb_settings

log = logging.getLogger(__name__)

DOCS_SITE = "servicescore"
# validation results listed on the Data Docs index (newest first; ~40 per nightly ingest + build, so about
# two weeks of runs). Older results keep their pages and stay in quality.validation_results.
DOCS_INDEX_RESULTS = 600

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
                        details[index] = replace(detail(suite.checks[index], ge_result), scope=kinds[index])

        missing = [suite.checks[i].description for i, d in enumerate(details) if d is None]
        if missing:
            raise RuntimeError(f"suite {suite.name}: GE returned no result for {missing}")
        docs_index = self.data_docs_dir / "index.html" if self.data_docs_dir and not table_missing else None
        result = summarise(
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
