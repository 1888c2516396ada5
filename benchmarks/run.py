"""`make bench TIER=M`: the full pipeline, the nightly run and the raw-DuckDB floor on the same landing files.

    .venv/bin/python benchmarks/run.py --tier M [--repeat 3] [--root data/bench]

One invocation, per tier: generate the landing files once (untimed) into <root>/<tier>/landing_base, then for
each repeat, in a fresh data folder <root>/<tier>/run (landing hard-linked from landing_base):
  full     `python -m orchestration.cli run --no-demo` from an empty warehouse (ingest_feeds then
           build_and_publish, checks included);
  floor    benchmarks/floor.sql in a fresh `duckdb` process on the same landing files (same memory_limit and
           threads as the pipeline's defaults);
  nightly  one new day generated after the window (untimed), then the nightly path in one process: the
           `nightly_ingest` schedule's request for the next morning (new days + yesterday) and the
           `publish_after_ingest` sensor's build_and_publish request (the months to publish and those the new
           rows touched), both executed in process like the CLI does.
Every phase is a child process; its peak RSS is the maximum over samples every 0.2 s of the RSS summed over
the child and all its descendants (dbt runs as a grandchild). Stage times come from the Dagster event log
(STEP_START -> STEP_SUCCESS/FAILURE per step key) of the runs the phase created; the rest of the wall time
(interpreter and Dagster start-up, definitions loading, run bookkeeping) is `other`.
Writes <root>/<tier>/bench.json and bench.md and prints the table (median of the repeats, min-max spread).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

FLOOR_SQL = REPO / "benchmarks" / "floor.sql"
STAGES = ("ingestion", "dbt", "checks", "publication", "other_steps", "other")
DEFAULT_WINDOWS = {"S": ("2026-05-01", 6), "M": ("2026-05-01", 6), "L": ("2025-11-01", 12)}


# ------------------------------------------------------------------ measurement helpers
def run_measured(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> dict:
    """Run a child process; wall seconds, exit code and peak RSS of its whole process tree (0.2 s samples)."""
    import psutil

    peak = 0
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            try:
                parent = psutil.Process(proc.pid)
            except psutil.NoSuchProcess:
                return
            while not done.is_set():
                total = 0
                try:
                    procs = [parent, *parent.children(recursive=True)]
                except psutil.NoSuchProcess:
                    break
                for p in procs:
                    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                        total += p.memory_info().rss
                peak = max(peak, total)
                done.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = proc.wait()
        done.set()
        sampler.join()
    return {"wall_s": time.perf_counter() - start, "exit_code": code, "peak_rss_bytes": peak}


def stage_of(step_key: str) -> str:
    if "_gx_" in step_key or "freshness" in step_key:
        return "checks"
    if step_key.startswith("raw__"):
        return "ingestion"
    if step_key.startswith("servicescore_dbt"):
        return "dbt"
    if step_key.startswith("serving__publication"):
        return "publication"
    return "other_steps"


def run_ids(dagster_home: Path) -> list[str]:
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        return [r.run_id for r in instance.get_runs()]


def step_times(dagster_home: Path, ids: list[str]) -> dict:
    """Seconds per stage and per step key over the runs `ids`, from the event log."""
    from dagster import DagsterEventType, DagsterInstance

    kinds = {DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE}
    steps: dict[str, float] = {}
    runs: dict[str, dict] = {}
    publication: dict[str, float] = {}
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        for run_id in ids:
            run = instance.get_run_by_id(run_id)
            started: dict[str, float] = {}
            for entry in instance.all_logs(run_id, of_type=kinds):
                key = entry.step_key
                if entry.dagster_event.event_type == DagsterEventType.STEP_START:
                    started[key] = entry.timestamp
                elif key in started:
                    steps[key] = steps.get(key, 0.0) + entry.timestamp - started.pop(key)
            runs[run_id] = {
                "job": run.job_name,
                "status": run.status.value,
                "tags": {
                    k: v for k, v in run.tags.items() if k.startswith(("dagster/asset_partition", "servicescore/"))
                },
            }
            # the publication is materialized once per month partition of the run, with the same metadata
            timed = [
                e.asset_materialization.metadata["timings_s"].value
                for e in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
                if "timings_s" in e.asset_materialization.metadata
            ]
            for phase_, seconds in (timed[0] if timed else {}).items():
                publication[phase_] = publication.get(phase_, 0.0) + float(seconds)
    stages = {s: 0.0 for s in STAGES}
    for key, seconds in steps.items():
        stages[stage_of(key)] += seconds
    return {
        "stages": stages,
        "steps": dict(sorted(steps.items(), key=lambda kv: -kv[1])),
        "runs": runs,
        "publication_phases": dict(sorted(publication.items(), key=lambda kv: -kv[1])),
    }


def dbt_node_times(run_ids_: list[str]) -> dict:
    """Per-node execution seconds from the run_results.json of the dbt invocations of these runs."""
    target = REPO / "dbt_project" / "target"
    nodes: dict[str, float] = {}
    for run_id in run_ids_:
        for path in target.glob(f"servicescore_dbt-{run_id[:7]}-*/run_results.json"):
            for result in json.loads(path.read_text()).get("results", []):
                uid = result["unique_id"]
                nodes[uid] = nodes.get(uid, 0.0) + float(result.get("execution_time") or 0.0)
    return dict(sorted(nodes.items(), key=lambda kv: -kv[1]))


# ------------------------------------------------------------------ phases
def child_env(data: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "SERVICESCORE_DATA_DIR": str(data),
            "DAGSTER_HOME": str(data / "dagster_home"),
            "PYTHONPATH": str(REPO),
            "DO_NOT_TRACK": "1",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
    )
    return env


def prepare_floor_input(data: Path) -> None:
    """Reference inputs of floor.sql (untimed): UTF-8 roster copies, the working calendar, the SLA seed, the
    organisation's clock (zone and working day)."""
    from ingestion.landing import detect_encoding, transcode_to_utf8
    from ingestion.work_calendar import calendar_frame
    from orchestration.partitions import PARTITIONS_START

    floor_input = data / "floor_input"
    shutil.rmtree(floor_input, ignore_errors=True)
    (floor_input / "technicians").mkdir(parents=True)
    for src in sorted((data / "landing" / "technicians").glob("*.csv")):
        transcode_to_utf8(src, detect_encoding(src), floor_input / "technicians" / src.name)
    from ingestion.organisation import load_organisation
    from ingestion.paths import DataDir

    organisation = load_organisation(DataDir(data))
    today = dt.date.today()
    frame = calendar_frame(dt.date.fromisoformat(PARTITIONS_START), dt.date(today.year + 1, 12, 31), organisation)
    import duckdb

    with duckdb.connect() as con:
        con.register("calendar_frame", frame)
        con.execute(
            f"copy (select calendar_date, is_workday from calendar_frame order by calendar_date) "
            f"to '{floor_input / 'work_calendar.parquet'}' (format parquet)"
        )

    def seconds(hhmm: str) -> int:
        return int(hhmm[:2]) * 3600 + int(hhmm[3:]) * 60

    (floor_input / "organisation.csv").write_text(
        "timezone,workday_start_seconds,workday_end_seconds\n"
        f"{organisation.timezone},{seconds(organisation.workday_start)},{seconds(organisation.workday_end)}\n"
    )
    shutil.copy(REPO / "dbt_project" / "seeds" / "sla_targets.csv", floor_input / "sla_targets.csv")


