"""The whole graph, materialized in process on a small hand-made data set (tests/fixtures/handmade),
with every expected number worked out by hand below.

The data set: technicians T1 (team TA), T2 (team TA, moves to TB on 2026-06-01), T3 (TB, leaves 2026-06-30);
tickets K1..K9 in May/June 2026 (K4 arrives twice: in progress in May, resolved on 2026-06-01 in June's file);
one ticket with an unknown technician (KX) and one survey with overall_score 9 (R9) are rejected.
May 2026 has no public holiday after the 5th; durations below are in hours.
"""

import os
import shutil
from pathlib import Path

import duckdb
import pytest

from ingestion.paths import DBT_PROJECT_DIR, DataDir
from tests.cli_runs import FIXTURE, pipeline_in_process, q


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory):
    with pipeline_in_process(tmp_path_factory.mktemp("pipeline") / "data") as run:
        yield run


def kpi(paths: DataDir, table: str, key: str, period: str, columns: str) -> tuple:
    rows = q(paths.warehouse, f"select {columns} from marts.{table} where {key} and period_label = ?", [period])
    assert len(rows) == 1, rows
    return rows[0]


@pytest.mark.slow
def test_run_succeeds_and_summary_counts_rows(pipeline):
    paths, results, text, ok = pipeline
    assert ok, text
    assert [r.dagster_run.job_name for r in results] == ["ingest_feeds", "build_and_publish"]
    lines = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line[:1].isalpha() and "  " in line}
    assert lines["tickets"][:2] == ["10", "1"]  # 11 ticket rows landed: K4 twice, KX unknown technician
    assert lines["surveys"][:2] == ["6", "1"]  # R9 has overall_score 9
    assert "publication 1:" in text and str(paths.serving) in text


@pytest.mark.slow
def test_every_landed_row_is_loaded_or_rejected(pipeline):
    paths = pipeline[0]
    loaded = dict(q(paths.warehouse, "select feed, sum(rows_loaded) from raw.load_log group by feed"))
    rejected = dict(q(paths.warehouse, "select feed, count(*) from raw.rejected_rows group by feed"))
    landed = {}
    for f in FIXTURE.glob("*/*.csv"):
        landed[f.parent.name] = landed.get(f.parent.name, 0) + len(f.read_text().strip().splitlines()) - 1
    for feed, n in landed.items():
        assert loaded.get(feed, 0) + rejected.get(feed, 0) == n, feed
    assert q(paths.warehouse, "select feed, rule from raw.rejected_rows order by feed") == [
        ("surveys", "range:overall_score"),
        ("tickets", "reference:technician_id"),
    ]


@pytest.mark.slow
def test_technician_month_kpis_by_hand(pipeline):
    paths = pipeline[0]
    t1_may = kpi(
        paths,
        "kpi_technician_monthly",
        "technician_id = 'T1'",
        "2026-05",
        "csat, csat_n, customer_rating, nps, nps_n, service_attitude, technical_level, "
        "avg_handling_time_hours, avg_handling_time_n, mttr_hours, mttr_n, "
        "first_response_time_hours, first_response_time_n, sla_attainment, first_time_fix_rate, "
        "reopen_rate, complaint_acceptance_time_hours, complaint_acceptance_time_n, "
        "problem_resolution_rate, complaint_rate, supervisor_review, team_id",
    )
    expected = (
        2 / 3,
        3,  # R1 5 and R3 4 satisfied, R2 3 not
        4.0,  # (5 + 3 + 4) / 3
        0.0,
        3,  # one promoter (10), one passive (7), one detractor (6)
        13 / 3,
        4.0,  # attitude (5 + 4 + 4) / 3, technical (4 + 3 + 5) / 3
        20 / 3,
        3,  # K1 4 h, K2 10 h, K3 6 h resolved in May
        5.0,
        2,  # repairs K1 4 h and K3 6 h
        2.25 / 4,
        4,  # K1 0.5, K2 1, K3 0.25, K4 0.5 (created in May)
        2 / 3,  # K3 (P1, 4 calendar hours) took 6 h: breached
        0.5,  # K1 fixed first time, K3 not
        1 / 3,  # K2 reopened
        1.5,
        2,  # CP1 2 h, CP2 1 h
        0.5,  # CP1 resolved and confirmed; CP2 not resolved
        200 / 3,  # 2 complaints per 3 resolved tickets, per 100
        4.5,
        "TA",
    )
    assert t1_may == pytest.approx(expected)


