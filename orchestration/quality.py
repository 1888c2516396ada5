"""Quality domain: one Dagster asset check per Great Expectations suite (expectations.suites), named
`gx_<suite>`, on the asset that builds the suite's table. The checks of a layer run as one step (one
`multi_asset_check` for the raw-feed suites, one for the mart suites): expectations.runner validates the
selected suites with one GE context, stores the results in quality.validation_results and builds Data Docs
under <data dir>/reports/data_docs/ once per step. A step costs Dagster bookkeeping and a GE session costs a
context, data sources and a Data Docs index: per suite that was most of the quality checks' time.

Subsetting: the checks are `can_subset`; a run evaluates only the checks it selects
(`context.selected_asset_check_keys`: a job selecting some assets selects their checks only).

Severity: an error-level expectation that fails gives AssetCheckResult(passed=False, severity=ERROR) - on a
blocking check Dagster fails the step after it has reported every result, which stops everything downstream
(publish); warnings only give passed=False, severity=WARN, which Dagster reports and does not block on. Mart
suites are blocking; raw-feed suites are not (yet). A suite whose validation raises does not stop the other
suites of the step: their results are reported, then the step fails naming it (as its own step failed before).

Scope (expectations.runner): the raw suites are incremental: their row rules validate the rows loaded since
the last validation of them that passed, their table rules the whole table. So are the KPI and appraisal
mart suites: their row and per-period rules validate the periods rebuilt (the change-window audit) since the last
validation of them that passed, their table rules the whole table; the training marts (full tables rebuilt
every run) are validated whole. The check metadata says which (`scope`, `rows_validated`, `table_rows`,
`loaded_after` / `loaded_through`, `scope_condition`), as do the stored result rows.
"""

# no `from __future__ import annotations` here: Dagster checks the `context` annotation at definition
# time and does not resolve string annotations.
import json
from collections.abc import Iterable, Iterator
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    Failure,
    MetadataValue,
    multi_asset_check,
)

from expectations.checks import Suite
from expectations.results import SuiteResult
from expectations.runner import run_suites
from expectations.suites import MART_SUITES, RAW_SUITES
from orchestration.resources import WarehouseResource

MAX_MD_ROWS = 30
SAMPLE_CHARS = 200
# step (op) names: "_gx_" marks them as quality checks in benchmarks/run.py
RAW_CHECKS_STEP = "raw_feeds_gx_suites"
MART_CHECKS_STEP = "marts_gx_suites"


def suite_asset_key(suite: Suite) -> AssetKey:
    """raw.<feed> is the ingestion asset ["raw", feed]; any dbt model is [model_name]."""
    if suite.schema_name == "raw":
        return AssetKey(["raw", suite.table_name])
    return AssetKey([suite.table_name])


def check_name(suite: Suite) -> str:
    return f"gx_{suite.name}"


def suite_check_key(suite: Suite) -> AssetCheckKey:
    return AssetCheckKey(suite_asset_key(suite), check_name(suite))


def _cell(value: Any, limit: int = SAMPLE_CHARS) -> str:
    text = "" if value is None else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failures_markdown(result: SuiteResult) -> str:
    failed = sorted(result.failed, key=lambda d: (d.severity != "error", d.description))
    if not failed:
        return f"All {result.expectations_run} expectations passed on `{result.table}`."
    lines = [
        "| severity | rule | column | unexpected | sample / error |",
        "|---|---|---|---|---|",
    ]
    for d in failed[:MAX_MD_ROWS]:
        sample = d.exception or d.partial_unexpected_list
        lines.append(
            f"| {d.severity} | {_cell(d.description)} | {_cell(d.column)} | {_cell(d.unexpected_count)} "
            f"| {_cell(sample)} |"
        )
    if len(failed) > MAX_MD_ROWS:
        lines.append(f"| … | {len(failed) - MAX_MD_ROWS} more failures in quality.validation_results | | | |")
    return "\n".join(lines)


