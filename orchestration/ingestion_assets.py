"""Ingestion domain: one asset per feed, loading landing/<feed>/ into raw.<feed>; plus the working calendar."""

import datetime as dt

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Backoff,
    Failure,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
)

from ingestion.acceptance import FeedStanding, feed_standings
from ingestion.contracts import FEEDS, Feed
from ingestion.load_results import FeedLoadError, FeedLoadResult, WarehouseLockedError
from ingestion.loader import load_feed
from ingestion.warehouse import connect
from orchestration.partitions import PARTITIONS_START
from orchestration.resources import WarehouseResource
from orchestration.settings.operations import load_settings

INGESTION_GROUP = "ingestion"
# a locked warehouse or a file still being written are worth another try; a contract breach is not
INGESTION_RETRY = RetryPolicy(max_retries=2, delay=2, backoff=Backoff.EXPONENTIAL)


def raw_asset_key(feed: str) -> AssetKey:
    return AssetKey(["raw", feed])


def load_metadata(result: FeedLoadResult, standing: FeedStanding | None) -> dict[str, object]:
    files_table = "| file | read | loaded | rejected | note |\n|---|---:|---:|---:|---|\n" + "".join(
        f"| {f.source_file} | {f.rows_read} | {f.rows_loaded} | {f.rows_rejected} | "
        f"{'already loaded' if f.skipped else f.encoding} |\n"
        for f in result.files
    )
    return {
        "rows_loaded": result.rows_loaded,
        "rows_rejected": result.rows_rejected,
        "rows_read": result.rows_read,
        "rows_recovered": result.rows_recovered,
        # the whole feed, not this load: rejected rows stay until fixed or recovered
        "feed_rows_rejected": standing.rows_rejected if standing else 0,
        "feed_rejected_share": round(standing.rejected_share, 6) if standing else 0.0,
        "files_read": result.files_read,
        "files_already_loaded": result.files_skipped,
        "files": MetadataValue.md(files_table),
        "ignored_files": MetadataValue.json(result.ignored),
        "months_touched": MetadataValue.json(result.months_touched),
    }


def build_feed_asset(feed: Feed) -> AssetsDefinition:
    @asset(
        key=raw_asset_key(feed.name),
        group_name=INGESTION_GROUP,
        deps=[raw_asset_key(d) for d in feed.depends_on],
        description=f"raw.{feed.name}: {feed.description} Rows breaking the contract go to raw.rejected_rows.",
        kinds={"duckdb", "python"},
        retry_policy=INGESTION_RETRY,
        # not partitioned: every run loads the files whose content is not loaded yet, whatever their date
        # (orchestration.partitions says why)
        metadata={"table": f"raw.{feed.name}", "key": ", ".join(feed.key)},
    )
    def _feed_asset(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
        paths = warehouse.paths()
        try:
            result = load_feed(
                paths.warehouse,
                paths.landing,
                feed.name,
                context.run.run_id,
                paths.work,
                timezone=warehouse.timezone,
                memory_limit=warehouse.memory_limit,
                threads=warehouse.threads,
            )
        except WarehouseLockedError:
            raise  # retried with back-off by INGESTION_RETRY
        except FeedLoadError as exc:
            raise Failure(description=str(exc), allow_retries=False) from exc
        context.log.info(
            f"{feed.name}: "
            f"{result.rows_loaded} rows loaded, "
            f"{result.rows_rejected} rejected, "
            f"{result.files_read} file(s) read, {result.files_skipped} already loaded, "
            f"{result.rows_recovered} recovered (a reference now known)"
        )
        with connect(paths.warehouse, warehouse.timezone, warehouse.memory_limit, warehouse.threads) as con:
            standing = next(iter(feed_standings(con, [feed.name])), None)
        problem = standing.problem(load_settings(paths).max_rejected_share) if standing else None
        if problem:
            # the loaded and rejected rows stay (committed, counted): the run stops before anything is built
            raise Failure(description=problem, metadata=load_metadata(result, standing), allow_retries=False)
        return MaterializeResult(metadata=load_metadata(result, standing))

    return _feed_asset


@asset(
    key=AssetKey(["raw", "work_calendar"]),
    group_name=INGESTION_GROUP,
    description="raw.work_calendar: Chinese public holidays and make-up working days (调休) from the "
    "chinese_calendar library, for business-hour durations.",
    kinds={"duckdb", "python"},
)
def work_calendar(warehouse: WarehouseResource) -> MaterializeResult:
    from ingestion.warehouse import connect
    from ingestion.work_calendar import write_work_calendar

    today = dt.date.today()
    with connect(warehouse.paths().warehouse, warehouse.timezone, warehouse.memory_limit, warehouse.threads) as con:
        con.execute("create schema if not exists raw")
        # from the first day a feed partition can have, so that an old export (2016) gets business hours
        first_day = dt.date.fromisoformat(PARTITIONS_START)
        days = write_work_calendar(con, first_day, dt.date(today.year + 1, 12, 31))
    return MaterializeResult(metadata={"days": days})


@asset(
    key=AssetKey(["raw", "customer_pseudonyms"]),
    group_name=INGESTION_GROUP,
    deps=[raw_asset_key("customers")],
    description="raw.customer_pseudonyms: the keyed pseudonym (HMAC-SHA-256) of every phone of the customer "
    "archive, rebuilt from raw.customers under the pseudonym key (docs/privacy.md). The key stays in this step: "
    "dbt reads the pseudonyms, never the key.",
    kinds={"duckdb", "python"},
)
def customer_pseudonyms(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    from ingestion.privacy import PseudonymKeyError, generated_key_path, pseudonym_key, write_pseudonyms

    paths = warehouse.paths()
    try:
        key = pseudonym_key(paths, production=load_settings(paths).production)
    except PseudonymKeyError as exc:
        raise Failure(description=str(exc), allow_retries=False) from exc
    if key.generated:
        context.log.warning(
            f"no pseudonym key configured: generated a random key for this data folder in {generated_key_path(paths)} "
            f"(keep it: a new key changes every pseudonym; production deployments must configure one, "
            f"docs/privacy.md)"
        )
    with connect(paths.warehouse, warehouse.timezone, warehouse.memory_limit, warehouse.threads) as con:
        rows = write_pseudonyms(con, key)
    return MaterializeResult(
        metadata={"phones": rows, "key_id": key.key_id, "key_source": key.source, "key_generated": key.generated}
    )


feed_assets = [build_feed_asset(f) for f in FEEDS.values()]
ingestion_assets = [*feed_assets, work_calendar, customer_pseudonyms]
