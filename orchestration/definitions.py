"""The one code location: gathers what each domain module defines. No work happens at import beyond
reading the prepared dbt manifest."""

from dagster import Definitions, in_process_executor

from orchestration.freshness import check_feed_freshness, freshness_checks, freshness_hourly
from orchestration.ingestion_assets import ingestion_assets
from orchestration.jobs import jobs
from orchestration.publish import build_publish_asset
from orchestration.quality import quality_checks
from orchestration.resources import WarehouseResource
from orchestration.schedules import run_status_sensors, schedules
from orchestration.sensors import sensors
from orchestration.transform import build_dbt_assets, dbt_resource

upstream_assets = [*ingestion_assets, build_dbt_assets()]
asset_checks = [*quality_checks, *freshness_checks]

defs = Definitions(
    # the publication is gated by the blocking checks of every definition upstream of it (orchestration.gate)
    assets=[*upstream_assets, build_publish_asset([*upstream_assets, *asset_checks])],
    asset_checks=asset_checks,
    jobs=[*jobs, check_feed_freshness],
    schedules=[*schedules, freshness_hourly],
    sensors=[*sensors, *run_status_sensors],
    resources={"warehouse": WarehouseResource(), "dbt": dbt_resource()},
    # DuckDB has a single writer: the warehouse-writing job runs in one process, one step at a time
    executor=in_process_executor,
)