def floor_main(data: Path, memory_limit: str, threads: int) -> None:
    """Child process: run floor.sql in a fresh in-memory DuckDB with the working directory = data folder."""
    import duckdb

    os.chdir(data)
    con = duckdb.connect(config={"memory_limit": memory_limit, "threads": threads})
    rows = None
    for statement in duckdb.extract_statements(FLOOR_SQL.read_text()):
        result = con.execute(statement)
        if statement.type == duckdb.StatementType.SELECT:
            rows = result.fetchall()
    print(f"floor: kpi_technician_monthly rows {rows}")


def nightly_main(day: dt.date) -> None:
    """Child process: the nightly path for the morning after `day` (schedule request, then sensor request)."""
    from dagster import DagsterInstance

    from ingestion.paths import DataDir
    from orchestration.definitions import defs
    from orchestration.jobs import BUILD_JOB, INGEST_JOB
    from orchestration.schedules import nightly_request, publish_request

    paths = DataDir.from_env()
    morning = day + dt.timedelta(days=1)
    with DagsterInstance.get() as instance:
        request = nightly_request(instance, paths, morning)
        if not hasattr(request, "tags"):
            raise SystemExit(f"nightly schedule skipped: {request}")
        ingest = defs.resolve_job_def(INGEST_JOB).execute_in_process(
            instance=instance, raise_on_error=False, tags=request.tags
        )
        print(f"ingest {ingest.run_id} success={ingest.success} tags={request.tags}")
        if not ingest.success:
            raise SystemExit(1)
        publish = publish_request(instance, ingest.dagster_run, today=morning, paths=paths)
        if not hasattr(publish, "tags"):
            raise SystemExit(f"publish sensor skipped: {publish}")
        build = defs.resolve_job_def(BUILD_JOB).execute_in_process(
            instance=instance,
            raise_on_error=False,
            tags=publish.tags,
            run_config={"ops": {"servicescore_dbt": {"config": {"full_refresh": False}}}},
        )
        print(f"build {build.run_id} success={build.success} tags={publish.tags}")
        if not build.success:
            raise SystemExit(1)


