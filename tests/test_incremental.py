"""Incremental dbt builds give the same warehouse as a full refresh, and touch only the periods they must.

Day 1 (loaded, then `dbt build`): the hand-made landing set of tests/fixtures/handmade (May and June 2026;
T2 moves from TA to TB on 2026-06-01) plus a December 2025 ticket K40 with its survey, and K10 (T1, created
Sat 20 Jun 2026, still in progress).
Day 2 (2026-07-01 files, loaded, then an incremental `dbt build`):
  * K10 resolved on 1 Jul 10:00 (an update of a day-1 record: it moves to July's resolution indicators),
  * K11 (T2) created and resolved on 1 Jul, survey R7 for K10 and complaint CP3 on 1 Jul,
  * K12: a late ticket of May 2026 (two months back), resolved the same day,
  * a roster change: T1 moves to team TB from 2026-06-15 (retroactive), so K10 (created 20 Jun) changes team
    while K8 (3 Jun) stays in TA; T1's team at the end of June and July becomes TB.
The months this must recompute: May (K12), June (T1's move, K10's creation), July (new data) -> quarters
2026-Q2 and Q3 and the year 2026; December 2025, 2025-Q4 and 2025 stay untouched.
A second data folder loads the same files at once and builds with --full-refresh: every mart must be equal.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import date
from pathlib import Path

import duckdb
import pytest

from ingestion.contracts import FEEDS
from ingestion.loader import load_feed
from ingestion.paths import DBT_PROJECT_DIR, REPO_ROOT
from ingestion.work_calendar import write_work_calendar
from orchestration.transform import dbt_window_env

DBT = REPO_ROOT / ".venv" / "bin" / "dbt"
FIXTURE = Path(__file__).parent / "fixtures" / "handmade" / "landing"

TICKET_HEADER = ("ticket_id,created_at,first_response_at,resolved_at,closed_at,updated_at,status,service_type,"
                 "priority,channel,technician_id,customer_id,product_id,onsite_visits,first_time_fix,reopened_count")
SURVEY_HEADER = ("response_id,ticket_id,technician_id,customer_id,sent_at,responded_at,overall_score,attitude_score,"
                 "technical_score,timeliness_score,nps,comment")
COMPLAINT_HEADER = ("complaint_id,received_at,accepted_at,resolved_at,updated_at,ticket_id,customer_id,technician_id,"
                    "category,severity,status,resolution_confirmed")
TECHNICIAN_HEADER = ("technician_id,name,team_id,team_name,region,level,hire_date,leave_date,manager_id,"
                     "valid_from,updated_at")

DAY_1_EXTRA = {
    "tickets/2025-12-31.csv": [
        TICKET_HEADER,
        "K40,2025-12-10 09:00:00,2025-12-10 09:30:00,2025-12-10 15:00:00,,2025-12-10 15:00:00,resolved,repair,"
        "P2,phone,T1,C1,P1,1,true,0",
    ],
    "surveys/2025-12-31.csv": [
        SURVEY_HEADER,
        "R40,K40,T1,C1,2025-12-10 16:00:00,2025-12-11 10:00:00,5,5,5,5,10,",
    ],
    "tickets/2026-06-30_open.csv": [
        TICKET_HEADER,
        "K10,2026-06-20 09:00:00,2026-06-20 10:00:00,,,2026-06-20 10:00:00,in_progress,repair,P3,app,T1,C2,P2,1,,0",
        "K13,2026-06-10 09:00:00,2026-06-10 09:20:00,,,2026-06-10 09:20:00,in_progress,repair,P3,app,T2,C2,P2,1,,0",
    ],
}

DAY_2 = {
    "tickets/2026-07-01.csv": [
        TICKET_HEADER,
        "K10,2026-06-20 09:00:00,2026-06-20 10:00:00,2026-07-01 10:00:00,,2026-07-01 10:00:00,resolved,repair,"
        "P3,app,T1,C2,P2,2,false,0",
        "K11,2026-07-01 09:00:00,2026-07-01 09:10:00,2026-07-01 11:00:00,,2026-07-01 11:00:00,resolved,repair,"
        "P2,phone,T2,C1,P1,1,true,0",
        "K12,2026-05-25 09:00:00,2026-05-25 09:30:00,2026-05-25 17:00:00,,2026-05-25 17:00:00,resolved,maintenance,"
        "P3,web,T1,C1,P1,1,,1",
        # open since June (T2, no roster change): resolving it changes July, not its created month
        "K13,2026-06-10 09:00:00,2026-06-10 09:20:00,2026-07-01 16:00:00,,2026-07-01 16:00:00,resolved,repair,"
        "P3,app,T2,C2,P2,1,true,0",
    ],
    "surveys/2026-07-01.csv": [
        SURVEY_HEADER,
        "R7,K10,T1,C2,2026-07-01 11:00:00,2026-07-01 15:00:00,2,2,3,2,4,",
    ],
    "complaints/2026-07-01.csv": [
        COMPLAINT_HEADER,
        "CP3,2026-07-01 12:00:00,2026-07-01 14:00:00,,2026-07-01 14:00:00,K10,C2,T1,timeliness,high,accepted,",
    ],
    "technicians/2026-07-01_move.csv": [
        TECHNICIAN_HEADER,
        "T1,张三,TB,华北技术支持组,华北,senior,2025-01-01,,M2,2026-06-15,2026-07-01 00:00:00",
    ],
}

MARTS = [
    "fct_service_tickets", "fct_survey_responses", "fct_complaints", "fct_supervisor_reviews",
    "kpi_technician_monthly", "kpi_technician_quarterly", "kpi_technician_annual",
    "kpi_team_monthly", "kpi_team_quarterly", "kpi_team_annual",
    "appraisal_scores", "appraisal_score_breakdown", "appraisal_evidence", "appraisal_reward_list",
    "appraisal_improvement_list",
]
INTERMEDIATE = ["int_indicator_values", "int_appraisal_roster", "int_appraisal_indicator_scores",
                "int_appraisal_composites", "int_appraisal_settings_by_period"]
PERIOD_MODELS = ["kpi_technician_monthly", "kpi_team_annual", "int_indicator_values", "appraisal_scores",
                 "appraisal_score_breakdown"]


def write_files(landing: Path, files: dict[str, list[str]]) -> None:
    for name, lines in files.items():
        path = landing / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def load_all(root: Path, run_id: str) -> None:
    """Every feed's new files (a file already loaded is skipped), then the working calendar."""
    warehouse = root / "warehouse.duckdb"
    for feed in FEEDS:
        load_feed(warehouse, root / "landing", feed, run_id, root / "work")
    con = duckdb.connect(str(warehouse))
    try:
        write_work_calendar(con, date(2025, 1, 1), date(2026, 12, 31))
    finally:
        con.close()


