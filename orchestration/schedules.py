"""The nightly schedule and the sensor that publishes after an ingestion.

At 02:00 in the organisation's time zone (ingestion.organisation), `nightly_ingest` requests an `ingest_feeds`
run every night (it loads every landing file not loaded yet; the request lists the new files found by comparing
with raw.load_log by name and modification time). When an ingest run that carries the tag
`servicescore/then-publish=true` (the nightly run, the landing sensor's runs, or one started from the UI with that
tag) succeeds, `publish_after_ingest` requests a `build_and_publish` run over the month range of
`orchestration.partitions.months_to_publish(today, closing_day, touched)`: the current month, the previous month
until the closing day, and back to the oldest month the new rows touched (the ingestion assets report
`months_touched`). A published month that receives late data gets a new version of its publication (a
restatement, orchestration.publication.engine). Both runs carry the warehouse-writing tag, so the instance's queued run
coordinator runs them one after the other, never at once.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    RunStatusSensorContext,
    ScheduleEvaluationContext,
    SkipReason,
    run_status_sensor,
    schedule,
)

from ingestion.organisation import DEFAULT_TIMEZONE, organisation_timezone
from ingestion.paths import DataDir
from orchestration.jobs import BUILD_JOB, INGEST_JOB, build_and_publish, ingest_feeds
from orchestration.partitions import appraisal_months, months_to_publish
from orchestration.sensors import (
    THEN_PUBLISH_TAG,
    TRIGGER_TAG,
    WarehouseBusy,
    range_tags,
    scan_landing,
    unloaded,
    writer_busy,
)
from orchestration.settings.operations import load_settings

NIGHTLY = "nightly_ingest"
PUBLISH_SENSOR = "publish_after_ingest"
NIGHTLY_TICK_MINUTES = 15
NIGHTLY_CRON = f"*/{NIGHTLY_TICK_MINUTES} * * * *"  # in UTC; see nightly_ingest
NIGHTLY_LOCAL_TIME = dt.time(2, 0)
PARENT_RUN_TAG = "servicescore/after-run"
# without the warehouse (a run holds it at 02:00), files changed in this window count as new
RECENT_SECONDS = 48 * 3600


def local_today(timezone: str | None = None) -> dt.date:
    """Today in `timezone`, default the organisation's zone (ingestion.organisation)."""
    return dt.datetime.now(ZoneInfo(timezone or organisation_timezone())).date()


def nightly_files(instance: DagsterInstance, paths: DataDir, now: float | None = None) -> tuple[list[str], str]:
    """The landing files a nightly run will load (<feed>/<name>), and how they were found."""
    now = time.time() if now is None else now
    entries = scan_landing(paths.landing)
    busy = writer_busy(instance, paths)
    how = "compared with raw.load_log"
    new = None
    if not busy:
        try:
            new = unloaded(entries, paths.warehouse)
        except WarehouseBusy as exc:
            busy = str(exc)
    if new is None:
        new = [e for e in entries if now - e.mtime_ns / 1e9 <= RECENT_SECONDS]
        how = f"warehouse busy ({busy}): files changed in the last {RECENT_SECONDS // 3600} h"
    return sorted(e.rel for e in new), how


def nightly_request(instance: DagsterInstance, paths: DataDir, day: dt.date) -> RunRequest:
    """Every night one run: it loads what is new (perhaps nothing) and the publish sensor then rebuilds the open
    months, so a provisional month is refreshed every day."""
    files, how = nightly_files(instance, paths)
    tags = {
        TRIGGER_TAG: NIGHTLY,
        THEN_PUBLISH_TAG: "true",
        "servicescore/nightly-date": day.isoformat(),
        "servicescore/new-files": (",".join(files) or f"none ({how})")[:2000],
    }
    return RunRequest(run_key=f"{NIGHTLY}-{day.isoformat()}", tags=tags)