def generate(landing: Path, tier: str, seed: int, start: str, months: int) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "demo.generator",
            "--tier",
            tier,
            "--landing",
            str(landing),
            "--seed",
            str(seed),
            "--start",
            start,
            "--months",
            str(months),
            "--no-bad-rows",
        ],
        check=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def phase(name: str, cmd: list[str], data: Path, cwd: Path) -> dict:
    home = data / "dagster_home"
    before = set(run_ids(home)) if (home / "dagster.yaml").exists() else set()
    print(f"  {name} ...", flush=True)
    measured = run_measured(cmd, child_env(data), cwd, data / f"{name}.log")
    result = {**measured, "load_avg_after": os.getloadavg()}
    if name != "floor":
        new = [r for r in run_ids(home) if r not in before]
        result.update(step_times(home, new))
        result["dbt_nodes"] = dbt_node_times(new)
    status = "ok" if measured["exit_code"] == 0 else f"FAILED (exit {measured['exit_code']}, see {name}.log)"
    print(
        f"  {name}: {measured['wall_s']:.1f} s, peak RSS {measured['peak_rss_bytes'] / 2**30:.2f} GiB {status}",
        flush=True,
    )
    return result


def one_repeat(tier_dir: Path, tier: str, seed: int, next_day: dt.date, memory_limit: str, threads: int) -> dict:
    data = tier_dir / "run"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    shutil.copytree(tier_dir / "landing_base", data / "landing", copy_function=os.link)
    prepare_floor_input(data)
    py = sys.executable
    out = {"load_avg_before": os.getloadavg()}
    out["full"] = phase("full", [py, "-m", "orchestration.cli", "run", "--no-demo"], data, REPO)
    if out["full"]["exit_code"] != 0:
        return out
    out["floor"] = phase(
        "floor", [py, str(Path(__file__).resolve()), "_floor", str(data), memory_limit, str(threads)], data, REPO
    )
    t0 = time.perf_counter()
    subprocess.run(
        [
            py,
            "-m",
            "demo.generator",
            "--tier",
            tier,
            "--landing",
            str(data / "landing"),
            "--seed",
            str(seed),
            "--day",
            next_day.isoformat(),
        ],
        check=True,
        cwd=REPO,
        env=child_env(data),
        stdout=subprocess.DEVNULL,
    )
    out["new_day_generation_s"] = time.perf_counter() - t0
    out["nightly"] = phase("nightly", [py, str(Path(__file__).resolve()), "_nightly", next_day.isoformat()], data, REPO)
    return out


