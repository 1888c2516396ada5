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
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from ingestion.paths import DataDir

# the instance settings a new Dagster home gets
INSTANCE_YAML = Path(__file__).with_name("dagster.yaml")


class RunLockedError(RuntimeError):
    pass


def prepare_home(paths: DataDir) -> None:
    paths.ensure()
    os.environ["DAGSTER_HOME"] = str(paths.dagster_home)
    os.environ["SERVICESCORE_DATA_DIR"] = str(paths.root)
    cfg = paths.dagster_home / "dagster.yaml"
    if not cfg.exists():
        shutil.copyfile(INSTANCE_YAML, cfg)


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


def range_tags(first: str, last: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}


def run_job(job_name: str, first: str | None = None, last: str | None = None, run_config: dict | None = None):
    """Run one job (over a range of month partitions, for the build), in this process, recorded in the Dagster
    instance (the UI shows it)."""
    from dagster import DagsterInstance

    from orchestration import run_history_durability
    from orchestration.definitions import defs
    from orchestration.settings.operations import load_settings

    run_history_durability.apply(load_settings(DataDir.from_env()).dagster_sqlite_synchronous)
    job = defs.resolve_job_def(job_name)
    tags = range_tags(first, last) if first and last else None
    with DagsterInstance.get() as instance:
        return job.execute_in_process(instance=instance, raise_on_error=False, tags=tags, run_config=run_config)


def data_months(paths: DataDir, timezone: str) -> tuple[str, str] | None:
    """The first and last month (YYYY-MM-01, local time) that a loaded record counts for, from the period
    columns of raw: the months an export's records fall in, whatever the dates in its file names."""
    import duckdb

    from ingestion.contracts import FEEDS
    from ingestion.warehouse import quote_ident, quote_literal

    parts = []
    for feed in FEEDS.values():
        for col in feed.period_columns:
            c = quote_ident(col)
            local = f"{c} at time zone {quote_literal(timezone)}" if feed.column(col).type == "timestamp" else c
            parts.append(f"select min({local}) as lo, max({local}) as hi from raw.{quote_ident(feed.name)}")
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        lo, hi = con.execute(
            f"select cast(date_trunc('month', min(lo)) as date), "
            f"cast(date_trunc('month', max(hi)) as date) from ({' union all '.join(parts)})"
        ).fetchone()
    finally:
        con.close()
    return (lo.isoformat(), hi.isoformat()) if lo is not None else None


def wait_for_settled_files(paths: DataDir, settle_seconds: float, rounds: int = 6) -> list[str]:
    """Wait until no landing file changed in the last `settle_seconds` (a copy still under way would load cut
    short); returns the files still changing after `rounds` waits (the run is then refused)."""
    from orchestration.sensors import scan_landing

    for _ in range(rounds):
        now = time.time()
        young = [e for e in scan_landing(paths.landing) if now - e.mtime_ns / 1e9 < settle_seconds]
        if not young:
            return []
        print(
            f"waiting for {len(young)} landing file(s) modified less than {settle_seconds:g} s ago "
            f"(perhaps still being written): {', '.join(sorted(e.rel for e in young))[:500]}",
            flush=True,
        )
        time.sleep(max(settle_seconds - (now - max(e.mtime_ns for e in young) / 1e9), 0.1))
    now = time.time()
    return sorted(e.rel for e in scan_landing(paths.landing) if now - e.mtime_ns / 1e9 < settle_seconds)