def run_dbt(root: Path, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "SERVICESCORE_DATA_DIR": str(root), "SERVICESCORE_PII_SALT": "servicescore",
           "DBT_TARGET_PATH": str(root / "dbt" / "target"), "DBT_LOG_PATH": str(root / "dbt" / "logs"),
           **dbt_window_env({}), **(extra_env or {})}
    result = subprocess.run(
        [str(DBT), *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return result


def last_build_months(db: Path, model: str) -> list[str | None]:
    """The months (ISO text; [None] for a build that recomputed none or all) of the model's latest build."""
    return q(db, f"""
        select list(cast(month_start as varchar)) from intermediate.int_incremental_build_log
        where model_name = '{model}'
            and built_at = (select max(built_at) from intermediate.int_incremental_build_log
                            where model_name = '{model}')
    """)[0][0]


def fixture_landing(landing: Path) -> None:
    shutil.copytree(FIXTURE, landing, dirs_exist_ok=True)
    write_files(landing, DAY_1_EXTRA)


def q(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory: pytest.TempPathFactory):
    incremental = tmp_path_factory.mktemp("incremental")
    full = tmp_path_factory.mktemp("full")
    # day 1, then day 2 incrementally
    fixture_landing(incremental / "landing")
    load_all(incremental, "day-1")
    run_dbt(incremental, "build")
    day_1_facts = q(incremental / "warehouse.duckdb",
                    "select ticket_id, _built_at from marts.fct_service_tickets order by ticket_id")
    day_1_created = q(incremental / "warehouse.duckdb",
                      "select ticket_id, _created_built_at from marts.fct_service_tickets order by ticket_id")
    write_files(incremental / "landing", DAY_2)
    load_all(incremental, "day-2")
    run_dbt(incremental, "build")
    # the same files at once, full refresh
    fixture_landing(full / "landing")
    write_files(full / "landing", DAY_2)
    load_all(full, "all")
    run_dbt(full, "build", "--full-refresh")
    return incremental, full, dict(day_1_facts), dict(day_1_created)


def _business_columns(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """Every column but the build bookkeeping (_loaded_at, _built_at, _replaced_*); doubles rounded."""
    parts = []
    for name, typ, *_ in con.execute(f"describe {table}").fetchall():
        if name.startswith("_"):
            continue
        parts.append(f"round({name}, 9) as {name}" if typ in ("DOUBLE", "FLOAT") else name)
    return ", ".join(parts)


def differences(incremental: Path, full: Path, table: str) -> tuple[int, int, int]:
    """(rows only in the incremental build, rows only in the full build, row count), as multisets."""
    con = duckdb.connect(str(incremental / "warehouse.duckdb"), read_only=True)
    try:
        con.execute(f"attach '{full / 'warehouse.duckdb'}' as full_build (read_only)")
        columns = _business_columns(con, table)
        schema, name = table.split(".")
        left = f"select {columns} from {table}"
        right = f"select {columns} from full_build.{schema}.{name}"
        only_left = con.execute(f"select count(*) from ({left} except all {right})").fetchone()[0]
        only_right = con.execute(f"select count(*) from ({right} except all {left})").fetchone()[0]
        count = con.execute(f"select count(*) from {table}").fetchone()[0]
        return only_left, only_right, count
    finally:
        con.close()


@pytest.mark.parametrize("table", [f"marts.{m}" for m in MARTS] + [f"intermediate.{m}" for m in INTERMEDIATE])
def test_incremental_build_equals_full_refresh(warehouses, table):
    incremental, full, *_ = warehouses
    only_incremental, only_full, count = differences(incremental, full, table)
    assert (only_incremental, only_full) == (0, 0), table
    assert count > 0 or table == "marts.appraisal_reward_list", table  # nobody reaches grade A here


def test_day_2_changes_are_in_the_facts(warehouses):
    db = warehouses[0] / "warehouse.duckdb"
    rows = q(db, """
        select ticket_id, team_id, is_resolved, cast(resolved_date as varchar), _replaced_resolved_date is null
        from marts.fct_service_tickets where ticket_id in ('K8', 'K10', 'K11', 'K12') order by ticket_id
    """)
    assert rows == [
        ("K10", "TB", True, "2026-07-01", True),  # resolved (was open), team after T1's move of 15 Jun
        ("K11", "TB", True, "2026-07-01", True),  # T2 is in TB since 1 Jun
        ("K12", "TA", True, "2026-05-25", True),  # late record of May, before T1's move
        ("K8", "TA", True, "2026-06-03", True),   # created before the move: stays in TA
    ]
    # K10 was open on day 1 (no resolved date): the version it replaced had no resolution month
    # T1's July: K10 resolved, R7 and CP3 received; the values themselves are compared with the full refresh
    july = q(db, """
        select team_id, avg_handling_time_n, csat_n, problem_resolution_rate_n
        from marts.kpi_technician_monthly where technician_id = 'T1' and period_label = '2026-07'
    """)
    assert july == [("TB", 1, 1, 1)]


def test_untouched_rows_keep_their_build(warehouses):
    incremental, _, day_1_built, day_1_created = warehouses
    db = incremental / "warehouse.duckdb"
    now = dict(q(db, "select ticket_id, _built_at from marts.fct_service_tickets"))
    rebuilt = sorted(t for t in now if day_1_built.get(t) != now[t])
    # new records, the resolved ones, and T1's tickets created from the move date on (K10 only)
    assert rebuilt == ["K10", "K11", "K12", "K13"]
    # what a ticket gives its created month (first response, technician, team) changed for the new records and
    # K10 (T1's team moved), not for K13: resolving it does not make the marts recompute June for it
    created = dict(q(db, "select ticket_id, _created_built_at from marts.fct_service_tickets"))
    assert sorted(t for t in created if day_1_created.get(t) != created[t]) == ["K10", "K11", "K12"]


def test_incremental_run_touched_only_the_expected_months(warehouses):
    db = warehouses[0] / "warehouse.duckdb"
    for model in PERIOD_MODELS:
        runs = q(db, f"""
            select built_at, bool_or(is_full_build), list(cast(month_start as varchar) order by month_start)
            from intermediate.int_incremental_build_log where model_name = '{model}'
            group by built_at order by built_at
        """)
        assert len(runs) == 2, (model, runs)
        assert runs[0][1] is True  # day 1: first (full) build
        assert runs[1][1] is False and runs[1][2] == ["2026-05-01", "2026-06-01", "2026-07-01"], (model, runs)
    # the 2025 periods were not recomputed: same rows as the full refresh, and the log says so
    assert q(db, "select count(*) from marts.kpi_technician_annual where period_label = '2025'") == [(1,)]


def test_rebuild_without_new_data_touches_nothing_and_vars_force_months(warehouses):
    incremental = warehouses[0]
    db = incremental / "warehouse.duckdb"
    before = q(db, "select ticket_id, _built_at from marts.fct_service_tickets order by ticket_id")
    # an overlap of 48 h re-derives every record (all were loaded minutes ago), but a row that comes out the
    # same keeps its _built_at, so no month is recomputed
    run_dbt(incremental, "build", "--select", "+appraisal_scores", "--vars", '{"incremental_overlap_hours": 48}')
    assert q(db, "select ticket_id, _built_at from marts.fct_service_tickets order by ticket_id") == before
    last = last_build_months(db, 'kpi_technician_monthly')
    assert last == [None]  # a build with nothing to recompute logs no month
    run_dbt(incremental, "build", "--select", "+appraisal_scores",
            "--vars", '{"period_from": "2025-12-01", "period_to": "2026-01-01"}')
    last = last_build_months(db, 'appraisal_scores')
    assert last == ["2025-12-01"]
    # the orchestration passes the window by environment (no --vars: they would cost dbt its partial parse)
    run_dbt(incremental, "build", "--select", "+appraisal_scores",
            extra_env=dbt_window_env({"period_from": "2026-01-01", "period_to": "2026-02-01"}))
    last = last_build_months(db, 'appraisal_scores')
    assert last == ["2026-01-01"]
    only_incremental, only_full, _ = differences(incremental, warehouses[1], "marts.appraisal_scores")
    assert (only_incremental, only_full) == (0, 0)