def check_result(result: SuiteResult, key: AssetCheckKey | None = None) -> AssetCheckResult:
    """Dagster's view of a suite result: pass/fail, severity and the numbers behind it."""
    if result.failed_errors:
        passed, severity = False, AssetCheckSeverity.ERROR
    elif result.failed_warnings:
        passed, severity = False, AssetCheckSeverity.WARN
    else:
        passed, severity = True, AssetCheckSeverity.ERROR
    failed = result.failed
    metadata: dict[str, Any] = {
        "table": MetadataValue.text(result.table),
        "suite": MetadataValue.text(result.suite),
        "expectations_run": MetadataValue.int(result.expectations_run),
        "failed_errors": MetadataValue.int(result.failed_errors),
        "failed_warnings": MetadataValue.int(result.failed_warnings),
        "unexpected_counts": MetadataValue.json({d.description: d.unexpected_count for d in failed}),
        # sample values may be timestamps or decimals: keep them readable as text
        "samples": MetadataValue.json(
            json.loads(
                json.dumps({d.description: (d.exception or d.partial_unexpected_list) for d in failed}, default=str)
            )
        ),
        "failures": MetadataValue.md(failures_markdown(result)),
        "validation_run_id": MetadataValue.text(result.run_id),
    }
    if result.table_missing:
        metadata["table_missing"] = MetadataValue.bool(True)
    scope = result.scope
    if scope is not None:
        metadata["scope"] = MetadataValue.text(scope.describe())
        metadata["rows_validated"] = MetadataValue.int(scope.rows)
        metadata["table_rows"] = MetadataValue.int(scope.table_rows)
        metadata["loaded_after"] = MetadataValue.text(scope.loaded_after.isoformat() if scope.loaded_after else "")
        metadata["loaded_through"] = MetadataValue.text(
            scope.loaded_through.isoformat() if scope.loaded_through else ""
        )
        metadata["scope_condition"] = MetadataValue.text(scope.where() if scope.incremental else "")
    if result.data_docs_index is not None:
        metadata["data_docs"] = MetadataValue.path(str(result.data_docs_index))
        metadata["data_docs_url"] = MetadataValue.url(result.data_docs_index.resolve().as_uri())
    description = (
        f"{result.failed_errors} error and {result.failed_warnings} warning expectations failed "
        f"of {result.expectations_run} on {result.table}"
    )
    return AssetCheckResult(
        passed=passed,
        severity=severity,
        metadata=metadata,
        description=description,
        asset_key=key.asset_key if key else None,
        check_name=key.name if key else None,
    )


def suite_check_spec(suite: Suite, blocking: bool) -> AssetCheckSpec:
    return AssetCheckSpec(
        name=check_name(suite),
        asset=suite_asset_key(suite),
        blocking=blocking,
        description=f"Great Expectations suite {suite.name} on {suite.table} "
        f"({len(suite.checks)} expectations; {'blocking' if blocking else 'non-blocking'})",
    )


def build_suites_check(suites: Iterable[Suite], blocking: bool, name: str) -> AssetChecksDefinition:
    """One step (op `name`) holding one asset check per suite, each on the asset that builds its table."""
    suites = tuple(suites)
    by_key = {suite_check_key(s): s for s in suites}
    if len(by_key) != len(suites):
        raise ValueError(f"{name}: two suites give the same check key")

    @multi_asset_check(
        name=name,
        specs=[suite_check_spec(s, blocking) for s in suites],
        can_subset=True,
        description=f"Great Expectations suites ({len(suites)}; {'blocking' if blocking else 'non-blocking'}), "
        "validated in one GE session",
    )
    def _suite_checks(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> Iterator[AssetCheckResult]:
        selected = context.selected_asset_check_keys
        todo = [(key, suite) for key, suite in by_key.items() if key in selected]
        paths = warehouse.paths()
        results, errors = run_suites(
            paths.warehouse,
            [suite for _, suite in todo],
            run_id=context.run.run_id,
            data_docs_dir=paths.reports / "data_docs",
            memory_limit=warehouse.memory_limit,
            threads=warehouse.threads,
        )
        by_suite = {r.suite: r for r in results}
        for key, suite in todo:
            result = by_suite.get(suite.name)
            if result is None:
                continue
            context.log.info(
                "suite %s on %s: %d run, %d error and %d warning failures",
                suite.name,
                suite.table,
                result.expectations_run,
                result.failed_errors,
                result.failed_warnings,
            )
            yield check_result(result, key)
        if errors:
            raise Failure(
                description="Great Expectations could not validate "
                + "; ".join(f"{name}: {type(exc).__name__}: {exc}" for name, exc in errors.items()),
                allow_retries=False,
            )

    return _suite_checks


def build_suite_check(suite: Suite, blocking: bool) -> AssetChecksDefinition:
    """A step with the asset check of one suite (the op named after asset and check, as a lone check is)."""
    key = suite_check_key(suite)
    return build_suites_check([suite], blocking, name=f"{'__'.join(key.asset_key.path)}_{key.name}")


raw_quality_checks = build_suites_check(RAW_SUITES, blocking=False, name=RAW_CHECKS_STEP)
mart_quality_checks = build_suites_check(MART_SUITES, blocking=True, name=MART_CHECKS_STEP)
quality_checks: list[AssetChecksDefinition] = [raw_quality_checks, mart_quality_checks]