def run_pipeline(paths: DataDir, months: tuple[str, str] | None = None, full_refresh: bool = False) -> list:
    """Ingest every landing file not loaded yet, then build, check and publish the months the loaded records
    count for (or `months`: first and last month start, YYYY-MM-01)."""
    import datetime as dt

    from ingestion.organisation import organisation_timezone
    from orchestration.jobs import BUILD_JOB, INGEST_JOB
    from orchestration.partitions import appraisal_months

    prepare_home(paths)  # the runs' resources resolve the data folder from the environment: make it this one
    results = [run_job(INGEST_JOB)]
    if not results[-1].success:
        return results
    if months is None:
        months = data_months(paths, organisation_timezone(paths))
        if months is None:
            return results
        months = (months[0], min(months[1], dt.date.today().replace(day=1).isoformat()))
    first_month = max(months[0], appraisal_months.get_first_partition_key())
    if first_month > months[1]:
        return results
    run_config = {"ops": {"servicescore_dbt": {"config": {"full_refresh": full_refresh}}}}
    results.append(run_job(BUILD_JOB, first_month, months[1], run_config))
    return results


def blocking_check_keys() -> set:
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    return {key for key in graph.asset_check_keys if graph.get_check_spec(key).blocking}


def unread_files(paths: DataDir, run_ids: list[str]) -> list[tuple[str, str, str]]:
    """(feed, file, reason) of every landed file the runs did not read (raw.unread_files)."""
    import duckdb

    if not paths.warehouse.exists() or not run_ids:
        return []
    try:
        con = duckdb.connect(str(paths.warehouse), read_only=True)
        try:
            if not con.execute(
                "select count(*) from duckdb_tables() where schema_name = 'raw' and table_name = 'unread_files'"
            ).fetchone()[0]:
                return []
            return con.execute(
                "select distinct feed, source_file, reason from raw.unread_files "
                "where run_id in (select unnest($ids)) order by 1, 2",
                {"ids": run_ids},
            ).fetchall()
        finally:
            con.close()
    except duckdb.Error as exc:
        return [("?", str(paths.warehouse), f"could not be read to list the files not read: {exc}")]


def run_problems(paths: DataDir) -> list[str]:
    """What makes a run not OK although every step may have succeeded, in plain words: feeds with most (or all)
    of their rows rejected, a serving file where no technician is graded."""
    import duckdb

    from ingestion.acceptance import feed_standings
    from orchestration.settings.operations import load_settings

    problems: list[str] = []
    if paths.warehouse.exists():
        try:
            con = duckdb.connect(str(paths.warehouse), read_only=True)
            try:
                has_raw = con.execute(
                    "select count(*) from duckdb_tables() where schema_name = 'raw' and table_name = 'rejected_rows'"
                ).fetchone()[0]
                standings = feed_standings(con) if has_raw else []
            finally:
                con.close()
        except duckdb.Error as exc:  # e.g. a dbt process of a failed step still holds it
            problems.append(f"could not read {paths.warehouse} to count rejected rows: {exc}")
            standings = []
        limit = load_settings(paths).max_rejected_share
        problems += [p for st in standings if (p := st.problem(limit))]
    if paths.serving.exists():
        try:
            con = duckdb.connect(str(paths.serving), read_only=True)
            try:
                (rows,) = con.execute("select count(*) from appraisal_scores").fetchone()
            finally:
                con.close()
        except duckdb.Error:
            rows = 0
        if not rows:
            problems.append(
                "the serving file holds no appraisal row (no indicator settings in force for the "
                "published periods, or no technician with data); see: select * from appraisal_scores"
            )
    return problems


def run_notes(paths: DataDir) -> list[str]:
    """What the reader of the summary should know although the run is OK: an appraisal that grades nobody."""
    import duckdb

    if not paths.serving.exists():
        return []
    try:
        con = duckdb.connect(str(paths.serving), read_only=True)
        try:
            rows, graded = con.execute("select count(*), count(grade) from appraisal_scores").fetchone()
        finally:
            con.close()
    except duckdb.Error:
        return []
    if rows and not graded:
        return [
            f"no technician is graded: all {rows} appraisal rows are insufficient data (too few observations "
            f"or too little rated weight); see: select status, rated_weight_share, count(*) from "
            f"appraisal_scores group by all"
        ]
    return []


