"""Freshness of the event feeds: how old is the newest record in raw.<feed>?

One asset check per event feed, `freshness_<feed>`: passes while the newest record time (tickets and
complaints: updated_at; surveys: responded_at; supervisor reviews: the start of their month) is younger than
the feed's warn lag; a WARN failure after it; an ERROR failure after the longer fail lag. Lags come from
orchestration.settings.operations (operations.yaml / defaults). The checks are not blocking: stale data is
published as it is, and said so.

They run in their own job, `check_feed_freshness`, hourly (not inside ingest_feeds: a demo or a backfill of
old data must not report its age as a failed load; orchestration.jobs leaves FRESHNESS_CHECK_KEYS out).
This module must not import orchestration.jobs (jobs imports FRESHNESS_CHECK_KEYS from here).
"""

import datetime as dt

import duckdb
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetSelection,
    DefaultScheduleStatus,
    MetadataValue,
    ScheduleDefinition,
    asset_check,
    define_asset_job,
    in_process_executor,
)

from ingestion.contracts import FEEDS
from ingestion.warehouse import quote_ident, quote_literal
from orchestration.ingestion_assets import raw_asset_key
from orchestration.resources import WarehouseResource
from orchestration.settings.operations import FreshnessLag, load_settings

# the record time whose newest value tells how fresh a feed is
RECORD_TIME = {
    "tickets": "updated_at",
    "complaints": "updated_at",
    "surveys": "responded_at",
    "supervisor_reviews": "period",
}
FRESHNESS_JOB = "check_feed_freshness"


def newest_record_at(con: duckdb.DuckDBPyConnection, feed: str, timezone: str) -> dt.datetime | None:
    column = RECORD_TIME[feed]
    col = quote_ident(column)
    expr = (
        col
        if FEEDS[feed].column(column).type == "timestamp"
        else f"timezone({quote_literal(timezone)}, cast({col} as timestamp))"
    )  # a local date: its start, as an instant
    exists = con.execute(
        "select count(*) from duckdb_tables() where schema_name = 'raw' and table_name = ?", [feed]
    ).fetchall()[0][0]
    if not exists:
        return None
    return con.execute(f"select max({expr}) from raw.{quote_ident(feed)}").fetchall()[0][0]


def freshness_result(feed: str, newest: dt.datetime | None, now: dt.datetime, lag: FreshnessLag) -> AssetCheckResult:
    """Pure: the check result for a newest record time against the lags."""
    limits = {
        "warn_after_hours": lag.warn_after_hours,
        "fail_after_hours": lag.fail_after_hours,
        "record_time_column": RECORD_TIME[feed],
    }
    if newest is None:
        return AssetCheckResult(
            passed=False, severity=AssetCheckSeverity.ERROR, metadata=limits, description=f"raw.{feed} has no records"
        )
    hours = (now - newest).total_seconds() / 3600
    metadata = {**limits, "newest_record_at": MetadataValue.text(newest.isoformat()), "lag_hours": round(hours, 2)}
    age = f"newest {feed} record is {hours:.1f} h old"
    if hours > lag.fail_after_hours:
        return AssetCheckResult(
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            metadata=metadata,
            description=f"{age} (fail after {lag.fail_after_hours:g} h)",
        )
    if hours > lag.warn_after_hours:
        return AssetCheckResult(
            passed=False,
            severity=AssetCheckSeverity.WARN,
            metadata=metadata,
            description=f"{age} (warn after {lag.warn_after_hours:g} h)",
        )
    return AssetCheckResult(passed=True, metadata=metadata, description=age)


def build_freshness_check(feed: str) -> AssetChecksDefinition:
    @asset_check(
        asset=raw_asset_key(feed),
        name=f"freshness_{feed}",
        blocking=False,
        description=f"Newest raw.{feed}.{RECORD_TIME[feed]} against the feed's warn / fail lag (operations.yaml).",
    )
    def _freshness(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> AssetCheckResult:
        paths = warehouse.paths()
        lag = load_settings(paths).freshness[feed]
        con = duckdb.connect(str(paths.warehouse), read_only=True)
        try:
            zone = warehouse.zone()
            con.execute(f"set TimeZone = {quote_literal(zone)}")
            newest = newest_record_at(con, feed, zone)
        finally:
            con.close()
        return freshness_result(feed, newest, dt.datetime.now(dt.UTC), lag)

    return _freshness


freshness_checks = [build_freshness_check(feed) for feed in RECORD_TIME]
FRESHNESS_CHECK_KEYS = [AssetCheckKey(raw_asset_key(feed), f"freshness_{feed}") for feed in RECORD_TIME]

# the job and its schedule; the job carries the warehouse-writing tag (orchestration.jobs) only so that the
# queued run coordinator never starts it while a run writes the warehouse
check_feed_freshness = define_asset_job(
    FRESHNESS_JOB,
    selection=AssetSelection.checks(*FRESHNESS_CHECK_KEYS),
    executor_def=in_process_executor,
    tags={"servicescore/writes-warehouse": "true"},
    description="How old the newest record of every event feed is (warn / fail lags in operations.yaml).",
)

freshness_hourly = ScheduleDefinition(
    name="freshness_hourly",
    cron_schedule="30 * * * *",
    execution_timezone="UTC",  # any zone: every hour at :30 (zones off by 30 or 45 minutes see another minute)
    job=check_feed_freshness,
    default_status=DefaultScheduleStatus.STOPPED,
    description="Every hour at :30, the freshness checks of the event feeds.",
)
