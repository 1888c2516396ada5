"""Transform domain: the dbt project (staging → intermediate → marts) as Dagster assets via dagster-dbt."""

import datetime as dt
import os
import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, Config, Failure
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from ingestion.paths import DBT_PROJECT_DIR
from orchestration.partitions import dbt_vars_for_months
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


def dbt_build_args(full_refresh: bool = False, dbt_vars: Mapping[str, Any] | None = None) -> list[str]:
    """The dbt command of a run; a pure function so tests can check it without running dbt.

    Unit tests check the models' logic on fixed inputs, not the data: they run in the test suite
    (tests/test_dbt_core.py, tests/test_appraisal.py build with them), not in every nightly build, where they
    cost ~10 s of a run at any tier. Data tests do run here: they are part of the gate."""
    args = ["build", "--exclude-resource-type", "unit_test"]
    if full_refresh:
        args.append("--full-refresh")
    if dbt_vars:
        import json

        args += ["--vars", json.dumps(dict(dbt_vars), sort_keys=True)]
    return args


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
    from orchestration.indicator_settings import IndicatorSettingsError, validate_settings

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
        # dbt runs as a subprocess and reads the warehouse location and limits from its environment
        os.environ.update(warehouse.dbt_env())
        yield from dbt.cli(dbt_build_args(config.full_refresh, dbt_vars), context=context).stream()

    return servicescore_dbt


def dbt_resource() -> DbtCliResource:
    # the dbt of this virtualenv, whether or not the venv is activated
    return DbtCliResource(project_dir=dbt_project(), dbt_executable=str(Path(sys.executable).parent / "dbt"))
