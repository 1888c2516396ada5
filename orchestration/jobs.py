"""Jobs: the whole graph, run in process (DuckDB has one writer)."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job, in_process_executor

MAIN_JOB = "servicescore_all"

servicescore_all = define_asset_job(
    MAIN_JOB,
    selection=AssetSelection.all(include_sources=False),
    executor_def=in_process_executor,
    description="Ingest every feed, build the dbt models, run the quality gate, publish the serving file.",
)

jobs = [servicescore_all]
