"""Transform domain: the dbt project (staging → intermediate → marts) as Dagster assets via dagster-dbt."""

import datetime as dt
import hashlib
import os
import shutil
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, Config, Failure
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from ingestion.change_window import changes_since, record_window, window_since
from ingestion.paths import DBT_PROJECT_DIR
from ingestion.warehouse import connect
from orchestration.partitions import dbt_vars_for_months
from orchestration.publication.audit import WATERMARK_KEY, current_publication_audit
from orchestration.resources import WarehouseResource


class DbtBuildConfig(Config):
    """Run config of the dbt step: `full_refresh` rebuilds every incremental model from raw."""

    full_refresh: bool = False


@cache
def dbt_project() -> DbtProject:
    """Built once, lazily. The manifest is prepared by `make setup` (dbt parse), not at import."""
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    project.prepare_if_dev()
    return project


def layer_of(props: Mapping[str, Any]) -> str:
    """Group = the model's top folder under models/ (staging, intermediate, marts); seeds are reference data."""
    if props.get("resource_type") == "seed":
        return "reference"
    fqn = props.get("fqn") or []
    return str(fqn[1]) if len(fqn) > 2 else "marts"


class ServiceScoreTranslator(DagsterDbtTranslator):
    """Keys and groups from the dbt folder structure: sources are raw.<feed>, models keep their name."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props.get("resource_type") == "source":
            return AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return AssetKey([dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return layer_of(dbt_resource_props)


TRANSLATOR = ServiceScoreTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


def dbt_build_args(full_refresh: bool = False) -> list[str]:
    """The dbt command of a run; a pure function so tests can check it without running dbt.

    Unit tests check the models' logic on fixed inputs, not the data: they run in the test suite
    (tests/test_dbt_core.py, tests/test_appraisal.py build with them), not in every nightly build, where they
    cost ~10 s of a run at any tier. Data tests do run here: they are part of the gate.
    No --vars: the change window's instant and the month window go by environment (change_window_env), because any
    change of --vars makes dbt throw its partial parse away and parse every node again (docs/incremental.md)."""
    args = ["build", "--exclude-resource-type", "unit_test"]
    if full_refresh:
        args.append("--full-refresh")
    return args


PERIOD_ENV = ("SERVICESCORE_DBT_PERIOD_FROM", "SERVICESCORE_DBT_PERIOD_TO")
CHANGE_SINCE_ENV = "SERVICESCORE_DBT_CHANGE_SINCE"
VERIFIED_BUILD_ENV = "SERVICESCORE_DBT_UNVERIFIED_FROM"
# a dbt asset whose presence in a run's selection means the run's dbt step built and tested the project
DBT_TESTED_ASSET = AssetKey(["int_indicator_values"])
# what the dbt build computes and tests with: a change anywhere here may change any month
DBT_PROJECT_SOURCES = ("dbt_project.yml", "models", "macros", "tests", "seeds", "snapshots", "analyses")


def dbt_project_digest(project_dir: Path = DBT_PROJECT_DIR) -> str:
    """SHA-256 over the dbt project's sources (paths and bytes, in path order)."""
    h = hashlib.sha256()
    for name in DBT_PROJECT_SOURCES:
        root = project_dir / name
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
        for path in files:
            h.update(path.relative_to(project_dir).as_posix().encode() + b"\0")
            h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def verified_build_env(audit: Mapping[str, Any], con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The first month whole-history tests must check (unverified_from_month in macros/verified_scope.sql):
    '<first month or none>:<epoch µs>' of the change windows recorded after the current publication's mark, when
    that publication was made by a run that built with dbt first (so its tests passed) from this very dbt project
    and no full window was recorded since; '' (test everything) otherwise."""
    mark = audit.get(WATERMARK_KEY)
    trusted = (
        audit.get("dbt_build_in_run") is True
        and audit.get("dbt_project_sha256") == dbt_project_digest()
        and isinstance(mark, Mapping)
        and isinstance(mark.get("built_at_us"), int)
        and isinstance(mark.get("rows"), int)
    )
    if not trusted:
        return {VERIFIED_BUILD_ENV: ""}
    changes = changes_since(con, mark["built_at_us"], mark["rows"])
    if changes.full:
        return {VERIFIED_BUILD_ENV: ""}
    first = min(changes.months).isoformat() if changes.months else "none"
    return {VERIFIED_BUILD_ENV: f"{first}:{mark['built_at_us']}"}


def change_window_env(con: duckdb.DuckDBPyConnection, dbt_vars: Mapping[str, str]) -> dict[str, str]:
    """The run's change window for dbt: the instant of the last complete run (window_since; empty: every period)
    and the month window (touched through change_window_months in macros/incremental.sql, read only while
    executing, so neither invalidates the partial parse)."""
    return {
        CHANGE_SINCE_ENV: window_since(con) or "",
        PERIOD_ENV[0]: dbt_vars.get("period_from", ""),
        PERIOD_ENV[1]: dbt_vars.get("period_to", ""),
    }


DBT_FILE_LOG_LEVEL_ENV = "DBT_LOG_LEVEL_FILE"


def dbt_log_env() -> dict[str, str]:
    """dbt's log file (dbt.log in the invocation's target folder) at level info unless the environment asks for
    another: node starts and results, warnings and errors with their messages, as on the console. dbt's default for
    the file is debug, every SQL statement and connection event: at tier L that is ~5 s of a ~45 s nightly dbt
    build (measured alone, interleaved: 51.0 / 48.6 s with debug, 43.3 / 45.7 s with info), spent formatting log
    lines nobody reads after a passing run. The SQL of every node stays in target/run; to debug a run, set
    DBT_LOG_LEVEL_FILE=debug for it."""
    return {DBT_FILE_LOG_LEVEL_ENV: os.environ.get(DBT_FILE_LOG_LEVEL_ENV) or "info"}


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block, then put back what was there."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


PARTIAL_PARSE = "partial_parse.msgpack"


def dbt_target_path(op_name: str, run_id: str) -> Path:
    """A fresh target folder per invocation (artifacts of one run stay together, as dagster-dbt names them)."""
    return Path("target") / f"{op_name}-{run_id[:7]}-{uuid.uuid4().hex[:7]}"


def reuse_partial_parse(saved: Path, target: Path) -> None:
    """Seed the invocation's target folder with the partial parse this data folder's last build left.
    dagster-dbt would copy the project's (from `make setup`), but that one was parsed with another profile
    (the warehouse path is part of it), so dbt would parse everything again."""
    if saved.is_file():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(saved, target / PARTIAL_PARSE)


def keep_partial_parse(target: Path, saved: Path) -> None:
    """After a build: keep its partial parse for the next build of this data folder (atomic replace)."""
    produced = target / PARTIAL_PARSE
    if produced.is_file():
        saved.parent.mkdir(parents=True, exist_ok=True)
        tmp = saved.with_suffix(".tmp")
        shutil.copyfile(produced, tmp)
        os.replace(tmp, saved)


def dbt_vars_for_run_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The month window of a build run, from the publication partition range the run was launched for.
    A run without a range (e.g. launched from the UI for the dbt assets alone) rebuilds what the new data
    touched and nothing else is forced."""
    start = tags.get("dagster/asset_partition_range_start") or tags.get("dagster/partition")
    end = tags.get("dagster/asset_partition_range_end") or tags.get("dagster/partition")
    if not start or not end:
        return {}
    return dbt_vars_for_months(dt.date.fromisoformat(start), dt.date.fromisoformat(end))


