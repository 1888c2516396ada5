"""Publish domain: copy the checked marts into the serving file BI tools read, as a new version."""

import hashlib
import json
import subprocess
from collections.abc import Sequence
from functools import cache

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from ingestion.change_window import WINDOW_MODEL
from ingestion.paths import REPO_ROOT
from orchestration.gate import latest_blocking_failures
from orchestration.jobs import BUILD_JOB
from orchestration.partitions import appraisal_months
from orchestration.publication.engine import publish
from orchestration.publication.relations import MartSpec
from orchestration.resources import WarehouseResource
from orchestration.transform import DBT_TESTED_ASSET, dbt_project, dbt_project_digest

PUBLISH_GROUP = "publish"
PUBLICATION_KEY = AssetKey(["serving", "publication"])


def serving_specs(manifest: dict) -> list[MartSpec]:
    """Which marts are published, and how, from each model's `meta.serving` (versioned | snapshot | none), with
    the model's `unique_key` (a snapshot fact with one is applied row by row: only what was rebuilt) and whether
    it recomputes by the change window (then only the periods of the windows since the last publication can
    differ)."""
    specs = []
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "model":
            continue
        config = node.get("config", {})
        mode = (config.get("meta") or {}).get("serving") or node.get("meta", {}).get("serving")
        if mode in ("versioned", "snapshot"):
            key = config.get("unique_key") if config.get("materialized") == "incremental" else None
            keys = (key,) if isinstance(key, str) else tuple(key or ())
            windowed = f"model.{node.get('package_name')}.{WINDOW_MODEL}" in node.get("depends_on", {}).get("nodes", [])
            specs.append(MartSpec(node["name"], mode, node.get("schema") or "marts", keys, windowed))
    return sorted(specs, key=lambda s: s.name)


@cache
def published_marts() -> tuple[MartSpec, ...]:
    manifest = json.loads(dbt_project().manifest_path.read_text())
    return tuple(serving_specs(manifest))


def file_digest(paths: list) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def code_version() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def dbt_build_in_run(context: AssetExecutionContext) -> bool:
    """Whether this run also built the dbt assets: then the publication only runs after the dbt step (and its
    tests) succeeded. A publication materialized alone does not vouch for the dbt tests."""
    selection = context.run.asset_selection
    if not selection:  # a run of a whole job (None or empty): the build job has the dbt step
        return context.run.job_name == BUILD_JOB
    return DBT_TESTED_ASSET in selection


def build_publish_asset(gated_by: Sequence[AssetsDefinition]) -> AssetsDefinition:
    """The publication asset; `gated_by` are the definitions whose blocking checks on the published marts must
    not have failed at their latest evaluation (orchestration.gate), whichever run evaluated them."""
    specs = published_marts()
    mart_keys = [AssetKey([s.name]) for s in specs]
    gated_by = tuple(gated_by)

    @asset(
        key=PUBLICATION_KEY,
        group_name=PUBLISH_GROUP,
        deps=mart_keys,
        description="serving.duckdb: the checked marts as immutable numbered versions per period, swapped in "
        "atomically for BI tools; runs only when the blocking quality checks passed.",
        kinds={"duckdb"},
        partitions_def=appraisal_months,
        backfill_policy=BackfillPolicy.single_run(),
    )
    def publication(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
        from ingestion.privacy import PersonalDataLeakError

        # blocking checks also hold across runs: a check that failed in an earlier run still blocks
        failures = latest_blocking_failures(context.instance, mart_keys, gated_by)
        if failures:
            raise Failure(
                description="not published: the latest evaluation of blocking checks failed:\n  "
                + "\n  ".join(failures[:50]),
                allow_retries=False,
            )
        paths = warehouse.paths()
        project = dbt_project()
        audit = {
            "run_id": context.run.run_id,
            "code_version": code_version(),
            "dbt_manifest_sha256": file_digest([project.manifest_path]),
            # the dbt build (and its tests) ran in this run, from this project: later builds may narrow their
            # whole-history tests to what changed since (transform.verified_build_env)
            "dbt_project_sha256": dbt_project_digest(),
            "dbt_build_in_run": dbt_build_in_run(context),
            "indicator_settings_sha256": file_digest(list((project.project_dir / "seeds").glob("*.csv"))),
            "month_partitions": [context.partition_key_range.start, context.partition_key_range.end],
        }
        try:
            result = publish(
                paths.warehouse,
                paths.serving,
                list(specs),
                context.run.run_id,
                audit=audit,
                closing_day=warehouse.closing_day,
                memory_limit=warehouse.memory_limit,
                threads=warehouse.threads,
            )
        except PersonalDataLeakError as exc:
            raise Failure(
                description=str(exc),
                allow_retries=False,
                metadata={"leaks": MetadataValue.json([vars(leak) for leak in exc.leaks])},
            ) from exc
        context.log.info(
            f"publication {result.publication_id}: {len(result.new_versions)} period version(s), "
            f"restatements {result.restatements or 'none'} → {paths.serving}"
            if result.changed
            else "nothing changed since the current publication: no new version"
        )
        return MaterializeResult(
            metadata={
                "serving_file": MetadataValue.path(str(paths.serving)),
                "publication_id": result.publication_id if result.publication_id is not None else 0,
                "changed": result.changed,
                "new_versions": MetadataValue.json([f"{p} v{v}" for p, v in result.new_versions]),
                "restated_periods": MetadataValue.json(result.restatements),
                "snapshots_replaced": MetadataValue.json(result.snapshots_replaced),
                "snapshot_modes": MetadataValue.json(result.snapshot_modes),
                "compared_periods": MetadataValue.text("all")
                if result.candidate_periods is None
                else MetadataValue.json(result.candidate_periods),
                "row_counts": MetadataValue.json(result.row_counts),
                # where the step's time went (copy of the serving file, period comparison, snapshots, ...)
                "timings_s": MetadataValue.json(result.timings),
            }
        )

    return publication
