"""Jobs. Both write the warehouse, so they run in process (DuckDB has one writer) and carry the run tag
that the instance's run coordinator limits to one run at a time."""

from dagster import AssetSelection, define_asset_job, in_process_executor

from orchestration.freshness import FRESHNESS_CHECK_KEYS
from orchestration.ingestion_assets import INGESTION_GROUP

WRITES_WAREHOUSE_TAG = {"servicescore/writes-warehouse": "true"}
INGEST_JOB = "ingest_feeds"
BUILD_JOB = "build_and_publish"

ingest_feeds = define_asset_job(
    INGEST_JOB,
    # freshness is judged by its own hourly job (check_feed_freshness), not by every load
    selection=AssetSelection.groups(INGESTION_GROUP) - AssetSelection.checks(*FRESHNESS_CHECK_KEYS),
    executor_def=in_process_executor,
    tags=WRITES_WAREHOUSE_TAG,
    description="Load the landing files of a day (or a range of days) into raw.<feed>, then run the feed checks.",
)

build_and_publish = define_asset_job(
    BUILD_JOB,
    selection=AssetSelection.all() - AssetSelection.groups(INGESTION_GROUP),
    executor_def=in_process_executor,
    tags=WRITES_WAREHOUSE_TAG,
    description="dbt build of a month (or a range of months), the blocking quality gate, then publication.",
)

jobs = [ingest_feeds, build_and_publish]