def validate_settings_or_fail() -> None:
    from orchestration.settings.indicators import IndicatorSettingsError, validate_settings

    try:
        validate_settings(DBT_PROJECT_DIR / "seeds")
    except IndicatorSettingsError as exc:
        raise Failure(description=f"indicator settings are invalid, nothing was scored: {exc}") from exc


@cache
def build_dbt_assets() -> AssetsDefinition:
    project = dbt_project()

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=TRANSLATOR,
        name="servicescore_dbt",
    )
    def servicescore_dbt(
        context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource, config: DbtBuildConfig
    ):
        validate_settings_or_fail()
        dbt_vars = dbt_vars_for_run_tags(context.run.tags)
        context.log.info(
            f"dbt build, month window {dbt_vars or 'none: what the new data touched'}"
            + (" with --full-refresh" if config.full_refresh else "")
        )
        target = DBT_PROJECT_DIR / dbt_target_path(context.op_execution_context.op.name, context.run.run_id)
        saved = warehouse.paths().root / "dbt" / PARTIAL_PARSE
        reuse_partial_parse(saved, target)
        # dbt runs as a subprocess and reads the warehouse location, limits and month window from its environment:
        # set for this build only, so nothing of this run reaches the next dbt the process starts
        serving_audit = {} if config.full_refresh else current_publication_audit(warehouse.paths().serving)
        with connect(warehouse.paths().warehouse, timezone=warehouse.zone()) as con:
            window = change_window_env(con, dbt_vars)
            verified = verified_build_env(serving_audit, con)
        context.log.info(
            "change window: "
            + (f"what changed since {window[CHANGE_SINCE_ENV]}" if window[CHANGE_SINCE_ENV] else "every period")
        )
        if verified.get(VERIFIED_BUILD_ENV):
            context.log.info(
                f"whole-history tests check what changed since the current publication ({verified[VERIFIED_BUILD_ENV]})"
            )
        started_at = dt.datetime.now(dt.UTC)
        with environment({**warehouse.dbt_env(), **window, **verified, **dbt_log_env()}):
            yield from dbt.cli(dbt_build_args(config.full_refresh), context=context, target_path=target).stream()
        # after a successful build only: a failed build leaves the last complete window as the next one's start
        with connect(warehouse.paths().warehouse, timezone=warehouse.zone()) as con:
            recorded = record_window(con, context.run.run_id, started_at, complete=not context.is_subset)
        context.log.info(f"change window recorded in audit.change_windows: {recorded}")
        keep_partial_parse(target, saved)

    return servicescore_dbt


def dbt_resource() -> DbtCliResource:
    """dagster-dbt's resource as it comes. Per dbt step it asks the executable for its version (`dbt --version`,
    a subprocess) and builds an in-process dbt adapter, used only by `fetch_row_counts` / `fetch_column_metadata`
    (not used here); dagster-dbt 0.29 offers no public setting to skip either (docs/benchmarks.md has the cost)."""
    # the dbt of this virtualenv, whether or not the venv is activated
    return DbtCliResource(project_dir=dbt_project(), dbt_executable=str(Path(sys.executable).parent / "dbt"))