def summarize(results: list, paths: DataDir | None = None) -> tuple[str, bool]:
    """What went wrong first, in plain words; then rows loaded and rejected per feed, checks passed and failed,
    the publication written."""
    from dagster import AssetCheckSeverity

    mats = [ev for r in results for ev in r.get_asset_materialization_events()]
    feeds: dict[str, tuple] = {}
    other: dict[tuple, dict] = {}
    for ev in mats:
        mat = ev.event_specific_data.materialization
        key = mat.asset_key.path
        md = {k: v.value for k, v in mat.metadata.items()}
        if key[0] == "raw" and "rows_loaded" in md:
            feeds[key[1]] = (
                key[1],
                md["rows_loaded"],
                md["rows_rejected"],
                md.get("rows_recovered", 0),
                md["files_read"],
                md.get("files_already_loaded", 0),
            )
        else:
            other[tuple(key)] = md
    problems = run_problems(paths or DataDir.from_env())
    lines = [""]
    if problems:
        lines += ["NOT OK:", *(f"  - {p}" for p in problems), ""]
    notes = run_notes(paths or DataDir.from_env())
    pseudonyms = other.get(("raw", "customer_pseudonyms"), {})
    if pseudonyms.get("key_generated"):
        # said once: the key file exists from now on and later runs read it
        notes.append(
            f"no pseudonym key is configured: a random key was generated for this data folder "
            f"({str(pseudonyms.get('key_source', '')).removeprefix('generated file ')}); back it up, "
            f"since a new key changes every phone pseudonym. A production deployment must configure "
            f"SERVICESCORE_PSEUDONYM_KEY_FILE (docs/privacy.md)."
        )
    if notes:
        lines += ["NOTE:", *(f"  - {n}" for n in notes), ""]
    lines += ["ServiceScore runs: " + ", ".join(f"{r.dagster_run.job_name} {r.run_id}" for r in results), ""]
    unread = unread_files(paths or DataDir.from_env(), [r.run_id for r in results])
    if feeds:
        lines.append(f"{'feed':<22}{'loaded':>10}{'rejected':>10}{'recovered':>10}{'files':>7}{'skipped':>9}")
        for name, loaded, rejected, recovered, files, skipped in sorted(feeds.values()):
            lines.append(f"{name:<22}{loaded:>10}{rejected:>10}{recovered:>10}{files:>7}{skipped:>9}")
        lines.append("")
    if unread:
        lines.append(f"files not read ({len(unread)}; all in raw.unread_files):")
        lines += [f"  {feed}/{name.split('/')[-1]}: {reason}" for feed, name, reason in unread[:50]]
        if len(unread) > 50:
            lines.append(f"  ... and {len(unread) - 50} more")
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
    ok = bool(results) and all(r.success for r in results) and not blocking_failed and pub is not None and not problems
    lines.append("")
    lines.append("OK" if ok else "FAILED")
    return "\n".join(lines), ok


def run_locked(paths: DataDir, months: tuple[str, str] | None, full_refresh: bool, demo: bool = False) -> int:
    """Hold the writer lock, run the pipeline, print the summary; 3 when another run holds the lock."""
    started = time.monotonic()
    try:
        with warehouse_lock(paths):
            if demo and landing_is_empty(paths):
                from demo.generator import generate

                print(f"landing folder {paths.landing} is empty: generating the demo data set (tier S)")
                generate(paths.landing, tier="S")
            from orchestration.settings.operations import load_settings

            changing = wait_for_settled_files(paths, load_settings(paths).landing_settle_seconds)
            if changing:
                print(
                    f"error: landing file(s) still being written, not starting: {', '.join(changing)[:2000]}",
                    file=sys.stderr,
                )
                return 1
            results = run_pipeline(paths, months=months, full_refresh=full_refresh)
    except RunLockedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    text, ok = summarize(results, paths)
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
    from demo.generator import generate

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
    parser = argparse.ArgumentParser(
        prog="servicescore", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