@pytest.mark.slow
def test_newest_version_wins_and_business_hours(pipeline):
    paths = pipeline[0]
    # K4 resolved 2026-06-01 10:00 after opening 2026-05-20 10:00: 288 calendar hours; business hours on the
    # 09:00-18:00 day: 8 (Wed May 20 from 10:00) + 18 (21-22) + 45 (25-29) + 1 (Mon June 1) = 72, so its
    # P2 SLA (8 business hours) is breached
    t1_jun = kpi(
        paths,
        "kpi_technician_monthly",
        "technician_id = 'T1'",
        "2026-06",
        "avg_handling_time_hours, avg_handling_time_business_hours, avg_handling_time_n, sla_attainment",
    )
    assert t1_jun == pytest.approx((150.0, (72 + 9) / 2, 2, 0.5))  # K8: 12 h, 9 business hours (09:00-21:00)


@pytest.mark.slow
def test_quarter_is_recomputed_from_facts_not_averaged(pipeline):
    paths = pipeline[0]
    csat, csat_n, aht = kpi(
        paths, "kpi_technician_quarterly", "technician_id = 'T1'", "2026-Q2", "csat, csat_n, avg_handling_time_hours"
    )
    assert (csat, csat_n) == (0.75, 4)  # 3 of 4 responses; the mean of the monthly 2/3 and 1.0 would be 0.833
    assert aht == pytest.approx((4 + 10 + 6 + 12 + 288) / 5)


@pytest.mark.slow
def test_team_values_come_from_the_teams_facts_and_follow_the_move(pipeline):
    paths = pipeline[0]
    # May: T2 was still in TA. CSAT over the team's 4 responses = 2/4, not the mean of T1 2/3 and T2 0
    assert kpi(
        paths, "kpi_team_monthly", "team_id = 'TA'", "2026-05", "csat, csat_n, avg_handling_time_hours"
    ) == pytest.approx((0.5, 4, 6.0))
    # June: T2 moved to TB; TB = K7 (T2) 3 h and K9 (T3) 6 h
    assert kpi(
        paths, "kpi_team_monthly", "team_id = 'TB'", "2026-06", "avg_handling_time_hours, avg_handling_time_n"
    ) == pytest.approx((4.5, 2))
    assert kpi(paths, "kpi_technician_monthly", "technician_id = 'T2'", "2026-06", "team_id") == ("TB",)


@pytest.mark.slow
def test_serving_file_opens_read_only_with_marts_and_publications(pipeline):
    paths = pipeline[0]
    assert q(paths.serving, "select publication_id from publications") == [(1,)]
    got = q(
        paths.serving, "select csat from kpi_technician_monthly where technician_id = 'T1' and period_label = '2026-05'"
    )
    assert got == [(pytest.approx(2 / 3),)]
    tables = {r[0] for r in q(paths.serving, "select table_name from duckdb_tables() where schema_name = 'main'")}
    assert {"publications", "dim_customers", "fct_service_tickets"} <= tables
    # personal data never reaches serving unmasked
    names = q(paths.serving, "select * from dim_customers")
    assert not any("陈一" in str(v) or "13800000001" in str(v) for row in names for v in row)


@pytest.mark.slow
def test_serving_evidence_view_equals_the_warehouse_evidence(pipeline):
    """appraisal_evidence is a view in both files (orchestration/publication/evidence.py renders the dbt rules over
    serving's own facts and current breakdown): the same rows, and T1's May handling time lists its tickets."""
    paths = pipeline[0]
    sql = "select * from {} order by evidence_id"
    served = q(paths.serving, sql.format("appraisal_evidence"))
    built = q(paths.warehouse, sql.format("marts.appraisal_evidence"))
    assert served == built and len(served) > 0
    views = {r[0] for r in q(paths.serving, "select view_name from duckdb_views() where not internal")}
    assert "appraisal_evidence" in views
    may = q(
        paths.serving,
        "select source_id from appraisal_evidence where technician_id = 'T1' "
        "and period_label = '2026-05' and indicator_code = 'avg_handling_time' order by source_id",
    )
    resolved = q(
        paths.warehouse,
        "select ticket_id from marts.fct_service_tickets where technician_id = 'T1' "
        "and is_resolved and resolved_date between '2026-05-01' and '2026-05-31' order by ticket_id",
    )
    assert may == resolved and len(may) > 0


