"""The benchmark floor (benchmarks/floor.sql) computes the same kpi_technician_monthly as the pipeline.

1. On the hand-made fixture (tests/fixtures/handmade, the numbers of tests/test_pipeline.py worked out by hand):
   the floor rejects the same rows (R9 overall_score 9, KX unknown technician), keeps the newest version of K4
   and gives T1's May and June values by hand.
2. On the tier S demo (generated with --no-bad-rows, CSV with the GB18030 roster and offset timestamps):
   the pipeline (`python -m orchestration.cli run --no-demo`) and the floor agree on every row and column of
   kpi_technician_monthly (joined on technician and month, doubles within 1e-6) (about 3 minutes).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "handmade" / "landing"


def bench_module():
    spec = importlib.util.spec_from_file_location("bench_run", REPO / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_floor(data: Path) -> duckdb.DuckDBPyConnection:
    """floor.sql in an in-memory DuckDB with the data folder as working directory; the open connection."""
    bench = bench_module()
    bench.prepare_floor_input(data)
    con = duckdb.connect()
    cwd = Path.cwd()
    os.chdir(data)
    try:
        for statement in duckdb.extract_statements(bench.FLOOR_SQL.read_text()):
            con.execute(statement)
    finally:
        os.chdir(cwd)
    return con


def floor_row(con: duckdb.DuckDBPyConnection, technician: str, period: str, columns: str) -> tuple:
    rows = con.execute(
        f"select {columns} from kpi_technician_monthly where technician_id = ? and period_label = ?",
        [technician, period],
    ).fetchall()
    assert len(rows) == 1, rows
    return rows[0]


def test_floor_on_handmade_fixture_by_hand(tmp_path: Path):
    data = tmp_path / "floor"
    shutil.copytree(FIXTURE, data / "landing")
    con = run_floor(data)
    t1_may = floor_row(
        con,
        "T1",
        "2026-05",
        "csat, csat_n, customer_rating, nps, nps_n, service_attitude, technical_level, "
        "avg_handling_time_hours, avg_handling_time_n, mttr_hours, mttr_n, "
        "first_response_time_hours, first_response_time_n, sla_attainment, first_time_fix_rate, "
        "reopen_rate, complaint_acceptance_time_hours, complaint_acceptance_time_n, "
        "problem_resolution_rate, complaint_rate, supervisor_review, team_id",
    )
    # the expected values of tests/test_pipeline.py::test_technician_month_kpis_by_hand (R9 rejected: 3 responses)
    assert t1_may == pytest.approx(
        (
            2 / 3,
            3,
            4.0,
            0.0,
            3,
            13 / 3,
            4.0,
            20 / 3,
            3,
            5.0,
            2,
            2.25 / 4,
            4,
            2 / 3,
            0.5,
            1 / 3,
            1.5,
            2,
            0.5,
            200 / 3,
            4.5,
            "TA",
        )
    )
    # K4: the newer version (resolved 2026-06-01, 288 h, 72 business hours) wins; K8 12 h / 9 business hours
    t1_jun = floor_row(
        con,
        "T1",
        "2026-06",
        "avg_handling_time_hours, avg_handling_time_business_hours, avg_handling_time_n, sla_attainment",
    )
    assert t1_jun == pytest.approx((150.0, (72 + 9) / 2, 2, 0.5))
    # KX (unknown technician T9) is not counted anywhere
    assert con.execute(
        "select count(*) from kpi_technician_monthly where technician_id not in ('T1', 'T2', 'T3')"
    ).fetchone() == (0,)


def test_floor_fails_loudly_without_its_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    data = tmp_path / "floor"
    shutil.copytree(FIXTURE, data / "landing")
    bench = bench_module()
    con = duckdb.connect()
    monkeypatch.chdir(data)  # no floor_input/: the organisation's clock (its first input) cannot be read
    with pytest.raises(duckdb.IOException, match="floor_input/organisation.csv"):
        for statement in duckdb.extract_statements(bench.FLOOR_SQL.read_text()):
            con.execute(statement)


@pytest.mark.slow
def test_floor_equals_pipeline_on_tier_s_demo(tmp_path: Path):
    data = tmp_path / "demo"
    env = {
        **os.environ,
        "SERVICESCORE_DATA_DIR": str(data),
        "DAGSTER_HOME": str(data / "dagster_home"),
        "PYTHONPATH": str(REPO),
    }
    subprocess.run(
        [
            sys.executable,
            "-m",
            "demo.generator",
            "--tier",
            "S",
            "--landing",
            str(data / "landing"),
            "--seed",
            "42",
            "--no-bad-rows",
        ],
        check=True,
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    pipeline = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "run", "--no-demo"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert pipeline.returncode == 0, pipeline.stdout[-3000:] + pipeline.stderr[-3000:]

    con = run_floor(data)
    described = con.execute("describe kpi_technician_monthly").fetchall()
    con.execute(f"attach '{data / 'warehouse.duckdb'}' as warehouse (read_only)")
    mart_columns = {r[0] for r in con.execute("describe warehouse.marts.kpi_technician_monthly").fetchall()}
    assert {c for c, *_ in described} <= mart_columns, {c for c, *_ in described} - mart_columns
    n_floor = con.execute("select count(*) from kpi_technician_monthly").fetchone()[0]
    n_mart = con.execute("select count(*) from warehouse.marts.kpi_technician_monthly").fetchone()[0]
    assert n_floor == n_mart and n_floor > 200  # 40 technicians x 6 months, minus hires and the leaver
    # one row per (technician, month) on both sides; doubles equal within 1e-6 (summation order differs)
    differs = " or ".join(
        f"abs(f.{c} - m.{c}) > 1e-6 or ((f.{c} is null) <> (m.{c} is null))"
        if t == "DOUBLE"
        else f"f.{c} is distinct from m.{c}"
        for c, t, *_ in described
    )
    mismatches = con.execute(
        "select f.technician_id, f.period_label, m.technician_id, m.period_label "
        "from kpi_technician_monthly as f full join warehouse.marts.kpi_technician_monthly as m "
        "on f.technician_id = m.technician_id and f.period_start = m.period_start "
        f"where f.technician_id is null or m.technician_id is null or {differs}"
    ).fetchall()
    assert mismatches == [], mismatches[:5]
    # the comparison covers real values: every indicator has values in some row
    assert (
        con.execute(
            "select count(*) from kpi_technician_monthly where avg_handling_time_business_hours "
            "is not null and complaint_acceptance_time_business_hours is not null and nps is not null "
            "and supervisor_review is not null"
        ).fetchone()[0]
        > 100
    )


def _phase(wall: float, rss_gib: float, stages: dict[str, float] | None = None) -> dict:
    bench = bench_module()
    out = {"wall_s": wall, "exit_code": 0, "peak_rss_bytes": int(rss_gib * 2**30)}
    if stages is not None:
        out["stages"] = {s: stages.get(s, 0.0) for s in bench.STAGES}
        out["steps"], out["dbt_nodes"] = {}, {"test.x": 4.0, "model.y": 9.0}
    return out


def test_report_figures_medians_and_goals_by_hand():
    """Two repeats: the medians, spreads, ratios and goal verdicts of the report, worked out by hand."""
    bench = bench_module()
    reps = [
        {
            "full": _phase(130.0, 2.0, {"ingestion": 30, "dbt": 60, "checks": 10, "publication": 20}),
            "floor": _phase(40.0, 0.5),
            "nightly": _phase(13.0, 1.0, {"ingestion": 2, "dbt": 6, "checks": 1, "publication": 2}),
        },
        {
            "full": _phase(150.0, 3.0, {"ingestion": 30, "dbt": 70, "checks": 15, "publication": 20}),
            "floor": _phase(60.0, 0.5),
            "nightly": _phase(30.0, 4.5, {"ingestion": 2, "dbt": 20, "checks": 2, "publication": 3}),
        },
    ]
    summary = bench.summarize(reps)
    assert summary["full.total_s"] == {"median": 140.0, "min": 130.0, "max": 150.0}
    # start-up & other = wall - stages: 130 - 120 = 10 and 150 - 135 = 15
    assert summary["full.other_s"] == {"median": 12.5, "min": 10.0, "max": 15.0}
    # full / floor: 130/40 = 3.25 and 150/60 = 2.5; (full - 30 s) / floor: 2.5 and 2.0
    assert summary["ratio.full_over_floor"] == {"median": 2.875, "min": 2.5, "max": 3.25}
    assert summary["goal.full_minus_30s_over_floor"] == {"median": 2.25, "min": 2.0, "max": 2.5}
    # nightly / full: 0.1 and 0.2; checks share: 10/130 and 15/150
    assert summary["ratio.nightly_over_full"]["median"] == pytest.approx(0.15)
    assert summary["full.checks_share"]["median"] == pytest.approx((10 / 130 + 0.1) / 2)
    assert summary["full.dbt_tests_s"]["median"] == 4.0
    md = bench.markdown(
        "L", summary, reps, {"when": "now", "landing_summary": "x", "load": "1/1", "memory_limit": "3GB", "threads": 2}
    )
    assert "| (full − 30 s) / floor | 2.25 (2.00-2.50) | ≤ 2 | missed |" in md
    assert "| nightly / full | 15.0% (10.0%-20.0%) | ≤ 15 % | met |" in md
    assert "| checks / full | 8.8% (7.7%-10.0%) | ≤ 10 % | met |" in md
    # peak RSS: the larger of full and nightly per statistic: median max(2.5, 2.75) = 2.75, max 4.5
    assert "| peak RSS max(full, nightly) (GiB) | 2.75 (2.00-4.50) | ≤ 4 | met |" in md
