"""Incremental dbt builds give the same warehouse as a full refresh, and touch only the periods they must.

Day 1 (loaded, then `dbt build`): the hand-made landing set of tests/fixtures/handmade (May and June 2026;
T2 moves from TA to TB on 2026-06-01) plus a December 2025 ticket K40 with its survey, K10 (T1, created
Sat 20 Jun 2026, still in progress), and customers C3 (ticket K14, T3, 5 Jun, and its survey R14), C4 (purchase
U4, warranty until 2026-12-31), C5 (U5, until 2028-01-15), C6 (no purchase) and C7 (U7, until 2028-06-30);
dim_customers as of 2026-06-30.
Day 2 (2026-07-01 files, loaded, then an incremental `dbt build`):
  * K10 resolved on 1 Jul 10:00 (an update of a day-1 record: it moves to July's resolution indicators),
  * K11 (T2) created and resolved on 1 Jul, survey R7 for K10 and a new version of complaint CP3 on 1 Jul
    (received in May from C1 before: it moves to July and to customer C2),
  * K12: a late ticket of May 2026 (two months back), resolved the same day,
  * a roster change: T1 moves to team TB from 2026-06-15 (retroactive), so K10 (created 20 Jun) changes team
    while K8 (3 Jun) stays in TA; T1's team at the end of June and July becomes TB,
  * K14 and R14 were C1's, not C3's (new versions): C3 is left with no service history at all,
  * purchase U7 was C3's, not C7's (nothing else names C7), C6 moves to Chongqing and becomes a business
    customer, and dim_customers is as of 2027-01-01: C4's warranty has ended (nothing else of C4 changed), C5
    changed in nothing but the date; C1 and C2 in nothing but their service history.
The months this must recompute: May (K12), June (T1's move, K10's creation), July (new data) -> quarters
2026-Q2 and Q3 and the year 2026; December 2025, 2025-Q4 and 2025 stay untouched.
A second data folder loads the same files at once and builds with --full-refresh (as of 2027-01-01): every mart
must be equal.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from ingestion.change_window import record_window
from ingestion.contracts import FEEDS
from ingestion.loader import load_feed
from ingestion.paths import DBT_PROJECT_DIR, REPO_ROOT
from ingestion.privacy import PseudonymKey, hmac_phone, write_pseudonyms
from ingestion.work_calendar import write_work_calendar
from orchestration.transform import PERIOD_ENV, change_window_env
from tests.cli_runs import TEST_PSEUDONYM_KEY

pytestmark = pytest.mark.dbt

DBT = REPO_ROOT / ".venv" / "bin" / "dbt"
FIXTURE = Path(__file__).parent / "fixtures" / "handmade" / "landing"

TICKET_HEADER = (
    "ticket_id,created_at,first_response_at,resolved_at,closed_at,updated_at,status,service_type,"
    "priority,channel,technician_id,customer_id,product_id,onsite_visits,first_time_fix,reopened_count"
)
SURVEY_HEADER = (
    "response_id,ticket_id,technician_id,customer_id,sent_at,responded_at,overall_score,attitude_score,"
    "technical_score,timeliness_score,nps,comment"
)
COMPLAINT_HEADER = (
    "complaint_id,received_at,accepted_at,resolved_at,updated_at,ticket_id,customer_id,technician_id,"
    "category,severity,status,resolution_confirmed"
)
CUSTOMER_HEADER = "customer_id,name,phone,city,segment,created_at,updated_at"
PURCHASE_HEADER = "purchase_id,customer_id,product_id,purchased_at,warranty_until,amount,updated_at"
TECHNICIAN_HEADER = (
    "technician_id,name,team_id,team_name,region,level,hire_date,leave_date,manager_id,valid_from,updated_at"
)

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
    "customers/2026-05-01_more.csv": [
        CUSTOMER_HEADER,
        "C3,吴三,13700000003,广州,consumer,2024-06-01 10:00:00,2026-05-01 00:00:00",
        "C4,郑四,13600000004,深圳,consumer,2024-07-01 10:00:00,2026-05-01 00:00:00",
        "C5,王五,13500000005,杭州,business,2024-08-01 10:00:00,2026-05-01 00:00:00",
        "C6,冯六,13400000006,成都,consumer,2024-09-01 10:00:00,2026-05-01 00:00:00",
        "C7,褚七,13300000007,南京,consumer,2024-10-01 10:00:00,2026-05-01 00:00:00",
    ],
    "purchases/2026-05-01_more.csv": [
        PURCHASE_HEADER,
        "U4,C4,P1,2025-12-01 10:00:00,2026-12-31,1999.00,2026-05-01 00:00:00",
        "U5,C5,P2,2026-01-15 10:00:00,2028-01-15,2999.00,2026-05-01 00:00:00",
        "U7,C7,P1,2026-06-30 10:00:00,2028-06-30,1599.00,2026-06-30 10:00:00",
    ],
    "tickets/2026-06-30_c3.csv": [
        TICKET_HEADER,
        "K14,2026-06-05 09:00:00,2026-06-05 09:30:00,2026-06-05 12:00:00,,2026-06-05 12:00:00,resolved,repair,"
        "P3,phone,T3,C3,P2,1,true,0",
    ],
    "surveys/2026-06-30_c3.csv": [
        SURVEY_HEADER,
        "R14,K14,T3,C3,2026-06-05 13:00:00,2026-06-06 10:00:00,3,3,3,3,7,",
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
        # the customer of K14 corrected from C3 to C1 (nothing else changes)
        "K14,2026-06-05 09:00:00,2026-06-05 09:30:00,2026-06-05 12:00:00,,2026-07-01 09:30:00,resolved,repair,"
        "P3,phone,T3,C1,P2,1,true,0",
    ],
    "surveys/2026-07-01.csv": [
        SURVEY_HEADER,
        "R7,K10,T1,C2,2026-07-01 11:00:00,2026-07-01 15:00:00,2,2,3,2,4,",
        "R14,K14,T3,C1,2026-06-05 13:00:00,2026-06-06 10:00:00,3,3,3,3,7,",  # later load wins: C1
    ],
    "complaints/2026-07-01.csv": [
        COMPLAINT_HEADER,
        "CP3,2026-07-01 12:00:00,2026-07-01 14:00:00,,2026-07-01 14:00:00,K10,C2,T1,timeliness,high,accepted,",
    ],
    "purchases/2026-07-01.csv": [
        PURCHASE_HEADER,
        "U7,C3,P1,2026-06-30 10:00:00,2028-06-30,1599.00,2026-07-01 00:00:00",
    ],
    "customers/2026-07-01.csv": [
        CUSTOMER_HEADER,
        "C6,冯六,13400000006,重庆,business,2024-09-01 10:00:00,2026-07-01 00:00:00",
    ],
    "technicians/2026-07-01_move.csv": [
        TECHNICIAN_HEADER,
        "T1,张三,TB,华北技术支持组,华北,senior,2025-01-01,,M2,2026-06-15,2026-07-01 00:00:00",
    ],
}

MARTS = [
    "fct_service_tickets",
    "fct_survey_responses",
    "fct_complaints",
    "fct_supervisor_reviews",
    "kpi_technician_monthly",
    "kpi_technician_quarterly",
    "kpi_technician_annual",
    "kpi_team_monthly",
    "kpi_team_quarterly",
    "kpi_team_annual",
    "appraisal_scores",
    "appraisal_score_breakdown",
    "appraisal_evidence",
    "appraisal_reward_list",
    "appraisal_improvement_list",
    "dim_customers",
]
INTERMEDIATE = [
    "int_indicator_values",
    "int_appraisal_roster",
    "int_appraisal_indicator_scores",
    "int_appraisal_composites",
    "int_appraisal_settings_by_period",
    "int_customer_service_history",
]
# the date dim_customers' warranty status is as of on day 1 and day 2 (the full refresh: day 2)
AS_OF_DAY_1 = ("--vars", "{as_of_date: '2026-06-30'}")
AS_OF_DAY_2 = ("--vars", "{as_of_date: '2027-01-01'}")
SERVICE_HISTORY = """
    select customer_id, tickets_count, cast(last_service_at as varchar), complaints_count, survey_responses_count,
        round(mean_satisfaction, 9)
    from {table} where customer_id in ('C1', 'C2', 'C3') order by customer_id