def test_definitions_load_with_the_expected_asset_keys():
    from dagster import AssetKey

    from orchestration.definitions import defs

    keys = set(defs.resolve_all_asset_keys())
    feeds = {"tickets", "complaints", "surveys", "technicians", "customers", "purchases", "products"}
    assert {AssetKey(["raw", f]) for f in feeds} <= keys
    assert {
        AssetKey(["kpi_technician_monthly"]),
        AssetKey(["appraisal_scores"]),
        AssetKey(["serving", "publication"]),
    } <= keys
    graph = defs.resolve_asset_graph()
    # lineage: the tickets feed reaches the published mart through the dbt models
    upstream = graph.get(AssetKey(["serving", "publication"])).parent_keys
    assert AssetKey(["kpi_technician_monthly"]) in upstream
    assert AssetKey(["raw", "tickets"]) in graph.get(AssetKey(["stg_tickets__tickets"])).parent_keys


@pytest.mark.dbt
def test_dbt_resource_is_dagster_dbts_own_and_runs_this_venvs_dbt_core():
    """The dbt resource is dagster-dbt's DbtCliResource as it comes (no overridden members) and runs the dbt of
    this virtualenv: the pinned dbt-core 1.x, not the fusion engine, whatever `dbt` is first on PATH."""
    import importlib.metadata
    import re
    import subprocess
    import sys
    from pathlib import Path

    from dagster_dbt import DbtCliResource

    from orchestration.transform import dbt_resource

    dbt = dbt_resource()
    assert type(dbt) is DbtCliResource
    assert Path(dbt.dbt_executable) == Path(sys.executable).parent / "dbt"
    out = subprocess.run([dbt.dbt_executable, "--version"], capture_output=True, text=True, check=True).stdout
    core = re.search(r"Core:\s*- installed:\s*(\d+\.\d+\.\d+)", out)
    assert core, out
    assert core.group(1) == importlib.metadata.version("dbt-core")
    assert core.group(1).startswith("1.")


@pytest.mark.slow
def test_dbt_log_file_keeps_results_not_debug_lines(pipeline, monkeypatch: pytest.MonkeyPatch):
    """The dbt step's log file is at level info (orchestration.transform.dbt_log_env): every node's result is in
    it, dbt's debug lines (each SQL statement) are not; an operator can ask for debug."""
    import json

    from orchestration.transform import DBT_PROJECT_DIR, dbt_log_env

    results = pipeline[1]
    build = [r for r in results if any(e.step_key == "servicescore_dbt" for e in r.all_events if e.step_key)]
    assert build, "no run with a dbt step"
    logs = sorted(DBT_PROJECT_DIR.glob(f"target/servicescore_dbt-{build[-1].run_id[:7]}-*/dbt.log"))
    assert len(logs) == 1, logs
    lines = [json.loads(line)["info"] for line in logs[0].read_text().splitlines() if line.strip()]
    levels = {line["level"] for line in lines}
    assert "debug" not in levels
    assert sum(line["name"] == "LogModelResult" for line in lines) >= 30
    assert sum(line["name"] == "LogTestResult" for line in lines) >= 100

    monkeypatch.delenv("DBT_LOG_LEVEL_FILE", raising=False)
    assert dbt_log_env() == {"DBT_LOG_LEVEL_FILE": "info"}
    monkeypatch.setenv("DBT_LOG_LEVEL_FILE", "debug")
    assert dbt_log_env() == {"DBT_LOG_LEVEL_FILE": "debug"}