# ------------------------------------------------------------------ report
def figures(rep: dict) -> dict[str, float]:
    full, floor, nightly = rep["full"], rep["floor"], rep["nightly"]
    f: dict[str, float] = {}
    for name, ph in (("full", full), ("nightly", nightly)):
        stages = dict(ph["stages"])
        stages["other"] = max(0.0, ph["wall_s"] - sum(v for k, v in stages.items() if k != "other"))
        for s in STAGES:
            f[f"{name}.{s}_s"] = stages[s]
        f[f"{name}.total_s"] = ph["wall_s"]
        f[f"{name}.peak_rss_gib"] = ph["peak_rss_bytes"] / 2**30
        f[f"{name}.checks_share"] = stages["checks"] / ph["wall_s"]
        f[f"{name}.dbt_tests_s"] = sum(v for k, v in ph.get("dbt_nodes", {}).items() if k.startswith("test."))
    f["floor.total_s"] = floor["wall_s"]
    f["floor.peak_rss_gib"] = floor["peak_rss_bytes"] / 2**30
    f["ratio.full_over_floor"] = full["wall_s"] / floor["wall_s"]
    f["ratio.nightly_over_full"] = nightly["wall_s"] / full["wall_s"]
    f["goal.full_minus_30s_over_floor"] = max(0.0, full["wall_s"] - 30.0) / floor["wall_s"]
    return f


def summarize(reps: list[dict]) -> dict[str, dict[str, float]]:
    per = [figures(r) for r in reps]
    return {
        k: {
            "median": statistics.median(p[k] for p in per),
            "min": min(p[k] for p in per),
            "max": max(p[k] for p in per),
        }
        for k in per[0]
    }


