"""Quality domain: one Dagster asset check per Great Expectations suite (expectations.suites), on the asset
that builds the suite's table. The check bodies are thin: expectations.runner does the validation, stores
the results in quality.validation_results and builds Data Docs under <data dir>/reports/data_docs/.

Severity: an error-level expectation that fails gives AssetCheckResult(passed=False, severity=ERROR) - on a
blocking check that stops everything downstream (publish); warnings only give passed=False, severity=WARN,
which Dagster reports and does not block on. Mart suites are blocking; raw-feed suites are not (yet).
"""

# no `from __future__ import annotations` here: Dagster checks the `context` annotation at definition
# time and does not resolve string annotations.
import json
from collections.abc import Iterable
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    MetadataValue,
    asset_check,
)

from expectations.runner import SuiteResult, run_suite
from expectations.suites import MART_SUITES, RAW_SUITES, Suite
from orchestration.resources import WarehouseResource

MAX_MD_ROWS = 30
SAMPLE_CHARS = 200


def suite_asset_key(suite: Suite) -> AssetKey:
    """raw.<feed> is the ingestion asset ["raw", feed]; any dbt model is [model_name]."""
    if suite.schema_name == "raw":
        return AssetKey(["raw", suite.table_name])
    return AssetKey([suite.table_name])


def check_name(suite: Suite) -> str:
    return f"gx_{suite.name}"


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


def check_result(result: SuiteResult) -> AssetCheckResult:
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
        "unexpected_counts": MetadataValue.json(
            {d.description: d.unexpected_count for d in failed}
        ),
        # sample values may be timestamps or decimals: keep them readable as text
        "samples": MetadataValue.json(json.loads(json.dumps(
            {d.description: (d.exception or d.partial_unexpected_list) for d in failed}, default=str
        ))),
        "failures": MetadataValue.md(failures_markdown(result)),
        "validation_run_id": MetadataValue.text(result.run_id),
    }
    if result.table_missing:
        metadata["table_missing"] = MetadataValue.bool(True)
    if result.data_docs_index is not None:
        metadata["data_docs"] = MetadataValue.path(str(result.data_docs_index))
        metadata["data_docs_url"] = MetadataValue.url(result.data_docs_index.resolve().as_uri())
    description = (
        f"{result.failed_errors} error and {result.failed_warnings} warning expectations failed "
        f"of {result.expectations_run} on {result.table}"
    )
    return AssetCheckResult(passed=passed, severity=severity, metadata=metadata, description=description)


def build_suite_check(suite: Suite, blocking: bool) -> AssetChecksDefinition:
    """An asset check that validates `suite` on the asset that builds its table."""

    @asset_check(
        asset=suite_asset_key(suite),
        name=check_name(suite),
        blocking=blocking,
        description=f"Great Expectations suite {suite.name} on {suite.table} "
        f"({len(suite.checks)} expectations; {'blocking' if blocking else 'non-blocking'})",
    )
    def _suite_check(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> AssetCheckResult:
        paths = warehouse.paths()
        result = run_suite(
            paths.warehouse,
            suite,
            run_id=context.run.run_id,
            data_docs_dir=paths.reports / "data_docs",
            memory_limit=warehouse.memory_limit,
            threads=warehouse.threads,
        )
        context.log.info(
            "suite %s on %s: %d run, %d error and %d warning failures",
            suite.name, suite.table, result.expectations_run, result.failed_errors, result.failed_warnings,
        )
        return check_result(result)

    return _suite_check


def build_suite_checks(suites: Iterable[Suite], blocking: bool) -> list[AssetChecksDefinition]:
    return [build_suite_check(s, blocking) for s in suites]


quality_checks: list[AssetChecksDefinition] = [
    *build_suite_checks(RAW_SUITES, blocking=False),
    *build_suite_checks(MART_SUITES, blocking=True),
]