@pytest.mark.slow
def test_failing_blocking_check_publishes_nothing(pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A bad mart row: the blocking check fails, publish does not run, serving.duckdb is byte-for-byte unchanged."""
    from dagster import AssetCheckKey, AssetKey, AssetSelection, DagsterInstance, define_asset_job

    from orchestration.definitions import defs
    from orchestration.publish import PUBLICATION_KEY

    src = pipeline[0]
    paths = DataDir(tmp_path / "copy").ensure()
    for name in ("warehouse.duckdb", "serving.duckdb"):
        shutil.copy2(src.root / name, paths.root / name)
    monkeypatch.setenv("SERVICESCORE_DATA_DIR", str(paths.root))
    monkeypatch.setenv("DAGSTER_HOME", str(paths.dagster_home))
    con = duckdb.connect(str(paths.warehouse))
    con.execute(
        "update marts.kpi_technician_monthly set csat = 7 where technician_id = 'T1' and period_label = '2026-05'"
    )
    # as a run whose change window recomputed May records it: the mart suites validate the periods rebuilt since
    # their last passing validation (an edit outside dbt is not seen, docs/operations.md section 6)
    con.execute(
        "insert into audit.change_windows values ('edit', current_timestamp, null, false, date '2026-05-01', false, "
        "current_timestamp)"
    )
    con.close()
    before = paths.serving.read_bytes()
    kpi_key = AssetKey(["kpi_technician_monthly"])
    gx_check = AssetCheckKey(kpi_key, "gx_kpi_technician_monthly")
    job = define_asset_job(
        "gate_only", selection=AssetSelection.assets(PUBLICATION_KEY) | AssetSelection.checks(gx_check)
    )
    resolved = job.resolve(asset_graph=defs.resolve_asset_graph())
    from orchestration.cli import range_tags

    publish_only = define_asset_job("publish_only", selection=AssetSelection.assets(PUBLICATION_KEY))
    with DagsterInstance.ephemeral() as instance:
        result = resolved.execute_in_process(
            instance=instance, raise_on_error=False, tags=range_tags("2026-05-01", "2026-06-01")
        )
        # a later run that only publishes is refused too: the gate holds across runs
        later = publish_only.resolve(asset_graph=defs.resolve_asset_graph()).execute_in_process(
            instance=instance, raise_on_error=False, tags=range_tags("2026-05-01", "2026-06-01")
        )
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert any(e.asset_key == kpi_key for e in failed)
    assert not [
        e
        for e in result.get_asset_materialization_events()
        if e.event_specific_data.materialization.asset_key == PUBLICATION_KEY
    ]
    assert not later.success
    failure = [ev for ev in later.all_events if ev.event_type_value == "STEP_FAILURE"][0]
    assert "kpi_technician_monthly:gx_kpi_technician_monthly failed in run " + result.run_id in str(
        failure.event_specific_data.error.message
    ) + str(failure.event_specific_data.error.cause and failure.event_specific_data.error.cause.message)
    assert paths.serving.read_bytes() == before


@pytest.mark.slow
def test_publication_audit_trail(pipeline):
    paths = pipeline[0]
    audit = q(paths.serving, "select run_id, code_version, audit from publications where publication_id = 1")[0]
    import json

    details = json.loads(audit[2])
    assert details["run_id"] == audit[0] == pipeline[1][-1].run_id
    assert len(details["dbt_manifest_sha256"]) == 64 and len(details["indicator_settings_sha256"]) == 64
    # the publication vouches for the dbt tests of its run (the next build may narrow whole-history tests)
    from orchestration.transform import dbt_project_digest

    assert details["dbt_build_in_run"] is True and details["dbt_project_sha256"] == dbt_project_digest()
    assert details["change_window_mark"]["rows"] > 0
    files = sorted(str(p.relative_to(FIXTURE)) for p in FIXTURE.glob("*/*.csv"))
    inputs = q(
        paths.serving, "select source_file, file_hash from publication_inputs where publication_id = 1 order by 1"
    )
    assert [f for f, _ in inputs] == files
    import hashlib

    assert (
        dict(inputs)["tickets/2026-05-31.csv"]
        == hashlib.sha256((FIXTURE / "tickets" / "2026-05-31.csv").read_bytes()).hexdigest()
    )
    checks = dict(q(paths.serving, "select suite, passed from publication_checks where publication_id = 1"))
    assert checks["kpi_technician_monthly"] is True and checks["appraisal_scores"] is True
    assert q(paths.serving, "select count(*) > 0 from quality_validation_results") == [(True,)]


def last_window(paths: DataDir) -> tuple:
    """The latest recorded change window: (full, complete, [months] or [None])."""
    return q(
        paths.warehouse,
        "select bool_or(is_full_build), bool_and(is_complete), list(cast(month_start as varchar) order by month_start) "
        "from audit.change_windows group by built_at order by built_at desc limit 1",
    )[0]


@pytest.mark.slow
def test_rerun_publishes_nothing_new_and_late_data_is_a_restatement(pipeline):
    """Runs last: it adds data to the shared data folder."""
    paths = pipeline[0]
    from orchestration.cli import run_pipeline, summarize

    text, ok = summarize(run_pipeline(paths))
    assert ok, text
    assert "nothing changed, no new version" in text
    assert q(paths.serving, "select count(*) from publications") == [(1,)]
    # the rerun's change window started from the previous (complete) run: no fact changed since, so it holds the
    # run's own months only (the data's months, May and June), not a full window
    assert last_window(paths) == (False, True, ["2026-05-01", "2026-06-01"])
    # a late survey for May arrives in a file dated July: T1's May CSAT goes from 2/3 to 3/4
    late = paths.landing / "surveys" / "2026-07-02.csv"
    header = (FIXTURE / "surveys" / "2026-05-31.csv").read_text().splitlines()[0]
    late.write_text(header + "\nR7,K2,T1,C1,2026-05-12 21:00:00,2026-05-31 10:00:00,5,5,5,5,9,补评\n")
    results = run_pipeline(paths, months=("2026-05-01", "2026-07-01"))
    text, ok = summarize(results)
    assert ok, text
    # dbt kept the partial parse of this data folder's previous build (same profile; the month window goes by
    # environment, not --vars): no full parse of the project
    from orchestration.transform import PARTIAL_PARSE, PERIOD_ENV

    assert (paths.root / "dbt" / PARTIAL_PARSE).is_file()
    assert not set(PERIOD_ENV) & set(os.environ)  # the run's window does not leak into the next dbt of the process
    # this run's dbt step (its target folder is named after the run: other tests may run dbt at the same time)
    build_run = results[-1].run_id
    newest = next((DBT_PROJECT_DIR / "target").glob(f"servicescore_dbt-{build_run[:7]}-*/dbt.log"))
    log = "".join(f.read_text() for f in newest.parent.glob("dbt.log*"))  # dbt rotates its log
    assert "Running with dbt" in log and "Unable to do partial parsing" not in log
    # the build after a publication narrowed the evidence test to the months recomputed since (May: the late
    # survey; the window's June), and the window variable did not leak either
    from orchestration.transform import VERIFIED_BUILD_ENV

    assert VERIFIED_BUILD_ENV not in os.environ
    evidence_sql = next(newest.parent.glob("compiled/**/assert_indicator_evidence_matches_sample_sizes.sql"))
    assert "where activity_date >= cast('2026-05-01' as date)" in evidence_sql.read_text()
    # one change window for the run: May (the late survey) and the run's months (May to July)
    assert last_window(paths) == (False, True, ["2026-05-01", "2026-06-01", "2026-07-01"])
    versions = dict(q(paths.serving, "select period_label, max(version) from publication_periods group by 1"))
    assert versions["2026-05"] == 2 and versions["2026-06"] == 1
    assert q(
        paths.serving, "select is_restatement from publication_periods where period_label = '2026-05' and version = 2"
    ) == [(True,)]
    # the current view shows version 2; version 1 stays queryable
    current = q(
        paths.serving,
        "select csat, csat_n from kpi_technician_monthly where technician_id = 'T1' and period_label = '2026-05'",
    )
    assert current == [(0.75, 4)]
    old = q(
        paths.serving,
        "select csat from history.kpi_technician_monthly where technician_id = 'T1' "
        "and period_label = '2026-05' and _version = 1",
    )
    assert old == [(pytest.approx(2 / 3),)]
