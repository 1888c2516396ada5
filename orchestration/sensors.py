"""The landing sensor: starts `ingest_feeds` for files that appear (or change) in the landing folder.

A file is known by its name, size and modification time. The sensor's cursor (kept by Dagster in
DAGSTER_HOME, so it survives restarts of the UI and the daemon) remembers every file it has handed to a run;
a file already in raw.load_log under its name and not modified since is not requested again, so turning
the sensor on over a loaded landing folder starts nothing. The run_key is
derived from the exact files, so the same files can never start two runs, and the loader skips a file hash
it has already loaded (same feed, same SHA-256) anyway.

The warehouse is opened read-only, only when there are unseen files, only while no warehouse-writing run is
in progress, and closed at once (DuckDB has one writer; a reader would make a starting run fail on the lock).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from ingestion.contracts import FEEDS
from ingestion.landing import list_files
from ingestion.paths import DataDir
from orchestration.jobs import INGEST_JOB, WRITES_WAREHOUSE_TAG
from orchestration.settings.operations import load_settings

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
TRIGGER_TAG = "servicescore/trigger"
# an ingest_feeds run carrying this tag is followed by a build_and_publish run (orchestration.schedules)
THEN_PUBLISH_TAG = "servicescore/then-publish"
LANDING_SENSOR = "landing_sensor"
IN_PROGRESS = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


@dataclass(frozen=True)
class LandingEntry:
    feed: str
    rel: str  # <feed>/<file name>, as in raw.load_log.source_file
    path: Path
    day: str
    size: int
    mtime_ns: int

    @property
    def fingerprint(self) -> str:
        return f"{self.size}:{self.mtime_ns}"


def scan_landing(landing: Path) -> list[LandingEntry]:
    """Every well-named file of every feed (names only, and one stat() per file)."""
    entries = []
    for feed in FEEDS:
        files, _ignored = list_files(landing, feed)
        for lf in files:
            st = lf.path.stat()
            entries.append(LandingEntry(feed, f"{feed}/{lf.name}", lf.path, lf.day, st.st_size, st.st_mtime_ns))
    return entries


def range_tags(first: str, last: str) -> dict[str, str]:
    return {RANGE_START_TAG: first, RANGE_END_TAG: last}


def writer_busy(instance: DagsterInstance, paths: DataDir) -> str | None:
    """Why the warehouse must not be opened now (a run is writing it), or None."""
    ((key, value),) = WRITES_WAREHOUSE_TAG.items()
    runs = instance.get_runs(filters=RunsFilter(statuses=IN_PROGRESS, tags={key: value}), limit=1)
    if runs:
        return f"run {runs[0].run_id} ({runs[0].job_name}) is writing the warehouse"
    lock = paths.root / ".warehouse.lock"  # held by `python -m orchestration.cli run`
    if lock.exists():
        with lock.open("a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
                fcntl.flock(fh, fcntl.LOCK_UN)
            except BlockingIOError:
                return f"the command line run holding {lock} is writing the warehouse"
    return None


class WarehouseBusy(Exception):
    pass


def load_log_times(warehouse: Path) -> dict[str, float]:
    """source_file (<feed>/<name>) -> when it was last loaded (epoch seconds), from raw.load_log.
    Read-only connection, closed at once; no file is read or hashed."""
    if not warehouse.exists():
        return {}
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error as exc:  # locked by a writer that started in between
        raise WarehouseBusy(str(exc)) from exc
    try:
        exists = con.execute(
            "select count(*) from duckdb_tables() where schema_name = 'raw' and table_name = 'load_log'"
        ).fetchall()[0][0]
        if not exists:
            return {}
        rows = con.execute(
            "select source_file, max(epoch(loaded_at)) from raw.load_log group by source_file"
        ).fetchall()
    finally:
        con.close()
    return {str(f): float(t) for f, t in rows}


def unloaded(entries: list[LandingEntry], warehouse: Path) -> list[LandingEntry]:
    """The entries not loaded yet: never loaded under that name, or changed after their last load. The loader
    still compares content hashes, so a file touched without a change loads nothing."""
    if not entries:
        return []
    loaded = load_log_times(warehouse)
    return [e for e in entries if e.rel not in loaded or e.mtime_ns / 1e9 > loaded[e.rel]]


def run_key_for(entries: Iterable[LandingEntry]) -> str:
    digest = hashlib.sha256("\n".join(sorted(f"{e.rel}|{e.fingerprint}" for e in entries)).encode()).hexdigest()
    return f"landing-{digest[:24]}"


def decode_cursor(cursor: str | None) -> dict[str, str]:
    if not cursor:
        return {}
    return dict(json.loads(cursor).get("seen", {}))


def encode_cursor(seen: dict[str, str]) -> str:
    return json.dumps({"seen": dict(sorted(seen.items()))}, separators=(",", ":"))


def evaluate_landing(
    instance: DagsterInstance, cursor: str | None, paths: DataDir, now: float | None = None
) -> SensorResult | SkipReason:
    """One tick of the landing sensor; a pure function of the landing folder, the warehouse and the cursor."""
    now = time.time() if now is None else now
    settings = load_settings(paths)
    seen = decode_cursor(cursor)
    entries = scan_landing(paths.landing)
    unseen = [e for e in entries if seen.get(e.rel) != e.fingerprint]
    if not unseen:
        return SkipReason(f"no new files in {paths.landing} ({len(entries)} known)")
    settled = [e for e in unseen if now - e.mtime_ns / 1e9 >= settings.landing_settle_seconds]
    if not settled:
        return SkipReason(
            f"{len(unseen)} new file(s) still being written; waiting "
            f"{settings.landing_settle_seconds:g} s after their last change"
        )
    busy = writer_busy(instance, paths)
    if busy:
        return SkipReason(f"{len(settled)} new file(s) wait: {busy}")
    try:
        todo = unloaded(settled, paths.warehouse)
    except WarehouseBusy as exc:
        return SkipReason(f"{len(settled)} new file(s) wait: the warehouse is locked ({exc})")
    # every settled file is now handled: requested or already loaded (the run loads every file not loaded yet,
    # whatever the date in its name)
    for e in settled:
        seen[e.rel] = e.fingerprint
    new_cursor = encode_cursor(seen)
    if not todo:
        return SensorResult(skip_reason=SkipReason(f"{len(settled)} new file(s) already loaded"), cursor=new_cursor)
    request = RunRequest(
        run_key=run_key_for(todo),
        job_name=INGEST_JOB,
        tags={
            TRIGGER_TAG: LANDING_SENSOR,
            THEN_PUBLISH_TAG: "true",
            "servicescore/files": ",".join(sorted(e.rel for e in todo))[:2000],
        },
    )
    return SensorResult(run_requests=[request], cursor=new_cursor)


@sensor(
    name=LANDING_SENSOR,
    job_name=INGEST_JOB,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.STOPPED,
    description="Every 30 s: new or changed files in the landing folder start ingest_feeds "
    "(then build_and_publish follows). A file is never requested twice; the cursor survives restarts.",
)
def landing_sensor(context: SensorEvaluationContext):
    return evaluate_landing(context.instance, context.cursor, DataDir.from_env())


sensors = [landing_sensor]