def nightly_local_day(tick: dt.datetime, timezone: str) -> dt.date | None:
    """The local day whose nightly run the tick starts, or None. A tick starts it when 02:00 local time of that
    day falls in (previous tick, this tick]: once a day, also on the days daylight saving time skips 02:00
    (then at 03:00) or repeats it (the second 02:00 comes after a later previous tick)."""
    zone = ZoneInfo(timezone)
    now = tick.astimezone(zone).replace(tzinfo=None)
    before = (tick - dt.timedelta(minutes=NIGHTLY_TICK_MINUTES)).astimezone(zone).replace(tzinfo=None)
    target = dt.datetime.combine(now.date(), NIGHTLY_LOCAL_TIME)
    return now.date() if before < target <= now else None


# The organisation's zone is a setting read at run time (ingestion.organisation), while a schedule's cron zone is
# fixed when the code location loads: the schedule ticks every quarter hour in UTC (every zone's offset is a
# multiple of 15 minutes) and a tick starts the nightly run only at 02:00 in the organisation's zone.
@schedule(
    name=NIGHTLY,
    cron_schedule=NIGHTLY_CRON,
    execution_timezone="UTC",
    job_name=INGEST_JOB,
    default_status=DefaultScheduleStatus.STOPPED,
    description=f"02:00 in the organisation's time zone (operations.yaml organisation.timezone, default "
    f"{DEFAULT_TIMEZONE}): ingest the landing files not loaded yet; "
    "publish_after_ingest then builds, checks and publishes the months to publish.",
)
def nightly_ingest(context: ScheduleEvaluationContext):
    paths = DataDir.from_env()
    zone = organisation_timezone(paths)
    day = nightly_local_day(context.scheduled_execution_time, zone)
    if day is None:
        return SkipReason(f"the nightly run starts at 02:00 {zone}")
    return nightly_request(context.instance, paths, day)


def months_touched_by_run(instance: DagsterInstance, run_id: str) -> list[dt.date]:
    """Union of `months_touched` over the materializations of a run (what the loaded rows count for)."""
    months: set[str] = set()
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
        md = entry.dagster_event.event_specific_data.materialization.metadata
        value = md.get("months_touched")
        if value is not None:
            months.update(value.value or [])
    return [dt.date.fromisoformat(m) for m in sorted(months)]


def publish_range(today: dt.date, closing_day: int, touched: Iterable[dt.date]) -> tuple[str, str]:
    """months_to_publish, clamped to the monthly partitions, as partition keys."""
    first, last = months_to_publish(today, closing_day, touched)
    first_key = max(first.isoformat(), appraisal_months.get_first_partition_key())
    last_key = min(last.isoformat(), appraisal_months.get_last_partition_key())
    return first_key, last_key


def publish_request(
    instance: DagsterInstance, run: DagsterRun, today: dt.date | None = None, paths: DataDir | None = None
) -> RunRequest | SkipReason:
    if run.tags.get(THEN_PUBLISH_TAG) != "true":
        return SkipReason(f"run {run.run_id} has no {THEN_PUBLISH_TAG}=true tag: not followed by a publish run")
    settings = load_settings(paths)
    nightly_date = run.tags.get("servicescore/nightly-date")
    today = today or (dt.date.fromisoformat(nightly_date) if nightly_date else local_today())
    touched = months_touched_by_run(instance, run.run_id)
    first, last = publish_range(today, settings.closing_day, touched)
    return RunRequest(
        run_key=f"publish-after-{run.run_id}",
        job_name=BUILD_JOB,
        tags={
            **range_tags(first, last),
            PARENT_RUN_TAG: run.run_id,
            TRIGGER_TAG: f"{PUBLISH_SENSOR} after {run.tags.get(TRIGGER_TAG, 'manual')}",
            "servicescore/months-touched": ",".join(m.isoformat() for m in touched)[:2000],
        },
    )


@run_status_sensor(
    name=PUBLISH_SENSOR,
    run_status=DagsterRunStatus.SUCCESS,
    monitored_jobs=[ingest_feeds],
    request_job=build_and_publish,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.STOPPED,
    description="After an ingest_feeds run tagged servicescore/then-publish=true succeeds: build, check and "
    "publish the current month, the previous one until the closing day, and every month the new rows touched.",
)
def publish_after_ingest(context: RunStatusSensorContext):
    return publish_request(context.instance, context.dagster_run)


schedules = [nightly_ingest]
run_status_sensors = [publish_after_ingest]