"""
CUSTOMER_ARCHIVE = """
    select customer_id, city, segment, purchases_count, cast(latest_warranty_until as varchar),
        active_warranties_count, warranty_status, cast(warranty_as_of_date as varchar)
    from marts.dim_customers order by customer_id
"""
PERIOD_MODELS = [
    "kpi_technician_monthly",
    "kpi_team_annual",
    "int_indicator_values",
    "appraisal_scores",
    "appraisal_score_breakdown",
]


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
        write_pseudonyms(con, TEST_PSEUDONYM_KEY)
    finally:
        con.close()


def run_dbt(
    root: Path, *args: str, extra_env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    """dbt as the orchestration runs it (orchestration/transform.py): the change window's instant from the
    warehouse's audit before the command, and after a successful build the window appended to the audit
    (complete unless the build selected part of the project). `check`: fail the test when dbt fails."""
    warehouse = root / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    try:
        window = change_window_env(con, {})
    finally:
        con.close()
    env = {
        **os.environ,
        "SERVICESCORE_DATA_DIR": str(root),
        "DBT_TARGET_PATH": str(root / "dbt" / "target"),
        "DBT_LOG_PATH": str(root / "dbt" / "logs"),
        **window,
        **(extra_env or {}),
    }
    started_at = datetime.now(UTC)
    result = subprocess.run(
        [str(DBT), *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0 or not check, result.stdout[-6000:] + result.stderr[-3000:]
    if args[0] == "build" and result.returncode == 0:
        con = duckdb.connect(str(warehouse))
        try:
            record_window(con, f"test-{started_at.timestamp()}", started_at, complete="--select" not in args)
        finally:
            con.close()
    return result


def last_window_months(db: Path) -> list[str | None]:
    """The months (ISO text; [None] for a run that recomputed none or all) of the latest recorded change window."""
    return q(
        db,
        """
        select list(cast(month_start as varchar) order by month_start) from audit.change_windows
        where built_at = (select max(built_at) from audit.change_windows)
    """,
    )[0][0]


def windows(db: Path) -> list[tuple]:
    """Every recorded change window, oldest first: (is_full_build, [months] or [None], is_complete)."""
    return q(
        db,
        """
        select bool_or(is_full_build), list(cast(month_start as varchar) order by month_start), bool_and(is_complete)
        from audit.change_windows group by built_at order by built_at
    """,
    )


def compiled(root: Path, model_path: str) -> str:
    """The SQL dbt last compiled for a model (models/<model_path>.sql)."""
    return (root / "dbt" / "target" / "compiled" / "servicescore" / "models" / f"{model_path}.sql").read_text()


CUSTOMER_MODELS = ("intermediate/customers/int_customer_service_history", "marts/core/dim_customers")


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
    run_dbt(incremental, "build", *AS_OF_DAY_1)
    day_1_sql = {model: compiled(incremental, model) for model in CUSTOMER_MODELS}
    day_1_facts = q(
        incremental / "warehouse.duckdb",
        "select ticket_id, _built_at from marts.fct_service_tickets order by ticket_id",
    )
    day_1_created = q(
        incremental / "warehouse.duckdb",
        "select ticket_id, _created_built_at from marts.fct_service_tickets order by ticket_id",
    )
    day_1_history = q(
        incremental / "warehouse.duckdb", SERVICE_HISTORY.format(table="intermediate.int_customer_service_history")
    )
    day_1_archive = q(incremental / "warehouse.duckdb", CUSTOMER_ARCHIVE)
    write_files(incremental / "landing", DAY_2)
    load_all(incremental, "day-2")
    run_dbt(incremental, "build", *AS_OF_DAY_2)
    day_2_sql = {model: compiled(incremental, model) for model in CUSTOMER_MODELS}
    # the same files at once, full refresh
    fixture_landing(full / "landing")
    write_files(full / "landing", DAY_2)
    load_all(full, "all")
    run_dbt(full, "build", "--full-refresh", *AS_OF_DAY_2)
    return (
        incremental,
        full,
        dict(day_1_facts),
        dict(day_1_created),
        (day_1_history, day_1_archive, (day_1_sql, day_2_sql)),
    )


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
    rows = q(
        db,
        """
        select ticket_id, team_id, is_resolved, cast(resolved_date as varchar), _replaced_resolved_date is null
        from marts.fct_service_tickets where ticket_id in ('K8', 'K10', 'K11', 'K12') order by ticket_id
    """,
    )
    assert rows == [
        ("K10", "TB", True, "2026-07-01", True),  # resolved (was open), team after T1's move of 15 Jun
        ("K11", "TB", True, "2026-07-01", True),  # T2 is in TB since 1 Jun
        ("K12", "TA", True, "2026-05-25", True),  # late record of May, before T1's move
        ("K8", "TA", True, "2026-06-03", True),  # created before the move: stays in TA
    ]
    # K10 was open on day 1 (no resolved date): the version it replaced had no resolution month
    # T1's July: K10 resolved, R7 and CP3 received; the values themselves are compared with the full refresh
    july = q(
        db,
        """
        select team_id, avg_handling_time_n, csat_n, problem_resolution_rate_n
        from marts.kpi_technician_monthly where technician_id = 'T1' and period_label = '2026-07'
    """,
    )
    assert july == [("TB", 1, 1, 1)]


def test_untouched_rows_keep_their_build(warehouses):
    incremental, _, day_1_built, day_1_created, _ = warehouses
    db = incremental / "warehouse.duckdb"
    now = dict(q(db, "select ticket_id, _built_at from marts.fct_service_tickets"))
    rebuilt = sorted(t for t in now if day_1_built.get(t) != now[t])
    # new records, the resolved ones, K14 (other customer), and T1's tickets created from the move date on (K10)
    assert rebuilt == ["K10", "K11", "K12", "K13", "K14"]
    # what a ticket gives its created month (first response, technician, team) changed for the new records and
    # K10 (T1's team moved), not for K13: resolving it does not make the marts recompute June for it; nor for
    # K14, whose customer alone changed
    created = dict(q(db, "select ticket_id, _created_built_at from marts.fct_service_tickets"))
    assert sorted(t for t in created if day_1_created.get(t) != created[t]) == ["K10", "K11", "K12"]


def test_moved_records_leave_their_old_customer(warehouses):
    """Service history per customer (hand-counted; KX and R9 are rejected at load):
    day 1  C1: tickets K1 K2 K5 K7 K8 K40, complaints CP1 CP2 CP3, surveys R1 5, R2 3, R4 2, R5 5, R6 4, R40 5
           C2: tickets K3 K4 K6 K9 K10 K13 (latest K10, 20 Jun 09:00), survey R3 4
           C3: ticket K14 (5 Jun 09:00), survey R14 3
    day 2  C1 gains K11 (1 Jul 09:00, its latest), K12, K14 and R14 3 -> 9 tickets, 7 surveys (27 / 7); loses CP3
           C2 gains CP3 and R7 2 -> 1 complaint, 2 surveys (3.0); C3 has nothing left: no history row, zeros in
           dim_customers."""
    incremental, *_, (day_1_history, _, (day_1_sql, day_2_sql)) = warehouses
    db = incremental / "warehouse.duckdb"
    assert day_1_history == [
        ("C1", 6, "2026-06-03 09:00:00", 3, 6, 4.0),
        ("C2", 6, "2026-06-20 09:00:00", 0, 1, 4.0),
        ("C3", 1, "2026-06-05 09:00:00", 0, 1, 3.0),
    ]
    after = [
        ("C1", 9, "2026-07-01 09:00:00", 2, 7, round(27 / 7, 9)),
        ("C2", 6, "2026-06-20 09:00:00", 1, 2, 3.0),
    ]
    assert q(db, SERVICE_HISTORY.format(table="intermediate.int_customer_service_history")) == after
    assert q(db, SERVICE_HISTORY.format(table="marts.dim_customers")) == [*after, ("C3", 0, None, 0, 0, None)]
    # day 2 was an incremental build of the history (C3 was found through K14's and R14's old raw versions):
    # day 1 recomputed every customer, day 2 the customers of what changed since day 1's run
    history = "intermediate/customers/int_customer_service_history"
    assert "changed_customers as (" not in day_1_sql[history]
    assert "changed_customers as (" in day_2_sql[history]


def test_customer_archive_follows_profiles_purchases_and_the_date(warehouses):
    """dim_customers (hand-checked against the fixture): day 1 as of 2026-06-30, day 2 as of 2027-01-01.
    C1's U1 runs to 2027-05-01; C2's U2 ended in 2025; U7 moves from C7 to C3; C4's U4 ends 2026-12-31: active on
    day 1, expired on day 2 (only the date changed); C5's U5 runs to 2028; C6 moved to 重庆 and became a business
    customer. Each of C4, C5, C6, C7 is found by one rule only (warranty dates, none: the as-of date alone,
    profile, a purchase's old version), C1 and C2 by their service history (test above)."""
    incremental, *_, (_, day_1_archive, (day_1_sql, day_2_sql)) = warehouses
    db = incremental / "warehouse.duckdb"
    assert day_1_archive == [
        ("C1", "上海", "consumer", 1, "2027-05-01", 1, "in_warranty", "2026-06-30"),
        ("C2", "北京", "business", 1, "2025-01-01", 0, "expired", "2026-06-30"),
        ("C3", "广州", "consumer", 0, None, 0, "no_purchase", "2026-06-30"),
        ("C4", "深圳", "consumer", 1, "2026-12-31", 1, "in_warranty", "2026-06-30"),
        ("C5", "杭州", "business", 1, "2028-01-15", 1, "in_warranty", "2026-06-30"),
        ("C6", "成都", "consumer", 0, None, 0, "no_purchase", "2026-06-30"),
        ("C7", "南京", "consumer", 1, "2028-06-30", 1, "in_warranty", "2026-06-30"),
    ]
    assert q(db, CUSTOMER_ARCHIVE) == [
        ("C1", "上海", "consumer", 1, "2027-05-01", 1, "in_warranty", "2027-01-01"),
        ("C2", "北京", "business", 1, "2025-01-01", 0, "expired", "2027-01-01"),
        ("C3", "广州", "consumer", 1, "2028-06-30", 1, "in_warranty", "2027-01-01"),
        ("C4", "深圳", "consumer", 1, "2026-12-31", 0, "expired", "2027-01-01"),
        ("C5", "杭州", "business", 1, "2028-01-15", 1, "in_warranty", "2027-01-01"),
        ("C6", "重庆", "business", 0, None, 0, "no_purchase", "2027-01-01"),
        ("C7", "南京", "consumer", 0, None, 0, "no_purchase", "2027-01-01"),
    ]
    archive = "marts/core/dim_customers"
    assert "changed_customers as (" not in day_1_sql[archive]
    assert "changed_customers as (" in day_2_sql[archive]


def test_incremental_run_touched_only_the_expected_months(warehouses):
    incremental = warehouses[0]
    db = incremental / "warehouse.duckdb"
    # day 1: a first (full) window; day 2: the months of the day-2 changes
    assert windows(db)[:2] == [(True, [None], True), (False, ["2026-05-01", "2026-06-01", "2026-07-01"], True)]
    # every period mart recomputes by that one window: it depends on it in the manifest
    manifest = json.loads((incremental / "dbt" / "target" / "manifest.json").read_text())
    for model in PERIOD_MODELS:
        assert (
            "model.servicescore.int_change_window"
            in manifest["nodes"][f"model.servicescore.{model}"]["depends_on"]["nodes"]
        ), model
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
    assert last_window_months(db) == [None]  # a build with nothing to recompute records no month
    run_dbt(
        incremental,
        "build",
        "--select",
        "+appraisal_scores",
        "--vars",
        '{"period_from": "2025-12-01", "period_to": "2026-01-01"}',
    )
    assert last_window_months(db) == ["2025-12-01"]
    # the orchestration passes the window by environment (no --vars: they would cost dbt its partial parse)
    run_dbt(
        incremental,
        "build",
        "--select",
        "+appraisal_scores",
        extra_env={PERIOD_ENV[0]: "2026-01-01", PERIOD_ENV[1]: "2026-02-01"},
    )
    assert last_window_months(db) == ["2026-01-01"]
    only_incremental, only_full, _ = differences(incremental, warehouses[1], "marts.appraisal_scores")
    assert (only_incremental, only_full) == (0, 0)


def test_a_new_key_repseudonymises_every_stored_customer(warehouses):
    """Rotation: raw.customer_pseudonyms rebuilt under another key, the stored pseudonyms of customers nothing
    changed for no longer match: the next incremental build of dim_customers recomputes every customer (not
    only the changed ones), and no pseudonym of the old key is left."""
    incremental = warehouses[0]
    db = incremental / "warehouse.duckdb"
    new_key = PseudonymKey(b"another key, 32 bytes long, yes!", "tests")
    con = duckdb.connect(str(db))
    try:
        write_pseudonyms(con, new_key)
    finally:
        con.close()
    result = run_dbt(incremental, "build", "--select", "dim_customers", *AS_OF_DAY_2)
    assert "every customer is recomputed" in result.stdout
    pseudonyms = dict(q(db, "select customer_id, phone_pseudonym from marts.dim_customers"))
    phones = {
        "C1": "13800000001",
        "C2": "13900000002",
        "C3": "13700000003",
        "C4": "13600000004",
        "C5": "13500000005",
        "C6": "13400000006",
        "C7": "13300000007",
    }
    assert pseudonyms == {c: hmac_phone(new_key, p) for c, p in phones.items()}
    assert not set(pseudonyms.values()) & {hmac_phone(TEST_PSEUDONYM_KEY, p) for p in phones.values()}


# --- the complaints feed arrives after the first build -----------------------------------------------------------
# complaint_rate is measured from the first month of the complaints feed on (macros/kpi.sql). Day 1: the hand-made
# landing without its complaints: complaint_rate is not measured in any month. Day 2: the complaints file arrives
# (CP1, CP2 by T1 and CP3 by T2, all received in May 2026), loaded, then an incremental build. June has no
# complaint, yet it is measured from now on: 0 complaints per 100 resolved tickets, not null. Before, the
# incremental build recomputed May alone (the complaints' month) and June stayed not measured until a full refresh.
# By hand (complaints / resolved tickets x 100): T1 May 2 / 3 (K1, K2, K3), T2 May 1 / 2 (K5, K6); June T1 0 / 2
# (K4, K8), T2 0 / 1 (K7), T3 0 / 1 (K9); teams: TA May 3 / 5, June TA 0 / 2 (K4, K8), TB 0 / 2 (K7, K9: T2 is in
# TB from 1 June). The quarter 2026-Q2 starts in April, before the feed's first month: not measured, either way.
COMPLAINT_RATES = [
    ("T1", "2026-05", 200 / 3, 3),
    ("T1", "2026-06", 0.0, 2),
    ("T2", "2026-05", 50.0, 2),
    ("T2", "2026-06", 0.0, 1),
    ("T3", "2026-06", 0.0, 1),
]
COMPLAINT_RATE_QUERY = """
    select technician_id, period_label, round(complaint_rate, 9), complaint_rate_n
    from marts.kpi_technician_monthly order by technician_id, period_label
"""
COMPLAINT_RATE_REASONS = """
    select technician_id, period_label, not_rated_reason from marts.appraisal_score_breakdown
    where indicator_code = 'complaint_rate' and period_type = 'month' and method = 'quantitative'
    order by technician_id, period_label
"""


@pytest.fixture(scope="module")
def complaints_arrive_later(tmp_path_factory: pytest.TempPathFactory):
    incremental = tmp_path_factory.mktemp("complaints_incremental")
    full = tmp_path_factory.mktemp("complaints_full")
    shutil.copytree(FIXTURE, incremental / "landing", ignore=shutil.ignore_patterns("complaints"))
    load_all(incremental, "day-1")
    run_dbt(incremental, "build", *AS_OF_DAY_1)
    db = incremental / "warehouse.duckdb"
    day_1 = (q(db, COMPLAINT_RATE_QUERY), q(db, COMPLAINT_RATE_REASONS))
    shutil.copytree(FIXTURE / "complaints", incremental / "landing" / "complaints")
    load_all(incremental, "day-2")
    run_dbt(incremental, "build", *AS_OF_DAY_1)
    shutil.copytree(FIXTURE, full / "landing")
    load_all(full, "all")
    run_dbt(full, "build", "--full-refresh", *AS_OF_DAY_1)
    return incremental, full, day_1


def test_complaint_rate_is_not_measured_before_the_complaints_feed(complaints_arrive_later):
    (rates, reasons) = complaints_arrive_later[2]
    assert rates == [(t, m, None, n) for t, m, _, n in COMPLAINT_RATES]
    # T3 (in the roster in May) resolved no ticket in May: no data, whatever the complaints
    assert reasons == sorted([(t, m, "not_measured") for t, m, *_ in COMPLAINT_RATES] + [("T3", "2026-05", "no_data")])


@pytest.mark.parametrize("build", ["incremental", "full"])
def test_months_after_the_first_complaint_month_become_measured(complaints_arrive_later, build):
    incremental, full, _ = complaints_arrive_later
    db = (incremental if build == "incremental" else full) / "warehouse.duckdb"
    assert q(db, COMPLAINT_RATE_QUERY) == [(t, m, round(v, 9), n) for t, m, v, n in COMPLAINT_RATES]
    # measured, but fewer than the 20 resolved tickets the setting asks for
    assert q(db, COMPLAINT_RATE_REASONS) == sorted(
        [(t, m, "below_min_sample") for t, m, *_ in COMPLAINT_RATES] + [("T3", "2026-05", "no_data")]
    )
    assert q(
        db, "select team_id, period_label, round(complaint_rate, 9) from marts.kpi_team_monthly order by 1, 2"
    ) == [("TA", "2026-05", 60.0), ("TA", "2026-06", 0.0), ("TB", "2026-06", 0.0)]
    assert q(db, "select distinct complaint_rate from marts.kpi_technician_quarterly") == [(None,)]


def test_the_arrival_of_the_complaints_feed_recomputes_the_months_it_measures(complaints_arrive_later):
    db = complaints_arrive_later[0] / "warehouse.duckdb"
    assert last_window_months(db) == ["2026-05-01", "2026-06-01"]


@pytest.mark.parametrize("table", [f"marts.{m}" for m in MARTS] + [f"intermediate.{m}" for m in INTERMEDIATE])
def test_incremental_build_after_the_complaints_feed_arrives_equals_full_refresh(complaints_arrive_later, table):
    incremental, full, _ = complaints_arrive_later
    assert differences(incremental, full, table)[:2] == (0, 0), table
