"""Command line: `python -m orchestration.cli run` materializes the whole graph once and prints a summary.

    run [--no-demo]       generate the demo data if the landing folder is empty, then run the main job
    demo [--tier S]       (re)generate demo landing files only
    summary               print the summary of the serving file

Exit status is non-zero when any step or blocking check failed.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Iterator

from ingestion.paths import DataDir

INSTANCE_YAML = """\
# written by orchestration.cli; Dagster's home for ServiceScore (runs, events, schedules, sensor cursors)
telemetry:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 4
    tag_concurrency_limits:
      - key: servicescore/writes-warehouse
        limit: 1
"""


class RunLockedError(RuntimeError):
    pass


def prepare_home(paths: DataDir) -> None:
    paths.ensure()
    os.environ["DAGSTER_HOME"] = str(paths.dagster_home)
    os.environ["SERVICESCORE_DATA_DIR"] = str(paths.root)
    cfg = paths.dagster_home / "dagster.yaml"
    if not cfg.exists():
        cfg.write_text(INSTANCE_YAML)


@contextlib.contextmanager
def warehouse_lock(paths: DataDir) -> Iterator[None]:
    """One writer at a time: a second run fails fast instead of waiting on DuckDB's file lock."""
    lock_path = paths.root / ".warehouse.lock"
    fh = lock_path.open("a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        fh.seek(0)
        holder = fh.read().strip() or "unknown"
        fh.close()
        raise RunLockedError(
            f"another ServiceScore run is writing {paths.warehouse} (lock {lock_path}, held by {holder}); "
            "not starting a second writer"
        ) from exc
    try:
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        fh.flush()
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def landing_is_empty(paths: DataDir) -> bool:
    return not paths.landing.exists() or not any(p.is_file() for p in paths.landing.rglob("*"))


def landing_days(paths: DataDir) -> list[str]:
    from ingestion.contracts import FEEDS
    from ingestion.landing import list_files

    days: set[str] = set()
    for feed in FEEDS:
        files, _ = list_files(paths.landing, feed)
        days.update(f.day for f in files)
    return sorted(days)


def range_tags(first: str, last: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}


def run_job(job_name: str, first: str, last: str, run_config: dict | None = None):
    """Run one job over a partition range, in this process, recorded in the Dagster instance (the UI shows it)."""
    from dagster import DagsterInstance

    from orchestration.definitions import defs

    job = defs.resolve_job_def(job_name)
    with DagsterInstance.get() as instance:
        return job.execute_in_process(instance=instance, raise_on_error=False, tags=range_tags(first, last),
                                      run_config=run_config)


def run_pipeline(paths: DataDir, months: tuple[str, str] | None = None, full_refresh: bool = False) -> list:
    """Ingest the landing days (all, or those of `months`), then build, check and publish the months they
    cover (or `months`: first and last month start, YYYY-MM-01)."""
    import datetime as dt

    from orchestration.jobs import BUILD_JOB, INGEST_JOB
    from orchestration.partitions import appraisal_months, feed_days, next_month

    prepare_home(paths)  # the runs' resources resolve the data folder from the environment: make it this one
    today = dt.date.today()
    days = [d for d in landing_days(paths) if d <= feed_days.get_last_partition_key()]
    if months is not None:
        end = next_month(dt.date.fromisoformat(months[1])).isoformat()
        days = [d for d in days if months[0] <= d < end]
    results = []
    if days:
        first_day = max(days[0], feed_days.get_first_partition_key())
        results.append(run_job(INGEST_JOB, first_day, days[-1]))
        if not results[-1].success:
            return results
    if months is None:
        if not days:
            return results
        months = (days[0][:7] + "-01", min(days[-1], today.isoformat())[:7] + "-01")
    first_month = max(months[0], appraisal_months.get_first_partition_key())
    run_config = {"ops": {"servicescore_dbt": {"config": {"full_refresh": full_refresh}}}}
    results.append(run_job(BUILD_JOB, first_month, months[1], run_config))
    return results


def blocking_check_keys() -> set:
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    return {key for key in graph.asset_check_keys if graph.get_check_spec(key).blocking}


def summarize(results: list) -> tuple[str, bool]:
    """Rows loaded and rejected per feed, checks passed and failed, the publication written."""
    from dagster import AssetCheckSeverity

    lines = ["", "ServiceScore runs: " + ", ".join(f"{r.dagster_run.job_name} {r.run_id}" for r in results), ""]
    mats = [ev for r in results for ev in r.get_asset_materialization_events()]
    feeds: dict[str, tuple] = {}
    other: dict[tuple, dict] = {}
    for ev in mats:
        mat = ev.event_specific_data.materialization
        key = mat.asset_key.path
        md = {k: v.value for k, v in mat.metadata.items()}
        if key[0] == "raw" and "rows_loaded" in md:
            # a run over a range of day partitions reports the same load once per day: keep one
            feeds[key[1]] = (key[1], md["rows_loaded"], md["rows_rejected"], md["files_read"],
                             md.get("files_already_loaded", 0))
        else:
            other[tuple(key)] = md
    if feeds:
        lines.append(f"{'feed':<22}{'loaded':>10}{'rejected':>10}{'files':>7}{'skipped':>9}")
        for name, loaded, rejected, files, skipped in sorted(feeds.values()):
            lines.append(f"{name:<22}{loaded:>10}{rejected:>10}{files:>7}{skipped:>9}")
        lines.append("")
    evals = [e for r in results for e in r.get_asset_check_evaluations()]
    blocking = blocking_check_keys()
    passed = [e for e in evals if e.passed]
    failed = [e for e in evals if not e.passed]
    blocking_failed = [e for e in failed if e.severity == AssetCheckSeverity.ERROR and e.asset_check_key in blocking]
    lines.append(f"checks: {len(passed)} passed, {len(failed)} failed ({len(blocking_failed)} blocking)")
    for e in failed:
        kind = "blocking" if e in blocking_failed else f"{e.severity.value.lower()}, non-blocking"
        lines.append(f"  FAILED [{kind}] {e.asset_key.to_user_string()}: {e.check_name}")
    pub = other.get(("serving", "publication"))
    if pub:
        if pub.get("changed"):
            versions = ", ".join(pub.get("new_versions") or []) or "none"
            lines.append(f"publication {pub.get('publication_id')}: versions {versions}")
            if pub.get("snapshots_replaced"):
                lines.append(f"  tables replaced: {', '.join(pub['snapshots_replaced'])}")
            if pub.get("restated_periods"):
                lines.append(f"  restated periods: {', '.join(pub['restated_periods'])}")
        else:
            lines.append("publication: nothing changed, no new version")
        lines.append(f"serving file: {pub.get('serving_file')}")
    else:
        lines.append("publication: NOT published (a step or a blocking check failed)")
    for ev in [ev for r in results for ev in r.all_events if ev.event_type_value == "STEP_FAILURE"]:
        err = ev.event_specific_data.error
        lines.append(f"  step failed: {ev.step_key}")
        messages = []
        while err is not None:  # the step error, then what caused it (the dbt or loader error)
            messages.append(err.message.strip())
            err = err.cause
        lines.append("    " + "\n".join(messages).replace("\n", "\n    ")[:3000])
    ok = bool(results) and all(r.success for r in results) and not blocking_failed and pub is not None
    lines.append("")
    lines.append("OK" if ok else "FAILED")
    return "\n".join(lines), ok


def run_locked(paths: DataDir, months: tuple[str, str] | None, full_refresh: bool, demo: bool = False) -> int:
    """Hold the writer lock, run the pipeline, print the summary; 3 when another run holds the lock."""
    started = time.monotonic()
    try:
        with warehouse_lock(paths):
            if demo and landing_is_empty(paths):
                from ingestion.generator import generate

                print(f"landing folder {paths.landing} is empty: generating the demo data set (tier S)")
                generate(paths.landing, tier="S")
            results = run_pipeline(paths, months=months, full_refresh=full_refresh)
    except RunLockedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    text, ok = summarize(results)
    print(text)
    print(f"wall time: {time.monotonic() - started:.1f} s")
    return 0 if ok else 1


def cmd_run(args: argparse.Namespace) -> int:
    paths = DataDir.from_env()
    prepare_home(paths)
    return run_locked(paths, None, args.full_refresh, demo=not args.no_demo)


def cmd_backfill(args: argparse.Namespace) -> int:
    """Re-ingest (new files only) and rebuild, check and publish a month range in one run per job."""
    paths = DataDir.from_env()
    prepare_home(paths)
    months = (f"{args.from_month}-01", f"{args.to_month}-01")
    if months[1] < months[0]:
        print(f"error: --to {args.to_month} is before --from {args.from_month}", file=sys.stderr)
        return 2
    return run_locked(paths, months, args.full_refresh)


def cmd_demo(args: argparse.Namespace) -> int:
    from ingestion.generator import generate

    paths = DataDir.from_env().ensure()
    summary = generate(paths.landing, tier=args.tier, seed=args.seed)
    print(summary)
    return 0


def _month(text: str) -> str:
    import datetime as dt

    try:
        dt.date.fromisoformat(f"{text}-01")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a month (YYYY-MM)") from exc
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="servicescore", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="materialize the whole asset graph once")
    p_run.add_argument("--no-demo", action="store_true", help="do not generate demo data into an empty landing")
    p_run.add_argument("--full-refresh", action="store_true", help="rebuild incremental dbt models from raw")
    p_run.set_defaults(func=cmd_run)
    p_back = sub.add_parser("backfill", help="rebuild, check and publish a month range in one run")
    p_back.add_argument("--from", dest="from_month", required=True, type=_month, help="first month, YYYY-MM")
    p_back.add_argument("--to", dest="to_month", required=True, type=_month, help="last month, YYYY-MM")
    p_back.add_argument("--full-refresh", action="store_true", help="rebuild incremental dbt models from raw")
    p_back.set_defaults(func=cmd_backfill)
    p_demo = sub.add_parser("demo", help="generate demo landing files")
    p_demo.add_argument("--tier", default="S", choices=["S", "M", "L"])
    p_demo.add_argument("--seed", type=int, default=42)
    p_demo.set_defaults(func=cmd_demo)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
