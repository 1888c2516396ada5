"""The training marts on a hand-made warehouse, with expectations worked out by hand.

The dbt project is copied to a temporary folder with test seeds (indicator settings, training settings, the
indicator -> course mapping); the upstream tables the training models read (marts.appraisal_scores,
marts.appraisal_score_breakdown, marts.dim_technicians, intermediate.int_indicator_values and the three
training staging relations) are written by hand into a fresh DuckDB, and only the training nodes (plus the
indicator_settings seed) are built: ``dbt build --select tag:training indicator_settings`` with
as_of_date = 2026-05-15. dim_customers (core) is then built with int_customer_service_history on hand-made
inputs for the warranty status.

Settings: quantitative method; bottom group 25 % of at least 4 rated; onboarding window 60 days; coverage
horizon 45 days; outcome window 1 month; min group size 2; business hours.
Indicators (quantitative): csat higher 0.9 / 0.6, avg_handling_time lower 4 / 8 h, reopen_rate lower
0.05 / 0.1, nps higher 30 / -10. Mapping: csat -> C_SVC, avg_handling_time -> C_TECH, nps -> C_NPS,
reopen_rate unmapped. C_ONB is the onboarding course.

April 2026 roster t1..t7 (t7 hired 2026-04-20, t6 hired 2026-03-01 = exactly 60 days before 04-30);
May roster t1, t5, t7.

Sessions (as_of 2026-05-15):
    S_T0  C_TECH 2026-02-01 planned (behind schedule)   S_T1 C_TECH 2026-03-10 held
    S_S1  C_SVC  2026-04-08 held                          S_C1 C_SVC  2026-04-01 cancelled
    S_T2  C_TECH 2026-05-05 held, capacity 1              S_ONB1 C_ONB 2026-05-10 held
    S_S3  C_SVC  2026-05-20 planned, capacity 5           S_N1 C_NPS 2026-07-15 planned (76 days: beyond)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from expectations.runner import run_suite
from expectations.training_suites import training_suites

pytestmark = pytest.mark.dbt

PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
DBT = Path(sys.executable).parent / "dbt"
AS_OF = "2026-05-15"

_HEADER = (
    "indicator_code,name_zh,name_en,category,kind,unit,direction,hours_basis,"
    "method,target,threshold,weight,min_sample,effective_from,effective_to"
)
INDICATOR_SETTINGS = (
    "\n".join(
        [
            _HEADER,
            "csat,满意率,CSAT,customer_satisfaction,quantitative,fraction,higher,,quantitative,0.9,0.6,30,5,2026-01-01,",
            "avg_handling_time,平均处理时长,AHT,processing_efficiency,quantitative,hours,lower,business,quantitative,"
            "4,8,30,5,2026-01-01,",
            "reopen_rate,返修率,Reopen rate,service_quality,quantitative,fraction,lower,,quantitative,0.05,0.1,20,5,"
            "2026-01-01,",
            "nps,净推荐值,NPS,customer_satisfaction,quantitative,nps_points,higher,,quantitative,30,-10,20,5,"
            "2026-01-01,",
            "supervisor_review,主管评价,Supervisor review,qualitative,qualitative,score_1_5,higher,,qualitative,"
            "4.5,3,100,1,2026-01-01,",
        ]
    )
    + "\n"
)
TRAINING_SETTINGS = """\
appraisal_method,bottom_quartile_share,bottom_quartile_min_rated,onboarding_window_days,coverage_horizon_days,\
outcome_window_months,min_group_size,outcome_hours_basis
quantitative,0.25,4,60,45,1,2,business
"""
COURSE_MAPPING = """\
indicator_code,course_id
csat,C_SVC
avg_handling_time,C_TECH
nps,C_NPS
"""

MONTHS = {
    "2026-02": ("2026-02-01", "2026-02-28"),
    "2026-03": ("2026-03-01", "2026-03-31"),
    "2026-04": ("2026-04-01", "2026-04-30"),
    "2026-05": ("2026-05-01", "2026-05-31"),
}

# technician_id, team_id, hire_date
TECHNICIANS = [
    ("t1", "x", "2025-01-01"),
    ("t2", "x", "2025-01-01"),
    ("t3", "x", "2025-01-01"),
    ("t4", "x", "2025-01-01"),
    ("t5", "x", "2025-01-01"),
    ("t6", "x", "2026-03-01"),
    ("t7", "y", "2026-04-20"),
]
ROSTER = [(t, "2026-04") for t in ("t1", "t2", "t3", "t4", "t5", "t6", "t7")] + [
    (t, "2026-05") for t in ("t1", "t5", "t7")
]

# technician, month, method, indicator, direction, unit, hours_basis, value, sample, target, threshold, is_rated
_CSAT = ("csat", "higher", "fraction", None)
_AHT = ("avg_handling_time", "lower", "hours", "business")
_REOPEN = ("reopen_rate", "lower", "fraction", None)
_NPS = ("nps", "higher", "nps_points", None)
BREAKDOWN = [
    ("t1", "2026-04", "quantitative", *_CSAT, 0.50, 10, 0.9, 0.6, True),
    ("t2", "2026-04", "quantitative", *_CSAT, 0.65, 10, 0.9, 0.6, True),
    ("t3", "2026-04", "quantitative", *_CSAT, 0.70, 10, 0.9, 0.6, True),
    ("t4", "2026-04", "quantitative", *_CSAT, 0.80, 10, 0.9, 0.6, True),
    ("t5", "2026-04", "quantitative", *_CSAT, 0.95, 10, 0.9, 0.6, True),
    ("t6", "2026-04", "quantitative", *_CSAT, 0.92, 10, 0.9, 0.6, True),
    ("t7", "2026-04", "quantitative", *_CSAT, 0.30, 2, 0.9, 0.6, False),  # not rated: no need
    ("t1", "2026-04", "quantitative", *_AHT, 5.0, 10, 4.0, 8.0, True),
    ("t2", "2026-04", "quantitative", *_AHT, 6.0, 10, 4.0, 8.0, True),
    ("t3", "2026-04", "quantitative", *_AHT, 9.5, 10, 4.0, 8.0, True),
    ("t4", "2026-04", "quantitative", *_REOPEN, 0.2, 10, 0.05, 0.1, True),
    ("t6", "2026-04", "quantitative", *_NPS, -20.0, 10, 30.0, -10.0, True),
    # another method: not read (the settings choose quantitative)
    ("t5", "2026-04", "comprehensive", *_CSAT, 0.10, 10, 0.9, 0.6, True),
]

# course_id, title, topic, hours, indicator codes, is_onboarding
COURSES = [
    ("C_ONB", "Onboarding", "service", 16.0, "csat", True),
    ("C_SVC", "Service etiquette", "service", 8.0, "csat", False),
    ("C_TECH", "Repair techniques", "technical", 24.0, "avg_handling_time; csat", False),
    ("C_NPS", "Loyalty", "service", 4.0, "nps", False),
]
# session_id, course_id, starts_at, ends_at, capacity, status
SESSIONS = [
    ("S_T0", "C_TECH", "2026-02-01 09:00", "2026-02-01 17:00", 10, "planned"),
    ("S_T1", "C_TECH", "2026-03-10 09:00", "2026-03-11 17:00", 10, "held"),
    ("S_C1", "C_SVC", "2026-04-01 09:00", "2026-04-01 17:00", 10, "cancelled"),
    ("S_S1", "C_SVC", "2026-04-08 09:00", "2026-04-08 17:00", 10, "held"),
    ("S_T2", "C_TECH", "2026-05-05 09:00", "2026-05-06 17:00", 1, "held"),
    ("S_ONB1", "C_ONB", "2026-05-10 09:00", "2026-05-11 17:00", 10, "held"),
    ("S_S3", "C_SVC", "2026-05-20 09:00", "2026-05-20 17:00", 5, "planned"),
    ("S_N1", "C_NPS", "2026-07-15 09:00", "2026-07-15 17:00", 10, "planned"),
]
# session_id, technician_id, attended, pre, post, passed, feedback
ATTENDANCE = [
    ("S_T1", "t5", True, 40.0, 55.0, False, 3),
    ("S_T1", "t6", True, 60.0, 80.0, True, 4),
    ("S_T1", "t1", False, None, None, None, None),  # enrolled, absent: untrained
    ("S_T1", "t2", True, 70.0, None, None, 4),  # attended, no post-test
    ("S_S1", "t4", True, 60.0, 50.0, False, 2),
    ("S_S1", "t2", True, 50.0, 85.0, True, 5),
    ("S_T2", "t5", True, 55.0, 75.0, True, 5),
    ("S_ONB1", "t7", True, 50.0, 80.0, True, 5),
]
# technician, month, indicator, hours_basis, value (monthly technician values for the outcome)
INDICATOR_VALUES = [
    # C_SVC / csat, cohort April (t2, t4 attended S_S1): before = March, after = May
    ("t2", "2026-03", "csat", None, 0.60),
    ("t2", "2026-04", "csat", None, 0.10),
    ("t2", "2026-05", "csat", None, 0.80),
    ("t4", "2026-02", "csat", None, 0.00),
    ("t4", "2026-03", "csat", None, 0.70),
    ("t4", "2026-05", "csat", None, 0.80),
    ("t1", "2026-03", "csat", None, 0.50),
    ("t1", "2026-05", "csat", None, 0.55),
    ("t3", "2026-03", "csat", None, 0.70),
    ("t3", "2026-05", "csat", None, 0.70),
    ("t5", "2026-03", "csat", None, 0.90),
    ("t5", "2026-05", "csat", None, 0.95),
    ("t6", "2026-03", "csat", None, 0.80),  # no May value: left out
    # C_TECH / avg_handling_time, cohort March (t5, t6, t2 attended S_T1): before = Feb, after = April
    ("t6", "2026-02", "avg_handling_time", "business", 6.0),
    ("t6", "2026-04", "avg_handling_time", "business", 4.0),
    ("t6", "2026-02", "avg_handling_time", "calendar", 20.0),
    ("t6", "2026-04", "avg_handling_time", "calendar", 30.0),
    ("t1", "2026-02", "avg_handling_time", "business", 5.0),
    ("t1", "2026-04", "avg_handling_time", "business", 5.0),
    ("t3", "2026-02", "avg_handling_time", "business", 9.0),
    ("t3", "2026-04", "avg_handling_time", "business", 8.0),
]


def _write_upstream(database: Path) -> None:
    con = duckdb.connect(str(database))
    try:
        for schema in ("intermediate", "marts", "staging"):
            con.execute(f"create schema {schema}")
        con.execute(
            "create table marts.dim_technicians (technician_id varchar, valid_from date, valid_to date, "
            "version_number integer, is_current boolean, team_id varchar, region varchar, level varchar, "
            "hire_date date, leave_date date)"
        )
        con.executemany(
            "insert into marts.dim_technicians values (?, ?, '9999-12-31', 1, true, ?, 'north', 'junior', ?, null)",
            [(t, hire, team, hire) for t, team, hire in TECHNICIANS],
        )
        team_of = {t: team for t, team, _ in TECHNICIANS}
        con.execute(
            "create table marts.appraisal_scores (technician_id varchar, team_id varchar, period_type varchar, "
            "period_start date, period_end date, period_label varchar, method varchar)"
        )
        con.executemany(
            "insert into marts.appraisal_scores values (?, ?, 'month', ?, ?, ?, ?)",
            [(t, team_of[t], *MONTHS[m], m, method) for t, m in ROSTER for method in ("quantitative", "comprehensive")],
        )
        con.execute(
            "create table marts.appraisal_score_breakdown (technician_id varchar, team_id varchar, "
            "period_type varchar, period_start date, period_end date, period_label varchar, method varchar, "
            "indicator_code varchar, direction varchar, unit varchar, hours_basis varchar, value double, "
            "sample_size bigint, target double, threshold double, is_rated boolean)"
        )
        con.executemany(
            "insert into marts.appraisal_score_breakdown values (?, ?, 'month', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(t, team_of[t], *MONTHS[m], m, *rest) for t, m, *rest in BREAKDOWN],
        )
        # a quarter row is not a monthly need
        con.execute(
            "insert into marts.appraisal_score_breakdown values ('t5', 'x', 'quarter', '2026-04-01', "
            "'2026-06-30', '2026-Q2', 'quantitative', 'csat', 'higher', 'fraction', null, 0.1, 30, 0.9, 0.6, true)"
        )
        con.execute(
            "create table intermediate.int_indicator_values (subject_type varchar, subject_id varchar, "
            "team_id varchar, period_type varchar, period_start date, period_end date, period_label varchar, "
            "indicator_code varchar, hours_basis varchar, value double, sample_size bigint)"
        )
        con.executemany(
            "insert into intermediate.int_indicator_values values ('technician', ?, ?, 'month', ?, ?, ?, ?, ?, ?, 10)",
            [(t, team_of[t], *MONTHS[m], m, code, basis, value) for t, m, code, basis, value in INDICATOR_VALUES],
        )
        # a team row is not a technician
        con.execute(
            "insert into intermediate.int_indicator_values values ('team', 'x', 'x', 'month', '2026-05-01', "
            "'2026-05-31', '2026-05', 'csat', null, 0.0, 100)"
        )
        con.execute(
            "create table staging.stg_training_courses__courses (course_id varchar, title varchar, topic varchar, "
            "course_hours double, indicator_codes varchar, is_onboarding boolean)"
        )
        con.executemany("insert into staging.stg_training_courses__courses values (?, ?, ?, ?, ?, ?)", COURSES)
        con.execute(
            "create table staging.stg_training_sessions__sessions (session_id varchar, course_id varchar, "
            "starts_at timestamp, ends_at timestamp, trainer varchar, capacity integer, status varchar, "
            "updated_at timestamp)"
        )
        con.executemany(
            "insert into staging.stg_training_sessions__sessions values (?, ?, ?, ?, 'Trainer', ?, ?, ?)",
            [(*s, s[2]) for s in SESSIONS],
        )
        con.execute(
            "create table staging.stg_training_attendance__attendance (session_id varchar, technician_id varchar, "
            "is_attended boolean, pre_score double, post_score double, is_passed boolean, feedback_score integer)"
        )
        con.executemany(
            "insert into staging.stg_training_attendance__attendance values (?, ?, ?, ?, ?, ?, ?)", ATTENDANCE
        )
        # dim_customers inputs (core model, built with its service history for the warranty status)
        con.execute(
            "create table staging.stg_customers__customers (customer_id varchar, customer_name_masked varchar, "
            "phone_pseudonym varchar, city varchar, segment varchar, created_at timestamp)"
        )
        con.executemany(
            "insert into staging.stg_customers__customers values (?, '张*', 'h', 'Shanghai', 'consumer', '2025-01-01')",
            [(c,) for c in ("c1", "c2", "c3", "c4", "c5")],
        )
        con.execute(
            "create table staging.stg_purchases__purchases (purchase_id varchar, customer_id varchar, "
            "product_id varchar, purchased_at timestamp, warranty_until date, amount double)"
        )
        con.executemany(
            "insert into staging.stg_purchases__purchases values (?, ?, 'p1', '2025-06-15 10:00', ?, 100)",
            [
                ("u1", "c1", "2026-06-15"),
                ("u2", "c2", "2026-06-14"),
                ("u4", "c4", None),
                ("u5", "c5", "2026-01-31"),
                ("u6", "c5", "2027-06-30"),
            ],
        )
        con.execute(
            "create table marts.fct_service_tickets (ticket_id varchar, customer_id varchar, created_at timestamp)"
        )
        con.execute(
            "insert into marts.fct_service_tickets values ('k1', 'c1', '2026-05-01 10:00'), "
            "('k2', 'c1', '2026-06-01 10:00')"
        )
        con.execute("create table marts.fct_complaints (complaint_id varchar, customer_id varchar)")
        con.execute("insert into marts.fct_complaints values ('m1', 'c1')")
        con.execute(
            "create table marts.fct_survey_responses (response_id varchar, customer_id varchar, overall_score integer)"
        )
        con.execute("insert into marts.fct_survey_responses values ('r1', 'c1', 4), ('r2', 'c1', 5)")
    finally:
        con.close()


def _dbt(project: Path, data: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SERVICESCORE_DATA_DIR": str(data), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", **extra_env}
    return subprocess.run(
        [str(DBT), *args, "--project-dir", str(project), "--profiles-dir", str(project)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("training")
    project = root / "dbt_project"
    shutil.copytree(PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "dbt_packages", "logs"))
    seeds = project / "seeds"
    (seeds / "indicator_settings.csv").write_text(INDICATOR_SETTINGS, encoding="utf-8")
    (seeds / "training_settings.csv").write_text(TRAINING_SETTINGS, encoding="utf-8")
    (seeds / "training_course_mapping.csv").write_text(COURSE_MAPPING, encoding="utf-8")
    data = root / "data"
    data.mkdir()
    database = data / "warehouse.duckdb"
    _write_upstream(database)
    result = _dbt(
        project, data, "build", "--select", "tag:training", "indicator_settings", "--vars", f"{{as_of_date: '{AS_OF}'}}"
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    return database, project, data


@pytest.fixture(scope="module")
def warehouse(built: tuple[Path, Path, Path]) -> Path:
    return built[0]


def _rows(database: Path, sql: str) -> list[dict]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


def _needs(database: Path) -> dict[tuple[str, str, str, str], dict]:
    rows = _rows(database, "select * from marts.training_needs")
    return {(r["technician_id"], r["period_label"], r["need_reason"], r["need_subject"]): r for r in rows}


# ---------------------------------------------------------------------------------------------- needs


def test_exactly_the_hand_computed_needs(warehouse: Path) -> None:
    needs = _needs(warehouse)
    assert sorted(needs) == [
        ("t1", "2026-04", "below_threshold", "csat"),
        ("t2", "2026-04", "bottom_quartile", "csat"),
        ("t3", "2026-04", "below_threshold", "avg_handling_time"),
        ("t4", "2026-04", "below_threshold", "reopen_rate"),
        ("t4", "2026-04", "failed_course_retake", "C_SVC"),
        ("t5", "2026-04", "failed_course_retake", "C_TECH"),
        ("t6", "2026-04", "below_threshold", "nps"),
        ("t7", "2026-04", "new_hire_onboarding", "C_ONB"),
    ]
    # May: t5 passed C_TECH on 05-05, t7 attended onboarding on 05-10; t6 (hired exactly 60 days before
    # 04-30) is outside the window; t7's csat is not rated; comprehensive and quarter rows are not read
    assert all(r["reason_detail"] for r in needs.values())
    assert needs[("t1", "2026-04", "below_threshold", "csat")]["need_id"] == "t1|2026-04|below_threshold|csat"


def test_below_threshold_need_higher_and_lower_is_better(warehouse: Path) -> None:
    needs = _needs(warehouse)
    csat = needs[("t1", "2026-04", "below_threshold", "csat")]
    assert csat["gap"] == pytest.approx(0.10)  # 0.60 - 0.50
    assert csat["gap_to_target"] == pytest.approx(0.40)
    assert csat["reference_value"] == pytest.approx(0.6)
    assert (csat["priority"], csat["priority_rank"]) == ("high", 1)
    assert csat["recommended_course_id"] == "C_SVC"
    assert csat["recommended_course_title"] == "Service etiquette"
    assert csat["reason_detail"] == "csat 0.5 below threshold 0.6 (gap 0.1)"
    aht = needs[("t3", "2026-04", "below_threshold", "avg_handling_time")]
    assert aht["gap"] == pytest.approx(1.5)  # 9.5 - 8 (lower is better)
    assert aht["gap_to_target"] == pytest.approx(5.5)
    assert aht["hours_basis"] == "business"
    assert aht["recommended_course_id"] == "C_TECH"
    reopen = needs[("t4", "2026-04", "below_threshold", "reopen_rate")]
    assert reopen["gap"] == pytest.approx(0.1)
    assert reopen["recommended_course_id"] is None
    assert reopen["has_recommended_course"] is False


def test_bottom_quartile_need(warehouse: Path) -> None:
    # 6 rated csat values worst first 0.50, 0.65, 0.70, 0.80, 0.92, 0.95; position 1 + 0.25 x 5 = 2.25 ->
    # boundary 0.65 + 0.25 x (0.70 - 0.65) = 0.6625. t1 (0.50) is below threshold (that need only), t2 (0.65)
    # is in the bottom group. avg_handling_time has 3 rated (< 4): no bottom-group rule.
    need = _needs(warehouse)[("t2", "2026-04", "bottom_quartile", "csat")]
    assert need["reference_value"] == pytest.approx(0.6625)
    assert need["gap"] == pytest.approx(0.0125)
    assert need["rated_count"] == 6
    assert (need["priority"], need["priority_rank"]) == ("low", 3)
    assert need["recommended_course_id"] == "C_SVC"


def test_new_hire_and_failed_retake_needs(warehouse: Path) -> None:
    needs = _needs(warehouse)
    hire = needs[("t7", "2026-04", "new_hire_onboarding", "C_ONB")]
    assert hire["days_since_hire"] == 10  # 2026-04-20 -> 2026-04-30
    assert (hire["priority"], hire["recommended_course_id"]) == ("medium", "C_ONB")
    assert hire["reason_detail"] == ("hired 2026-04-20 (10 days before the period end), no onboarding course attended")
    retake = needs[("t5", "2026-04", "failed_course_retake", "C_TECH")]
    assert retake["failed_session_id"] == "S_T1"
    assert retake["failed_post_score"] == 55.0
    assert (retake["priority"], retake["recommended_course_id"]) == ("high", "C_TECH")
    assert needs[("t4", "2026-04", "failed_course_retake", "C_SVC")]["failed_session_id"] == "S_S1"


# ---------------------------------------------------------------------------------------------- plan


def test_coverage_and_uncovered_needs(warehouse: Path) -> None:
    coverage = {r["need_id"]: r for r in _rows(warehouse, "select * from marts.training_plan_coverage")}
    assert {k: (r["session_id"], r["seat_number"]) for k, r in coverage.items()} == {
        # S_S3 (05-20, 20 days after 04-30): seats by priority then technician: t1, t4 (high), t2 (low)
        "t1|2026-04|below_threshold|csat": ("S_S3", 1),
        "t4|2026-04|failed_course_retake|C_SVC": ("S_S3", 2),
        "t2|2026-04|bottom_quartile|csat": ("S_S3", 3),
        # S_T2 has one seat: t3 and t5 are both high priority, t3 first by id
        "t3|2026-04|below_threshold|avg_handling_time": ("S_T2", 1),
        "t7|2026-04|new_hire_onboarding|C_ONB": ("S_ONB1", 1),
    }
    onboarding = coverage["t7|2026-04|new_hire_onboarding|C_ONB"]
    assert (onboarding["is_enrolled"], onboarding["is_attended"], onboarding["days_after_period_end"]) == (
        True,
        True,
        10,
    )
    uncovered = {
        r["need_id"]: (r["uncovered_reason"], r["candidate_session_id"])
        for r in _rows(warehouse, "select * from marts.training_needs_uncovered")
    }
    assert uncovered == {
        "t5|2026-04|failed_course_retake|C_TECH": ("capacity_full", "S_T2"),
        "t4|2026-04|below_threshold|reopen_rate": ("no_recommended_course", None),
        "t6|2026-04|below_threshold|nps": ("no_session_in_horizon", None),  # S_N1 is 76 days after
    }


def test_plan_sessions_goals_and_schedule(warehouse: Path) -> None:
    plan = {r["session_id"]: r for r in _rows(warehouse, "select * from marts.training_plan")}
    assert sorted(plan) == ["S_N1", "S_ONB1", "S_S1", "S_S3", "S_T0", "S_T1", "S_T2"]  # no cancelled
    s3 = plan["S_S3"]
    assert (s3["covered_needs_count"], s3["covered_technicians_count"], s3["seats_left_for_needs"]) == (3, 3, 2)
    assert s3["goal"] == "csat >= 0.9"
    assert s3["content_category"] == "service"
    tech = plan["S_T2"]
    assert tech["goal"] == "avg_handling_time <= 4.0; csat >= 0.9"
    assert tech["goal_indicator_codes"] == "avg_handling_time;csat"
    assert (tech["enrolled_count"], tech["seats_left_for_needs"]) == (1, 0)
    assert [s for s, r in plan.items() if r["is_behind_schedule"]] == ["S_T0"]


# ---------------------------------------------------------------------------------------------- evaluation


def test_session_evaluation_attendance_pass_rate_and_gain(warehouse: Path) -> None:
    rows = {r["session_id"]: r for r in _rows(warehouse, "select * from marts.training_session_evaluation")}
    s = rows["S_T1"]
    # t5 (40 -> 55, failed), t6 (60 -> 80, passed), t2 (attended, no post-test), t1 absent
    assert (s["enrolled_count"], s["attended_count"], s["completed_count"], s["passed_count"]) == (4, 3, 2, 1)
    assert s["attendance_rate"] == pytest.approx(0.75)
    assert s["completion_rate"] == pytest.approx(0.5)
    assert s["pass_rate"] == pytest.approx(0.5)
    assert (s["mean_pre_score"], s["mean_post_score"], s["mean_score_gain"]) == pytest.approx((50.0, 67.5, 17.5))
    assert s["mean_feedback_score"] == pytest.approx(11 / 3)  # 3, 4, 4 (absent t1 not counted)
    assert s["is_behind_schedule"] is False
    t0 = rows["S_T0"]
    assert (t0["is_behind_schedule"], t0["days_behind_schedule"]) == (True, 103)  # 2026-02-01 -> 05-15
    assert t0["enrolled_count"] == 0 and t0["attendance_rate"] is None
    assert rows["S_C1"]["status"] == "cancelled" and rows["S_C1"]["is_behind_schedule"] is False


def test_course_evaluation_from_all_attendance(warehouse: Path) -> None:
    rows = {r["course_id"]: r for r in _rows(warehouse, "select * from marts.training_course_evaluation")}
    c = rows["C_TECH"]
    assert (
        c["sessions_count"],
        c["held_sessions_count"],
        c["planned_sessions_count"],
        c["behind_schedule_sessions_count"],
    ) == (3, 2, 1, 1)
    assert (c["enrolled_count"], c["attended_count"], c["trained_technicians_count"]) == (5, 4, 3)
    assert c["attendance_rate"] == pytest.approx(0.8)
    assert c["completion_rate"] == pytest.approx(0.6)  # t5 twice, t6
    assert c["pass_rate"] == pytest.approx(2 / 3)  # t6, t5 at S_T2
    # pairs (40, 55), (60, 80), (55, 75)
    assert c["mean_pre_score"] == pytest.approx(155 / 3)
    assert c["mean_post_score"] == pytest.approx(70.0)
    assert c["mean_score_gain"] == pytest.approx(55 / 3)
    assert c["mean_feedback_score"] == pytest.approx(4.0)  # 3, 4, 4, 5


# ---------------------------------------------------------------------------------------------- outcome


def _outcome(database: Path, course: str, code: str) -> dict:
    rows = _rows(
        database, f"select * from marts.training_outcome where course_id = '{course}' and indicator_code = '{code}'"
    )
    assert len(rows) == 1
    return rows[0]


def test_difference_in_differences(warehouse: Path) -> None:
    # cohort April (S_S1: t2, t4); before = March, after = May (April and February ignored)
    # trained: t2 0.60 -> 0.80, t4 0.70 -> 0.80: before 0.65, after 0.80, change +0.15
    # control (never attended C_SVC, values in both months): t1 0.50 -> 0.55, t3 0.70 -> 0.70,
    # t5 0.90 -> 0.95 (t6 has no May value): before 0.70, after 0.7333, change +0.0333
    o = _outcome(warehouse, "C_SVC", "csat")
    assert (o["trained_count"], o["control_count"], o["cohorts_count"]) == (2, 3, 1)
    assert o["trained_before_mean"] == pytest.approx(0.65)
    assert o["trained_after_mean"] == pytest.approx(0.80)
    assert o["control_before_mean"] == pytest.approx(0.70)
    assert o["control_after_mean"] == pytest.approx(2.2 / 3)
    assert o["diff_in_diff"] == pytest.approx(0.15 - 0.1 / 3)
    assert o["improvement"] == pytest.approx(0.15 - 0.1 / 3)
    assert o["is_improved"] is True
    assert o["is_insufficient"] is False


def test_insufficient_group_and_lower_is_better(warehouse: Path) -> None:
    # cohort March (S_T1: t5, t6, t2 attended; t1 enrolled but absent is a control); business hours only
    # trained with values: t6 6 -> 4 (change -2); control: t1 5 -> 5, t3 9 -> 8 (mean change -0.5)
    o = _outcome(warehouse, "C_TECH", "avg_handling_time")
    assert (o["trained_count"], o["control_count"]) == (1, 2)
    assert o["hours_basis"] == "business"
    assert o["trained_change"] == pytest.approx(-2.0)
    assert o["control_change"] == pytest.approx(-0.5)
    assert o["diff_in_diff"] == pytest.approx(-1.5)
    assert o["improvement"] == pytest.approx(1.5)  # lower is better
    assert o["is_improved"] is True
    assert o["is_insufficient"] is True  # 1 trained < min_group_size 2
    # no trained technician with values at all
    nps = _outcome(warehouse, "C_NPS", "nps")
    assert (nps["trained_count"], nps["control_count"], nps["is_insufficient"]) == (0, 0, True)
    assert nps["diff_in_diff"] is None and nps["is_improved"] is None


# ---------------------------------------------------------------------------------------------- GE suites


def test_suites_pass_on_the_build_and_catch_broken_rows(warehouse: Path, tmp_path: Path) -> None:
    suites = {s.name: s for s in training_suites()}
    for suite in suites.values():
        result = run_suite(warehouse, suite, "good", None, store=False)
        assert result.failed_errors == 0, (suite.name, [d.description for d in result.failed])
    # the only warning: S_T0 is behind schedule
    plan = run_suite(warehouse, suites["training_plan"], "good", None, store=False)
    assert [d.description for d in plan.failed] == [
        "no planned session is behind schedule (start date passed, not held)"
    ]

    broken = tmp_path / "broken.duckdb"
    shutil.copy(warehouse, broken)
    con = duckdb.connect(str(broken))
    try:
        con.execute("update marts.training_needs set need_reason = null where technician_id = 't7'")
        con.execute(
            "update marts.training_session_evaluation set mean_score_gain = mean_score_gain + 1, "
            "pass_rate = 1.5 where session_id = 'S_T1'"
        )
    finally:
        con.close()
    needs = run_suite(broken, suites["training_needs"], "bad", None, store=False)
    assert "every need has a reason" in {d.description for d in needs.failed if d.severity == "error"}
    sessions = run_suite(broken, suites["training_session_evaluation"], "bad", None, store=False)
    failed = {d.description for d in sessions.failed}
    assert "mean_score_gain = mean_post_score - mean_pre_score (gain consistent with the pre/post scores)" in failed
    assert "pass_rate is a rate within 0..1" in failed


# ---------------------------------------------------------------------------------------------- warranty


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        (
            "2026-06-15",
            {"c1": "in_warranty", "c2": "expired", "c3": "no_purchase", "c4": "no_warranty", "c5": "in_warranty"},
        ),
        (
            "2026-06-16",
            {"c1": "expired", "c2": "expired", "c3": "no_purchase", "c4": "no_warranty", "c5": "in_warranty"},
        ),
        ("2027-07-01", {"c1": "expired", "c2": "expired", "c3": "no_purchase", "c4": "no_warranty", "c5": "expired"}),
    ],
)
def test_warranty_status_at_a_date(built: tuple[Path, Path, Path], as_of: str, expected: dict) -> None:
    database, project, data = built
    result = _dbt(
        project,
        data,
        "run",
        "--select",
        "int_customer_service_history",
        "dim_customers",
        "--vars",
        f"{{as_of_date: '{as_of}'}}",
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    rows = _rows(
        database,
        "select customer_id, warranty_status, warranty_as_of_date, active_warranties_count from marts.dim_customers",
    )
    assert {r["customer_id"]: r["warranty_status"] for r in rows} == expected
    assert {str(r["warranty_as_of_date"]) for r in rows} == {as_of}
    # c5: one purchase expired 2026-01-31, one covered until 2027-06-30
    c5 = next(r for r in rows if r["customer_id"] == "c5")
    assert c5["active_warranties_count"] == (0 if as_of == "2027-07-01" else 1)


def test_warranty_as_of_date_pinned_by_the_environment(built: tuple[Path, Path, Path]) -> None:
    """SERVICESCORE_AS_OF_DATE pins the as-of date of a whole pipeline run (the orchestration passes no --vars),
    so that two runs on the same landing files give the same dim_customers whatever day they run on."""
    database, project, data = built
    result = _dbt(
        project,
        data,
        "run",
        "--select",
        "int_customer_service_history",
        "dim_customers",
        SERVICESCORE_AS_OF_DATE="2026-06-16",
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    rows = _rows(
        database,
        "select customer_id, warranty_status, cast(warranty_as_of_date as varchar) as d from marts.dim_customers",
    )
    assert {r["d"] for r in rows} == {"2026-06-16"}
    assert {r["customer_id"]: r["warranty_status"] for r in rows}["c1"] == "expired"  # covered until 2026-06-15
    bad = _dbt(project, data, "run", "--select", "dim_customers", SERVICESCORE_AS_OF_DATE="16/06/2026")
    assert bad.returncode != 0 and "SERVICESCORE_AS_OF_DATE" in bad.stdout


# ---------------------------------------------------------------------------------------------- settings


def test_a_second_settings_row_fails_the_build(tmp_path: Path) -> None:
    project = tmp_path / "dbt_project"
    shutil.copytree(PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "dbt_packages", "logs"))
    two_rows = TRAINING_SETTINGS + "comprehensive,0.25,4,60,45,1,2,business\n"
    (project / "seeds" / "training_settings.csv").write_text(two_rows, encoding="utf-8")
    data = tmp_path / "settings_data"
    data.mkdir()
    result = _dbt(project, data, "build", "--select", "training_settings", "int_training_settings")
    assert result.returncode != 0
    assert "FAIL 1 unique_int_training_settings_settings_key" in result.stdout
