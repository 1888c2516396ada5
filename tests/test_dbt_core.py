"""End-to-end test of the dbt core (staging -> facts/dims -> KPI marts) on a hand-made raw warehouse.

Every expected number below is worked out by hand in the comments (local time Asia/Shanghai,
working day 09:00-18:00, SLA targets P1 4 calendar h, P2 8 / P3 24 / P4 72 business h).

Technicians: T1 team A; T2 team A, moves to team B on 2026-02-01; T3 team B.
T1, January 2026 (tickets resolved in January: K1, K2, K3):
  K1 P2 repair   created Mon 12 Jan 10:00, response 10:30, resolved 14:00      4 h cal / 4 h bus, SLA met, FTF
  K2 P3 maint.   created Thu 15 Jan 16:00, response 17:00, resolved Mon 19 Jan 11:00
                 91 h cal / 13 h bus (2 + 9 + 2), SLA met, reopened once
  K3 P1 repair   created Tue 20 Jan 20:00, response 21:00, resolved Wed 21 Jan 08:00
                 12 h cal / 0 h bus, SLA (4 calendar h) missed, not fixed at first visit
  K4 P2          created Wed 28 Jan 09:00, response 09:15, still in progress
  K5 cancelled
  AHT 107/3 h (bus 17/3), MTTR 8 h (bus 2), FRT (0.5+1+1+0.25)/4 = 0.6875 h (bus 1.75/4),
  SLA 2/3, FTF 1/2, reopen 1/3
  Surveys in January: S1 5/5/4 nps10, S2 4/4/3 nps8, S3 2/3/2 nps3, S4 3/-/4 nps9 ->
    CSAT 2/4, rating 3.5, NPS (2-1)/4 = 25, attitude 12/3 = 4, technical 13/4
  S5 (overall 5) responded 2026-01-31 20:00 UTC = 1 Feb 04:00 local -> February.
  Complaints: C1 received Tue 13 Jan 17:00, accepted Wed 10:00 (17 h cal, 2 h bus), confirmed resolved;
              C2 received Fri 16 Jan 12:00, accepted 15:00 (3 h / 3 h), resolved but not confirmed
    acceptance 10 h (bus 2.5), problem resolution 1/2, complaint rate 100*2/3
  Supervisor review 4.0 (Feb 5.0, Mar 3.0 -> Q1 4.0)
T1 Q1 CSAT: Jan 2/4, Feb 1/1 (S5), Mar 1/2 (S6 4, S7 1) -> quarter 4/7, mean of months 2/3.
Team A January CSAT: T1 2/4 + T2 S8 1/1 = 3/5 = 0.6 (mean of technicians would be 0.75).
T2 K8 created Fri 30 Jan (team A) resolved Tue 3 Feb: counts for team A in February
  (96 h cal, 8 + 9 + 1 = 18 h bus); T2's K7 and S9 in February count for team B.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import date
from pathlib import Path

import duckdb
import pytest

from ingestion.contracts import FEEDS, LOAD_METADATA_COLUMNS
from ingestion.paths import DBT_PROJECT_DIR, REPO_ROOT
from ingestion.privacy import hmac_phone, write_pseudonyms
from ingestion.work_calendar import write_work_calendar
from tests.cli_runs import TEST_PSEUDONYM_KEY

DBT = REPO_ROOT / ".venv" / "bin" / "dbt"
LOADED = "2026-06-01 00:00:00+00"


def _t(local: str) -> str:
    """A local Asia/Shanghai wall-clock time as an instant."""
    return f"{local}+08"


TECHNICIANS = [
    dict(
        technician_id="T1",
        name="Tech One",
        team_id="A",
        team_name="Old name",
        region="East",
        level="senior",
        hire_date="2024-06-01",
        valid_from="2025-01-01",
        updated_at=_t("2025-01-01 00:00"),
    ),
    dict(
        technician_id="T1",
        name="Tech One",
        team_id="A",
        team_name="Team A",
        region="East",
        level="senior",
        hire_date="2024-06-01",
        valid_from="2025-01-01",
        updated_at=_t("2025-06-01 00:00"),
    ),
    dict(
        technician_id="T2",
        name="Tech Two",
        team_id="A",
        team_name="Team A",
        region="East",
        level="junior",
        hire_date="2024-06-01",
        valid_from="2025-01-01",
        updated_at=_t("2025-01-01 00:00"),
    ),
    dict(
        technician_id="T2",
        name="Tech Two",
        team_id="B",
        team_name="Team B",
        region="West",
        level="junior",
        hire_date="2024-06-01",
        valid_from="2026-02-01",
        updated_at=_t("2026-02-01 00:00"),
    ),
    dict(
        technician_id="T3",
        name="Tech Three",
        team_id="B",
        team_name="Team B",
        region="West",
        level="expert",
        hire_date="2020-01-01",
        valid_from="2025-01-01",
        updated_at=_t("2025-01-01 00:00"),
    ),
]


def _ticket(
    ticket_id,
    technician_id,
    priority,
    service_type,
    created,
    response,
    resolved,
    status="closed",
    ftf=None,
    visits=1,
    reopened=0,
    updated=None,
    loaded=LOADED,
):
    return dict(
        ticket_id=ticket_id,
        technician_id=technician_id,
        priority=priority,
        service_type=service_type,
        created_at=_t(created),
        first_response_at=response and _t(response),
        resolved_at=resolved and _t(resolved),
        closed_at=resolved and status == "closed" and _t(resolved) or None,
        updated_at=_t(updated or "2026-05-01 00:00"),
        status=status,
        channel="phone",
        customer_id="CU1",
        product_id="PR1",
        onsite_visits=visits,
        first_time_fix=ftf,
        reopened_count=reopened,
        _loaded_at=loaded,
    )


TICKETS = [
    # K1: an older version (in progress) and a stale re-delivery loaded later: the newest updated_at wins
    _ticket(
        "K1",
        "T1",
        "P2",
        "repair",
        "2026-01-12 10:00",
        "2026-01-12 10:30",
        None,
        status="in_progress",
        updated="2026-01-12 11:00",
    ),
    _ticket(
        "K1",
        "T1",
        "P2",
        "repair",
        "2026-01-12 10:00",
        "2026-01-12 10:30",
        "2026-01-12 14:00",
        ftf=True,
        updated="2026-01-12 15:00",
    ),
    _ticket(
        "K1",
        "T1",
        "P2",
        "repair",
        "2026-01-12 10:00",
        "2026-01-12 10:30",
        None,
        status="in_progress",
        updated="2026-01-12 10:45",
        loaded="2026-07-01 00:00:00+00",
    ),
    _ticket("K2", "T1", "P3", "maintenance", "2026-01-15 16:00", "2026-01-15 17:00", "2026-01-19 11:00", reopened=1),
    _ticket(
        "K3", "T1", "P1", "repair", "2026-01-20 20:00", "2026-01-20 21:00", "2026-01-21 08:00", ftf=False, visits=2
    ),
    _ticket("K4", "T1", "P2", "repair", "2026-01-28 09:00", "2026-01-28 09:15", None, status="in_progress"),
    _ticket("K5", "T1", "P2", "repair", "2026-01-29 09:00", None, None, status="cancelled"),
    _ticket("K6", "T2", "P4", "technical_support", "2026-01-26 09:00", "2026-01-26 09:00", "2026-01-26 13:00"),
    _ticket("K7", "T2", "P2", "repair", "2026-02-02 10:00", "2026-02-02 11:00", "2026-02-02 12:00", ftf=True),
    _ticket("K8", "T2", "P3", "maintenance", "2026-01-30 10:00", "2026-01-30 11:00", "2026-02-03 10:00"),
    # K9 spans National Day 2026 and ends on the make-up Saturday 10 Oct: 1 + 9 + 9 + 1 = 20 business h
    _ticket("K9", "T3", "P3", "maintenance", "2026-09-30 17:00", "2026-09-30 17:30", "2026-10-10 10:00"),
    # K10: resolved before its first response -> has_stage_order_issue
    _ticket("K10", "T3", "P2", "repair", "2026-03-02 10:00", "2026-03-02 12:00", "2026-03-02 11:00"),
]


def _survey(response_id, ticket_id, technician_id, responded, overall, attitude=None, technical=None, nps=None):
    return dict(
        response_id=response_id,
        ticket_id=ticket_id,
        technician_id=technician_id,
        customer_id="CU1",
        sent_at=None,
        responded_at=responded,
        overall_score=overall,
        attitude_score=attitude,
        technical_score=technical,
        timeliness_score=None,
        nps=nps,
    )


SURVEYS = [
    _survey("S1", "K1", "T1", _t("2026-01-12 18:00"), 5, 5, 4, 10),
    _survey("S2", "K2", "T1", _t("2026-01-19 18:00"), 4, 4, 3, 8),
    _survey("S3", "K3", "T1", _t("2026-01-21 18:00"), 2, 3, 2, 3),
    _survey("S4", "K4", "T1", _t("2026-01-30 23:30"), 3, None, 4, 9),
    _survey("S5", "K4", "T1", "2026-01-31 20:00:00+00", 5, 5, 5, 10),
    _survey("S6", "K4", "T1", _t("2026-03-10 12:00"), 4, 4, 4, 9),
    _survey("S7", "K4", "T1", _t("2026-03-11 12:00"), 1, 1, 1, 0),
    _survey("S8", "K6", "T2", _t("2026-01-27 12:00"), 5, 5, 5, 10),
    _survey("S9", "K7", "T2", _t("2026-02-03 12:00"), 1, 1, 1, 0),
    _survey("S10", "K6", "T3", _t("2026-01-27 12:00"), 3, 3, 3, 7),
]

COMPLAINTS = [
    dict(
        complaint_id="C1",
        received_at=_t("2026-01-13 17:00"),
        accepted_at=_t("2026-01-14 10:00"),
        resolved_at=_t("2026-01-15 10:00"),
        updated_at=_t("2026-01-15 10:00"),
        ticket_id="K1",
        customer_id="CU1",
        technician_id="T1",
        category="attitude",
        severity="low",
        status="closed",
        resolution_confirmed=True,
    ),
    dict(
        complaint_id="C2",
        received_at=_t("2026-01-16 12:00"),
        accepted_at=_t("2026-01-16 15:00"),
        resolved_at=_t("2026-01-17 10:00"),
        updated_at=_t("2026-01-17 10:00"),
        ticket_id="K2",
        customer_id="CU1",
        technician_id="T1",
        category="quality",
        severity="high",
        status="resolved",
        resolution_confirmed=False,
    ),
]

REVIEWS = [
    dict(review_id="R1", technician_id="T1", period="2026-01-01", reviewer_id="M1", score=4.0),
    dict(review_id="R2", technician_id="T1", period="2026-02-01", reviewer_id="M1", score=5.0),
    dict(review_id="R3", technician_id="T1", period="2026-03-01", reviewer_id="M1", score=3.0),
]

CUSTOMERS = [
    dict(
        customer_id="CU1",
        name="Old Name",
        phone="13900000000",
        city="Shanghai",
        segment="consumer",
        updated_at=_t("2025-01-01 00:00"),
    ),
    dict(
        customer_id="CU1",
        name="张三丰",
        phone="138-0013-8000",
        city="Shanghai",
        segment="consumer",
        updated_at=_t("2025-02-01 00:00"),
    ),
    dict(
        customer_id="CU2",
        name="李四",
        phone="13700001234",
        city="Beijing",
        segment="business",
        updated_at=_t("2025-02-01 00:00"),
    ),
]

PURCHASES = [
    dict(
        purchase_id="PU1",
        customer_id="CU1",
        product_id="PR1",
        purchased_at=_t("2025-01-10 10:00"),
        warranty_until="2027-01-10",
        amount=1000.0,
    ),
    dict(
        purchase_id="PU2",
        customer_id="CU2",
        product_id="PR1",
        purchased_at=_t("2024-01-10 10:00"),
        warranty_until="2025-12-31",
        amount=500.0,
    ),
]

PRODUCTS = [dict(product_id="PR1", category="washer", model="W1", complexity=2)]

ROWS: dict[str, list[dict]] = {
    "technicians": TECHNICIANS,
    "tickets": TICKETS,
    "surveys": SURVEYS,
    "complaints": COMPLAINTS,
    "supervisor_reviews": REVIEWS,
    "customers": CUSTOMERS,
    "purchases": PURCHASES,
    "products": PRODUCTS,
}


def create_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """raw.<feed> for every feed with exactly the contract columns and types plus load metadata."""
    con.execute("create schema if not exists raw")
    for feed in FEEDS.values():
        columns = [f"{c.name} {c.raw_type}" for c in feed.columns]
        columns += [f"{name} {sql_type}" for name, sql_type in LOAD_METADATA_COLUMNS]
        con.execute(f"create or replace table raw.{feed.name} ({', '.join(columns)})")


def insert_rows(con: duckdb.DuckDBPyConnection, feed: str, rows: list[dict]) -> None:
    for number, row in enumerate(rows, start=1):
        values = {
            "_source_file": f"{feed}.csv",
            "_file_hash": "h",
            "_row_number": number,
            "_loaded_at": LOADED,
            "_run_id": "test",
            **row,
        }
        names = list(values)
        con.execute(
            f"insert into raw.{feed} ({', '.join(names)}) values ({', '.join('?' for _ in names)})",
            [values[n] for n in names],
        )


def build_raw_warehouse(data_dir: Path, rows: dict[str, list[dict]] | None = None) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        create_raw_tables(con)
        for feed, feed_rows in (ROWS if rows is None else rows).items():
            insert_rows(con, feed, feed_rows)
        write_work_calendar(con, date(2025, 1, 1), date(2026, 12, 31))
        write_pseudonyms(con, TEST_PSEUDONYM_KEY)
    return path


def run_dbt(data_dir: Path, *args: str, artifacts: Path | None = None) -> subprocess.CompletedProcess:
    """dbt in a subprocess; target/ and logs/ under `artifacts` so parallel runs do not share them."""
    artifacts = artifacts or data_dir / "dbt"
    env = {
        **os.environ,
        "SERVICESCORE_DATA_DIR": str(data_dir),
        "DBT_TARGET_PATH": str(artifacts / "target"),
        "DBT_LOG_PATH": str(artifacts / "logs"),
    }
    return subprocess.run(
        [str(DBT), *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def dbt_artifacts(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dbt_artifacts")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory, dbt_artifacts) -> duckdb.DuckDBPyConnection:
    data_dir = tmp_path_factory.mktemp("core")
    path = build_raw_warehouse(data_dir)
    result = run_dbt(
        data_dir,
        "build",
        "--exclude",
        "path:models/marts/appraisal",
        "path:models/intermediate/appraisal",
        "path:models/marts/training",
        "path:models/intermediate/training",
        "--vars",
        "{as_of_date: '2026-06-30'}",
        artifacts=dbt_artifacts,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    # kept apart: later dbt invocations of this module overwrite target/run_results.json
    shutil.copyfile(dbt_artifacts / "target" / "run_results.json", dbt_artifacts / "core_build_run_results.json")
    con = duckdb.connect(str(path), read_only=True)
    yield con
    con.close()


def one(con, sql: str, params=()):
    return con.execute(sql, params).fetchone()


def kpi(con, mart: str, key: str, subject: str, label: str, columns: str):
    return one(con, f"select {columns} from marts.{mart} where {key} = ? and period_label = ?", (subject, label))


def test_sources_mirror_the_contracts():
    import yaml

    sources = yaml.safe_load((DBT_PROJECT_DIR / "models/staging/_raw__sources.yml").read_text())
    tables = {t["name"]: [c["name"] for c in t["columns"]] for t in sources["sources"][0]["tables"]}
    for feed in FEEDS.values():
        assert tables[feed.name] == [*feed.column_names, *(n for n, _ in LOAD_METADATA_COLUMNS)], feed.name
    assert "work_calendar" in tables


@pytest.mark.dbt
def test_newest_version_wins(warehouse):
    assert one(warehouse, "select count(*) from marts.fct_service_tickets where ticket_id = 'K1'") == (1,)
    assert one(warehouse, "select status, is_resolved from marts.fct_service_tickets where ticket_id = 'K1'") == (
        "closed",
        True,
    )
    assert one(warehouse, "select team_name from marts.dim_teams where team_id = 'A'") == ("Team A",)


@pytest.mark.dbt
def test_ticket_durations_and_sla(warehouse):
    rows = warehouse.execute(
        "select ticket_id, handling_hours, handling_business_hours, is_sla_met, first_response_business_hours "
        "from marts.fct_service_tickets where ticket_id in ('K1', 'K2', 'K3', 'K8', 'K9') order by ticket_id"
    ).fetchall()
    assert rows == [
        ("K1", 4.0, 4.0, True, 0.5),
        ("K2", 91.0, 13.0, True, 1.0),
        ("K3", 12.0, 0.0, False, 0.0),
        ("K8", 96.0, 18.0, True, 1.0),
        ("K9", 233.0, 20.0, True, 0.5),
    ]
    assert one(
        warehouse, "select is_sla_met, handling_hours from marts.fct_service_tickets where ticket_id = 'K4'"
    ) == (None, None)
    issues = warehouse.execute("select ticket_id from marts.fct_service_tickets where has_stage_order_issue").fetchall()
    assert issues == [("K10",)]


@pytest.mark.dbt
def test_local_time_and_team_at_event(warehouse):
    # S5 was answered at 20:00 UTC on 31 Jan = 04:00 on 1 Feb in Shanghai
    assert one(warehouse, "select responded_date from marts.fct_survey_responses where response_id = 'S5'") == (
        date(2026, 2, 1),
    )
    teams = dict(
        warehouse.execute(
            "select ticket_id, team_id from marts.fct_service_tickets where technician_id = 'T2'"
        ).fetchall()
    )
    assert teams == {"K6": "A", "K7": "B", "K8": "A"}


@pytest.mark.dbt
def test_technician_month(warehouse):
    row = kpi(
        warehouse,
        "kpi_technician_monthly",
        "technician_id",
        "T1",
        "2026-01",
        "team_id, period_start, period_end, csat, csat_n, customer_rating, nps, nps_n, nps_promoters, "
        "nps_passives, nps_detractors, service_attitude, service_attitude_n, technical_level, "
        "supervisor_review",
    )
    assert row == ("A", date(2026, 1, 1), date(2026, 1, 31), 0.5, 4, 3.5, 25.0, 4, 2, 1, 1, 4.0, 3, 3.25, 4.0)
    row = kpi(
        warehouse,
        "kpi_technician_monthly",
        "technician_id",
        "T1",
        "2026-01",
        "avg_handling_time_hours, avg_handling_time_business_hours, avg_handling_time_n, mttr_hours, "
        "mttr_business_hours, mttr_n, first_response_time_hours, first_response_time_business_hours, "
        "first_response_time_n, sla_attainment, sla_attainment_n, first_time_fix_rate, "
        "first_time_fix_rate_n, reopen_rate, reopen_rate_n",
    )
    assert row == pytest.approx((107 / 3, 17 / 3, 3, 8.0, 2.0, 2, 0.6875, 0.4375, 4, 2 / 3, 3, 0.5, 2, 1 / 3, 3))
    row = kpi(
        warehouse,
        "kpi_technician_monthly",
        "technician_id",
        "T1",
        "2026-01",
        "complaint_acceptance_time_hours, complaint_acceptance_time_business_hours, "
        "complaint_acceptance_time_n, problem_resolution_rate, problem_resolution_rate_n, "
        "complaint_rate, complaint_rate_n",
    )
    assert row == pytest.approx((10.0, 2.5, 2, 0.5, 2, 200 / 3, 3))


@pytest.mark.dbt
def test_quarter_is_recomputed_from_facts(warehouse):
    months = warehouse.execute(
        "select csat from marts.kpi_technician_monthly where technician_id = 'T1' "
        "and period_label in ('2026-01', '2026-02', '2026-03') order by period_label"
    ).fetchall()
    assert [m[0] for m in months] == [0.5, 1.0, 0.5]
    row = kpi(
        warehouse,
        "kpi_technician_quarterly",
        "technician_id",
        "T1",
        "2026-Q1",
        "period_start, period_end, csat, csat_n, supervisor_review, supervisor_review_n",
    )
    assert row == pytest.approx((date(2026, 1, 1), date(2026, 3, 31), 4 / 7, 7, 4.0, 3))
    assert kpi(warehouse, "kpi_technician_annual", "technician_id", "T1", "2026", "csat_n, period_end") == (
        7,
        date(2026, 12, 31),
    )


@pytest.mark.dbt
def test_team_values_come_from_team_facts(warehouse):
    assert kpi(warehouse, "kpi_team_monthly", "team_id", "A", "2026-01", "csat, csat_n") == (0.6, 5)
    # February: S5 (T1, team A) satisfied; S9 (T2, now team B) not; K8 created in team A counts for A
    assert kpi(
        warehouse,
        "kpi_team_monthly",
        "team_id",
        "A",
        "2026-02",
        "csat, csat_n, avg_handling_time_n, avg_handling_time_business_hours",
    ) == (1.0, 1, 1, 18.0)
    assert kpi(warehouse, "kpi_team_monthly", "team_id", "B", "2026-02", "csat, csat_n, avg_handling_time_n") == (
        0.0,
        1,
        1,
    )
    # the technician mart reports the team at the end of the period
    assert kpi(warehouse, "kpi_technician_monthly", "technician_id", "T2", "2026-01", "team_id") == ("A",)
    assert kpi(warehouse, "kpi_technician_monthly", "technician_id", "T2", "2026-02", "team_id") == ("B",)


@pytest.mark.dbt
def test_long_form_and_evidence(warehouse):
    rows = warehouse.execute(
        "select hours_basis, value, sample_size from intermediate.int_indicator_values "
        "where subject_type = 'technician' and subject_id = 'T1' and period_type = 'month' "
        "and period_label = '2026-01' and indicator_code = 'mttr' order by hours_basis"
    ).fetchall()
    assert rows == [("business", 2.0, 2), ("calendar", 8.0, 2)]
    assert one(
        warehouse,
        "select value, sample_size, team_id, hours_basis from intermediate.int_indicator_values "
        "where subject_type = 'team' and subject_id = 'A' and period_type = 'month' "
        "and period_label = '2026-01' and indicator_code = 'csat'",
    ) == (0.6, 5, "A", None)
    codes = one(
        warehouse,
        "select count(distinct indicator_code), count(*) from intermediate.int_indicator_values "
        "where subject_type = 'technician' and subject_id = 'T1' and period_label = '2026-01'",
    )
    assert codes == (15, 19)
    evidence = warehouse.execute(
        "select source_id from intermediate.int_indicator_evidence where indicator_code = 'mttr' "
        "and technician_id = 'T1' and activity_date between '2026-01-01' and '2026-01-31' order by source_id"
    ).fetchall()
    assert evidence == [("K1",), ("K3",)]
    survey_evidence = one(
        warehouse,
        "select count(*) from intermediate.int_indicator_evidence "
        "where indicator_code = 'csat' and team_id = 'A' "
        "and activity_date between '2026-01-01' and '2026-01-31'",
    )
    assert survey_evidence == (5,)


@pytest.mark.dbt
def test_personal_data_is_masked(warehouse):
    """The phone leaves raw only as HMAC-SHA-256 of its digits under the key (Python's hmac agrees with the
    SQL); no mask of its last digits is published beside it (that would shrink the numbers to try)."""
    row = one(
        warehouse,
        "select customer_name_masked, phone_pseudonym, purchases_count, warranty_status, "
        "tickets_count, complaints_count, mean_satisfaction from marts.dim_customers "
        "where customer_id = 'CU1'",
    )
    assert row[:2] == ("张**", hmac_phone(TEST_PSEUDONYM_KEY, "13800138000"))
    assert row[2:6] == (1, "in_warranty", 10, 2)
    assert row[6] == pytest.approx(33 / 10)
    columns = {
        c
        for (c,) in warehouse.execute(
            "select column_name from information_schema.columns where table_name = 'dim_customers'"
        ).fetchall()
    }
    assert not {c for c in columns if "phone" in c} - {"phone_pseudonym"}
    assert one(warehouse, "select warranty_status from marts.dim_customers where customer_id = 'CU2'") == ("expired",)
    for schema in ("staging", "marts"):
        leaks = one(
            warehouse,
            "select count(*) from information_schema.columns where table_schema = ? "
            "and column_name in ('name', 'phone')",
            (schema,),
        )
        assert leaks == (0,), schema


@pytest.mark.dbt
def test_dim_technicians_scd2(warehouse):
    rows = warehouse.execute(
        "select team_id, valid_from, valid_to, is_current from marts.dim_technicians "
        "where technician_id = 'T2' order by valid_from"
    ).fetchall()
    assert rows == [("A", date(2025, 1, 1), date(2026, 2, 1), False), ("B", date(2026, 2, 1), date(9999, 12, 31), True)]


@pytest.mark.dbt
def test_build_fails_when_the_calendar_does_not_cover_the_facts(tmp_path, dbt_artifacts):
    """A ticket outside raw.work_calendar would get null business hours: the build must stop, naming the test."""
    data_dir = tmp_path / "short_calendar"
    build_raw_warehouse(data_dir, {"technicians": TECHNICIANS, "tickets": TICKETS[3:4]})  # K2, January 2026
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        write_work_calendar(con, date(2026, 1, 1), date(2026, 1, 16))  # K2 resolves on 19 January
    result = run_dbt(
        data_dir, "build", "--select", "+assert_work_calendar_covers_all_fact_dates", artifacts=dbt_artifacts
    )
    assert result.returncode != 0
    assert "FAIL 1 assert_work_calendar_covers_all_fact_dates" in result.stdout.replace("\x1b[31m", "").replace(
        "\x1b[0m", ""
    )


@pytest.mark.dbt
def test_unit_tests_run_here_not_in_the_nightly_build(warehouse, dbt_artifacts):
    """The Dagster build leaves dbt's unit tests out (they test logic, not data); this suite runs them."""
    import json

    from orchestration.transform import dbt_build_args

    assert dbt_build_args()[:3] == ["build", "--exclude-resource-type", "unit_test"]
    results = json.loads((dbt_artifacts / "core_build_run_results.json").read_text())["results"]
    unit = {r["unique_id"].split(".")[-1]: r["status"] for r in results if r["unique_id"].startswith("unit_test.")}
    assert "fct_service_tickets_business_hours_and_sla" in unit
    assert "kpi_technician_quarterly_from_whole_period_sums" in unit
    assert "int_kpi_monthly_sums_at_each_period_date" in unit
    assert set(unit.values()) == {"pass"}