def markdown(tier: str, summary: dict, reps: list[dict], meta: dict) -> str:
    def cell(key: str, fmt: str = "{:.1f}") -> str:
        v = summary[key]
        if len(reps) == 1:
            return fmt.format(v["median"])
        return f"{fmt.format(v['median'])} ({fmt.format(v['min'])}-{fmt.format(v['max'])})"

    lines = [
        f"# ServiceScore benchmark, tier {tier}",
        "",
        f"{meta['when']}, {len(reps)} repeat(s): median (min-max). Landing: {meta['landing_summary']}. "
        f"Load average before/after each repeat: {meta['load']}. DuckDB memory_limit {meta['memory_limit']}, "
        f"threads {meta['threads']}.",
        "",
        "| seconds | ingestion | dbt build | quality checks | publication | other steps | start-up & other "
        "| total | peak RSS GiB | checks share |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("full", "nightly"):
        lines.append(
            f"| {name} | "
            + " | ".join(cell(f"{name}.{s}_s") for s in STAGES)
            + f" | {cell(f'{name}.total_s')} | {cell(f'{name}.peak_rss_gib', '{:.2f}')}"
            + f" | {cell(f'{name}.checks_share', '{:.1%}')} |"
        )
    lines.append(f"| floor | | | | | | | {cell('floor.total_s')} | {cell('floor.peak_rss_gib', '{:.2f}')} | |")

    def met(key: str, limit: float) -> str:
        return "met" if summary[key]["median"] <= limit + 1e-9 else "missed"  # 0.1 and 0.2 give 0.15000000000000002

    peak = "max(full, nightly)"
    summary["peak.rss_gib"] = {
        k: max(summary["full.peak_rss_gib"][k], summary["nightly.peak_rss_gib"][k]) for k in ("median", "min", "max")
    }
    lines += [
        "",
        "| ratio | value | goal (tier L) | median |",
        "|---|---|---|---|",
        f"| full / floor | {cell('ratio.full_over_floor', '{:.2f}')} | ≤ 2 (+ 30 s start-up) | |",
        f"| (full − 30 s) / floor | {cell('goal.full_minus_30s_over_floor', '{:.2f}')} | ≤ 2 "
        f"| {met('goal.full_minus_30s_over_floor', 2.0)} |",
        f"| nightly / full | {cell('ratio.nightly_over_full', '{:.1%}')} | ≤ 15 % "
        f"| {met('ratio.nightly_over_full', 0.15)} |",
        f"| checks / full | {cell('full.checks_share', '{:.1%}')} | ≤ 10 % | {met('full.checks_share', 0.10)} |",
        f"| peak RSS {peak} (GiB) | {cell('peak.rss_gib', '{:.2f}')} | ≤ 4 | {met('peak.rss_gib', 4.0)} |",
        f"| dbt tests inside dbt build, full (s) | {cell('full.dbt_tests_s')} | | |",
        "",
    ]
    last = reps[-1]
    for name in ("full", "nightly"):
        lines += [f"Slowest steps, {name} (last repeat):", "", "| step | s |", "|---|---|"]
        lines += [f"| {k} | {v:.1f} |" for k, v in list(last[name]["steps"].items())[:12]]
        lines += ["", f"Slowest dbt nodes, {name} (last repeat):", "", "| node | s |", "|---|---|"]
        lines += [f"| {k} | {v:.1f} |" for k, v in list(last[name]["dbt_nodes"].items())[:15]]
        lines += ["", f"Publication phases, {name} (last repeat):", "", "| phase | s |", "|---|---|"]
        lines += [f"| {k} | {v:.1f} |" for k, v in list(last[name].get("publication_phases", {}).items())[:10]]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_floor":
        floor_main(Path(argv[1]), argv[2], int(argv[3]))
        return 0
    if argv and argv[0] == "_nightly":
        nightly_main(dt.date.fromisoformat(argv[1]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", default="M", choices=("S", "M", "L"))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--root", type=Path, default=REPO / "data" / "bench")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--start", help="first day of the window (default: 2026-05-01, tier L 2025-11-01)")
    parser.add_argument("--months", type=int, help="months in the window (default 6, tier L 12)")
    parser.add_argument(
        "--reuse-landing",
        action="store_true",
        help="keep <root>/<tier>/landing_base if it exists (same tier/seed/window)",
    )
    args = parser.parse_args(argv)
    from orchestration.resources import WarehouseResource

    defaults = WarehouseResource.model_fields
    memory_limit = os.environ.get("SERVICESCORE_DUCKDB_MEMORY_LIMIT", defaults["memory_limit"].default)
    threads = int(os.environ.get("SERVICESCORE_DUCKDB_THREADS", defaults["threads"].default))
    start_s, months = DEFAULT_WINDOWS[args.tier]
    start = dt.date.fromisoformat(args.start or start_s)
    months = args.months or months
    end = start
    for _ in range(months):
        end = (end.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    next_day = end  # the day after the window
    tier_dir = args.root.resolve() / args.tier
    tier_dir.mkdir(parents=True, exist_ok=True)
    landing = tier_dir / "landing_base"
    generation_s = None
    if not (args.reuse_landing and landing.exists()):
        shutil.rmtree(landing, ignore_errors=True)
        print(f"generating tier {args.tier} ({start}, {months} months) into {landing} ...", flush=True)
        generation_s = generate(landing, args.tier, args.seed, start.isoformat(), months)
    files = [p for p in landing.rglob("*") if p.is_file()]
    landing_summary = (
        f"{len(files)} files, {sum(p.stat().st_size for p in files) / 2**20:.0f} MiB, "
        f"{start} + {months} months, new day {next_day}"
    )
    reps = []
    md = ""
    for i in range(args.repeat):
        print(f"repeat {i + 1}/{args.repeat} (load average {os.getloadavg()[0]:.1f})", flush=True)
        reps.append(one_repeat(tier_dir, args.tier, args.seed, next_day, memory_limit, threads))
        failed = [n for n in ("full", "floor", "nightly") if reps[-1].get(n, {"exit_code": -1})["exit_code"] != 0]
        if failed:
            print(f"FAILED phases: {failed}; logs in {tier_dir / 'run'}", flush=True)
            return 1
        # written after every repeat, so that a long series leaves its finished repeats behind
        summary = summarize(reps)
        meta = {
            "when": time.strftime("%Y-%m-%d %H:%M"),
            "tier": args.tier,
            "seed": args.seed,
            "landing_summary": landing_summary,
            "generation_s": generation_s,
            "memory_limit": memory_limit,
            "threads": threads,
            "cpus": os.cpu_count(),
            "load": "; ".join(f"{r['load_avg_before'][0]:.1f}/{r['nightly']['load_avg_after'][0]:.1f}" for r in reps),
        }
        md = markdown(args.tier, summary, reps, meta)
        (tier_dir / "bench.json").write_text(
            json.dumps({"meta": meta, "summary": summary, "repeats": reps}, indent=2, default=str)
        )
        (tier_dir / "bench.md").write_text(md)
    print(md)
    print(f"written: {tier_dir / 'bench.json'}, {tier_dir / 'bench.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
