"""The appraisal models on a hand-made warehouse, with expectations worked out by hand.

The dbt project is copied to a temporary folder with test settings (seeds); the upstream tables the
appraisal reads (intermediate.int_indicator_values, intermediate.int_indicator_evidence,
marts.dim_technicians, marts.dim_teams) are written by hand into a fresh DuckDB, and only the appraisal
nodes are built (``dbt build --select tag:appraisal``: seeds, models, data tests and unit tests).

Test settings (slope 2 points per 1 % of the threshold, min rated weight share 0.6, at most 25 % A per team):

    method         csat (h)  avg_handling_time (l, business)  reopen_rate (l)  supervisor_review (h)
    quantitative   40        30                               30               -
    qualitative    -         -                                -                100
    comprehensive  28        21                               21               30
    targets / thresholds: csat 0.90 / 0.75 (0.95 / 0.75 from 2026-07-01), aht 16 / 32 h, reopen 0.05 / 0.10,
    supervisor_review 4.5 / 3.5; min_sample 5 (supervisor_review 1).

Team x: t1, t2, t3, t4, t5 and t10 (moved from y to x on 2026-05-20); team y: t6, t7;
t8 left on 2026-04-30, t9 was hired on 2026-06-15.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from orchestration.settings.indicators import validate_settings

pytestmark = pytest.mark.dbt

PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
DBT = Path(sys.executable).parent / "dbt"

_CSAT = "csat,满意率,CSAT,customer_satisfaction,quantitative,fraction,higher,"
_AHT = "avg_handling_time,平均处理时长,AHT,processing_efficiency,quantitative,hours,lower,business"
_REOPEN = "reopen_rate,返修率,Reopen rate,service_quality,quantitative,fraction,lower,"
_REVIEW = "supervisor_review,主管评价,Supervisor review,qualitative,qualitative,score_1_5,higher,"
INDICATOR_SETTINGS = (
    "\n".join(
        [
            "indicator_code,name_zh,name_en,category,kind,unit,direction,hours_basis,"
            "method,target,threshold,weight,min_sample,effective_from,effective_to",
            f"{_CSAT},quantitative,0.9,0.75,40,5,2026-01-01,2026-06-30",
            f"{_CSAT},quantitative,0.95,0.75,40,5,2026-07-01,",
            f"{_AHT},quantitative,16,32,30,5,2026-01-01,",
            f"{_REOPEN},quantitative,0.05,0.1,30,5,2026-01-01,",
            f"{_REVIEW},qualitative,4.5,3.5,100,1,2026-01-01,",
            f"{_CSAT},comprehensive,0.9,0.75,28,5,2026-01-01,2026-06-30",
            f"{_CSAT},comprehensive,0.95,0.75,28,5,2026-07-01,",
            f"{_AHT},comprehensive,16,32,21,5,2026-01-01,",
            f"{_REOPEN},comprehensive,0.05,0.1,21,5,2026-01-01,",
            f"{_REVIEW},comprehensive,4.5,3.5,30,1,2026-01-01,",
        ]
    )
    + "\n"
)
APPRAISAL_SETTINGS = """\
effective_from,effective_to,below_threshold_slope,min_rated_weight_share,forced_a_max_share
2026-01-01,,2,0.6,0.25
"""
GRADE_BANDS = """\
grade,grade_name_zh,grade_name_en,min_score
A,优秀,excellent,90
B,良好,good,80
C,合格,qualified,60
D,待改进,needs improvement,0
"""

TECHNICIANS = [
    # technician_id, valid_from, valid_to (exclusive), team_id, hire_date, leave_date
    ("t1", "2025-01-01", "9999-12-31", "x", "2025-01-01", None),
    ("t2", "2025-01-01", "9999-12-31", "x", "2025-01-01", None),
    ("t3", "2025-01-01", "9999-12-31", "x", "2025-01-01", None),
    ("t4", "2025-01-01", "9999-12-31", "x", "2025-01-01", None),
    ("t5", "2025-01-01", "9999-12-31", "x", "2025-01-01", None),
    ("t6", "2025-01-01", "9999-12-31", "y", "2025-01-01", None),
    ("t7", "2025-01-01", "9999-12-31", "y", "2025-01-01", None),
    ("t8", "2025-01-01", "9999-12-31", "y", "2025-01-01", "2026-04-30"),
    ("t9", "2026-06-15", "9999-12-31", "y", "2026-06-15", None),
    ("t10", "2025-01-01", "2026-05-20", "y", "2025-01-01", None),
    ("t10", "2026-05-20", "9999-12-31", "x", "2025-01-01", None),
]

PERIODS = {
    "2026-05": ("month", "2026-05-01", "2026-05-31"),
    "2026-06": ("month", "2026-06-01", "2026-06-30"),
    "2026-07": ("month", "2026-07-01", "2026-07-31"),
    "2026-Q2": ("quarter", "2026-04-01", "2026-06-30"),
    "2026": ("year", "2026-01-01", "2026-12-31"),
}

# technician, period_label, indicator_code, hours_basis, value, sample_size
VALUES = [
    # t1: csat and aht at target, reopen below its minimum sample -> renormalised over 70
    ("t1", "2026-05", "csat", None, 0.9, 10),
    ("t1", "2026-05", "avg_handling_time", "business", 16.0, 10),
    ("t1", "2026-05", "avg_handling_time", "calendar", 50.0, 10),
    ("t1", "2026-05", "reopen_rate", None, 0.2, 4),
    ("t1", "2026-05", "supervisor_review", None, 4.5, 1),
    # t2: beyond every target
    ("t2", "2026-05", "csat", None, 0.95, 10),
    ("t2", "2026-05", "avg_handling_time", "business", 12.0, 10),
    ("t2", "2026-05", "reopen_rate", None, 0.02, 10),
    ("t2", "2026-05", "supervisor_review", None, 4.0, 1),
    # t3: at every target; no supervisor review
    ("t3", "2026-05", "csat", None, 0.9, 10),
    ("t3", "2026-05", "avg_handling_time", "business", 16.0, 10),
    ("t3", "2026-05", "reopen_rate", None, 0.05, 10),
    # t4: between target and threshold, and below threshold
    ("t4", "2026-05", "csat", None, 0.8, 10),
    ("t4", "2026-05", "avg_handling_time", "business", 24.0, 10),
    ("t4", "2026-05", "reopen_rate", None, 0.12, 10),
    ("t4", "2026-05", "supervisor_review", None, 3.0, 1),
    ("t4", "2026-06", "csat", None, 1.0, 1),  # June: the month of survey s3 (evidence is kept by month)
    # t5: only aht rated (weight 30 of 100) -> insufficient data
    ("t5", "2026-05", "csat", None, 0.9, 3),
    ("t5", "2026-05", "avg_handling_time", "business", 16.0, 10),
    ("t5", "2026-05", "supervisor_review", None, 4.5, 2),
    # t6: far below the thresholds
    ("t6", "2026-05", "csat", None, 0.6, 10),
    ("t6", "2026-05", "avg_handling_time", "business", 40.0, 10),
    ("t6", "2026-05", "reopen_rate", None, 0.2, 10),
    ("t6", "2026-05", "supervisor_review", None, 3.5, 1),
    # t7: good; also July (new csat target) and the year (old settings)
    ("t7", "2026-05", "csat", None, 0.85, 10),
    ("t7", "2026-05", "avg_handling_time", "business", 20.0, 10),
    ("t7", "2026-05", "reopen_rate", None, 0.06, 10),
    ("t7", "2026-05", "supervisor_review", None, 5.0, 1),
    ("t7", "2026-07", "csat", None, 0.9, 10),
    ("t7", "2026-07", "avg_handling_time", "business", 16.0, 10),
    ("t7", "2026-07", "reopen_rate", None, 0.05, 10),
    ("t7", "2026-Q2", "csat", None, 0.9, 30),
    ("t7", "2026", "csat", None, 0.9, 100),
    ("t7", "2026", "avg_handling_time", "business", 16.0, 100),
    ("t7", "2026", "reopen_rate", None, 0.05, 100),
    # t10: exactly at the thresholds
    ("t10", "2026-05", "csat", None, 0.75, 10),
    ("t10", "2026-05", "avg_handling_time", "business", 32.0, 10),
    ("t10", "2026-05", "reopen_rate", None, 0.1, 10),
    ("t10", "2026-05", "supervisor_review", None, 4.2, 1),
]

EVIDENCE = [
    # indicator_code, technician_id, team_id, activity_date, source_type, source_id
    ("csat", "t4", "x", "2026-05-03", "survey", "s1"),
    ("csat", "t4", "x", "2026-05-31", "survey", "s2"),
    ("csat", "t4", "x", "2026-06-01", "survey", "s3"),
    ("avg_handling_time", "t4", "x", "2026-05-10", "ticket", "k1"),
    ("reopen_rate", "t4", "x", "2026-05-10", "ticket", "k1"),
]


def _write_upstream(database: Path) -> None:
    con = duckdb.connect(str(database))
    try:
        con.execute("create schema intermediate")
        con.execute("create schema marts")
        con.execute(
            "create table marts.dim_technicians (technician_id varchar, valid_from date, valid_to date, "
            "team_id varchar, hire_date date, leave_date date, is_current boolean)"
        )
        con.executemany(
            "insert into marts.dim_technicians values (?, ?, ?, ?, ?, ?, ? = date '9999-12-31')",
            [(*t, t[2]) for t in TECHNICIANS],
        )
        con.execute("create table marts.dim_teams (team_id varchar, team_name varchar)")
        con.execute("insert into marts.dim_teams values ('x', 'Team X'), ('y', 'Team Y')")
        con.execute(
            "create table intermediate.int_indicator_values (subject_type varchar, subject_id varchar, "
            "team_id varchar, period_type varchar, period_start date, period_end date, period_label varchar, "
            "indicator_code varchar, hours_basis varchar, value double, sample_size bigint)"
        )
        team_of = {t[0]: t[3] for t in TECHNICIANS}
        con.executemany(
            "insert into intermediate.int_indicator_values values ('technician', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (tech, team_of[tech], *PERIODS[label], label, code, basis, value, n)
                for tech, label, code, basis, value, n in VALUES
            ],
        )
        # a team row must not be appraised as a technician
        con.execute(
            "insert into intermediate.int_indicator_values values ('team', 'x', 'x', 'month', '2026-05-01', "
            "'2026-05-31', '2026-05', 'csat', null, 0.5, 100)"
        )
        con.execute(
            "create table intermediate.int_indicator_evidence (indicator_code varchar, technician_id varchar, "
            "team_id varchar, activity_date date, source_type varchar, source_id varchar)"
        )
        con.executemany("insert into intermediate.int_indicator_evidence values (?, ?, ?, ?, ?, ?)", EVIDENCE)
    finally:
        con.close()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("appraisal")
    project = root / "dbt_project"
    shutil.copytree(PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "dbt_packages", "logs"))
    seeds = project / "seeds"
    (seeds / "indicator_settings.csv").write_text(INDICATOR_SETTINGS, encoding="utf-8")
    (seeds / "appraisal_settings.csv").write_text(APPRAISAL_SETTINGS, encoding="utf-8")
    (seeds / "grade_bands.csv").write_text(GRADE_BANDS, encoding="utf-8")
    validate_settings(seeds)  # the test settings themselves are valid
    data = root / "data"
    data.mkdir()
    database = data / "warehouse.duckdb"
    _write_upstream(database)
    env = {**os.environ, "SERVICESCORE_DATA_DIR": str(data), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    result = subprocess.run(
        [str(DBT), "build", "--project-dir", str(project), "--profiles-dir", str(project), "--select", "tag:appraisal"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    return database


def _rows(database: Path, sql: str) -> list[dict]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


def _scores(database: Path, label: str, method: str) -> dict[str, dict]:
    rows = _rows(
        database,
        f"select * from marts.appraisal_scores where period_label = '{label}' and method = '{method}'",
    )
    return {r["technician_id"]: r for r in rows}


def _breakdown(database: Path, tech: str, label: str, method: str) -> dict[str, dict]:
    rows = _rows(
        database,
        "select * from marts.appraisal_score_breakdown "
        f"where technician_id = '{tech}' and period_label = '{label}' and method = '{method}'",
    )
    return {r["indicator_code"]: r for r in rows}


def D(text: str) -> Decimal:  # noqa: N802
    return Decimal(text)


def test_one_row_per_active_technician_period_and_method(warehouse: Path) -> None:
    may = _scores(warehouse, "2026-05", "quantitative")
    # t8 left before May, t9 was hired after May
    assert sorted(may) == ["t1", "t10", "t2", "t3", "t4", "t5", "t6", "t7"]
    q2 = _scores(warehouse, "2026-Q2", "quantitative")
    assert sorted(q2) == ["t1", "t10", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9"]
    counts = _rows(
        warehouse,
        "select period_label, count(*) as n, count(distinct method) as methods from marts.appraisal_scores "
        "group by period_label order by period_label",
    )
    assert counts == [
        {"period_label": "2026", "n": 30, "methods": 3},  # t8 (left in April) and t9 (hired in June) too
        {"period_label": "2026-05", "n": 24, "methods": 3},
        {"period_label": "2026-06", "n": 27, "methods": 3},  # t9 hired on 2026-06-15
        {"period_label": "2026-07", "n": 27, "methods": 3},  # t9 hired in June
        {"period_label": "2026-Q2", "n": 30, "methods": 3},
    ]
    # the team at the end of the period: t10 moved from y to x on 2026-05-20
    assert may["t10"]["team_id"] == "x"


def test_curve_higher_and_lower_is_better(warehouse: Path) -> None:
    t2 = _breakdown(warehouse, "t2", "2026-05", "quantitative")
    t3 = _breakdown(warehouse, "t3", "2026-05", "quantitative")
    t4 = _breakdown(warehouse, "t4", "2026-05", "quantitative")
    t6 = _breakdown(warehouse, "t6", "2026-05", "quantitative")
    t10 = _breakdown(warehouse, "t10", "2026-05", "quantitative")
    # beyond the target (0.95 > 0.90; 12 h < 16 h; 0.02 < 0.05) and at the target: 100
    assert [t2[c]["score"] for c in ("csat", "avg_handling_time", "reopen_rate")] == [D("100.00")] * 3
    assert [t3[c]["score"] for c in ("csat", "avg_handling_time", "reopen_rate")] == [D("100.00")] * 3
    # at the threshold: 60
    assert [t10[c]["score"] for c in ("csat", "avg_handling_time", "reopen_rate")] == [D("60.00")] * 3
    # between: csat 0.80 -> 60 + 40 * 0.05 / 0.15 = 73.33; aht 24 h -> 60 + 40 * 8 / 16 = 80
    assert t4["csat"]["score"] == D("73.33")
    assert t4["avg_handling_time"]["score"] == D("80.00")
    # below: reopen 0.12 is 20 % above the threshold 0.10 -> 60 - 2 * 20 = 20
    assert t4["reopen_rate"]["score"] == D("20.00")
    # csat 0.60 is 20 % below 0.75 -> 20; aht 40 h is 25 % above 32 -> 10; reopen 0.20 is 100 % above -> 0
    assert (t6["csat"]["score"], t6["avg_handling_time"]["score"], t6["reopen_rate"]["score"]) == (
        D("20.00"),
        D("10.00"),
        D("0.00"),
    )
    # the business-hours value is scored, not the calendar one
    t1 = _breakdown(warehouse, "t1", "2026-05", "quantitative")
    assert t1["avg_handling_time"]["value"] == 16.0 and t1["avg_handling_time"]["hours_basis"] == "business"


def test_not_rated_and_renormalisation(warehouse: Path) -> None:
    t1 = _breakdown(warehouse, "t1", "2026-05", "quantitative")
    assert t1["reopen_rate"]["is_rated"] is False
    assert t1["reopen_rate"]["not_rated_reason"] == "below_min_sample"
    assert t1["reopen_rate"]["score"] is None
    assert (t1["reopen_rate"]["weight"], t1["reopen_rate"]["weight_used"], t1["reopen_rate"]["contribution"]) == (
        D("30"),
        D("0"),
        D("0"),
    )
    # 40 and 30 renormalised over 70
    assert t1["csat"]["weight_used"] == D("57.1429")
    assert t1["avg_handling_time"]["weight_used"] == D("42.8571")
    assert t1["csat"]["contribution"] == D("57.14")
    assert t1["avg_handling_time"]["contribution"] == D("42.86")
    scores = _scores(warehouse, "2026-05", "quantitative")
    assert scores["t1"]["composite_score"] == D("100.00")
    assert scores["t1"]["rated_weight"] == D("70")
    assert scores["t1"]["rated_weight_share"] == D("0.7")
    assert scores["t1"]["status"] == "graded"


def test_insufficient_data(warehouse: Path) -> None:
    scores = _scores(warehouse, "2026-05", "quantitative")
    t5 = scores["t5"]
    # only aht (30 of 100) is rated: 0.3 < 0.6
    assert t5["status"] == "insufficient_data"
    assert t5["rated_weight_share"] == D("0.3")
    assert t5["grade"] is None and t5["rank_in_team"] is None and t5["rank_overall"] is None
    assert t5["composite_score"] == D("100.00")
    breakdown = _breakdown(warehouse, "t5", "2026-05", "quantitative")
    assert breakdown["csat"]["not_rated_reason"] == "below_min_sample"
    assert breakdown["reopen_rate"]["not_rated_reason"] == "no_data"
    # qualitative: t3 has no supervisor review at all
    qualitative = _scores(warehouse, "2026-05", "qualitative")
    assert qualitative["t3"]["status"] == "insufficient_data"
    assert qualitative["t3"]["composite_score"] is None
    # July: only t7 has data
    july = _scores(warehouse, "2026-07", "quantitative")
    assert {t for t, r in july.items() if r["status"] == "graded"} == {"t7"}


def test_quantitative_method_grades_ties_and_forced_distribution(warehouse: Path) -> None:
    scores = _scores(warehouse, "2026-05", "quantitative")
    composite = {t: r["composite_score"] for t, r in scores.items()}
    assert composite == {
        "t1": D("100.00"),
        "t2": D("100.00"),
        "t3": D("100.00"),
        "t4": D("59.33"),  # 29.33 + 24.00 + 6.00
        "t5": D("100.00"),
        "t6": D("11.00"),  # 8.00 + 3.00 + 0.00
        "t7": D("89.27"),  # 34.67 + 27.00 + 27.60
        "t10": D("60.00"),  # 24.00 + 18.00 + 18.00
    }
    # team x has 5 graded technicians: at most floor(0.25 * 5) = 1 A. t1, t2 and t3 tie at 100;
    # tie rule: more rated weight first (t2, t3: 100 > t1: 70), then technician_id: t2, t3, t1
    order = {t: scores[t]["tie_order_in_team"] for t in ("t1", "t2", "t3", "t10", "t4")}
    assert order == {"t2": 1, "t3": 2, "t1": 3, "t10": 4, "t4": 5}
    grades = {t: (r["band_grade"], r["grade"], r["is_forced_down"]) for t, r in scores.items()}
    assert grades == {
        "t1": ("A", "B", True),
        "t2": ("A", "A", False),
        "t3": ("A", "B", True),
        "t4": ("D", "D", False),
        "t5": (None, None, False),
        "t6": ("D", "D", False),
        "t7": ("B", "B", False),
        "t10": ("C", "C", False),
    }
    assert scores["t1"]["grade_name_zh"] == "良好" and scores["t2"]["grade_name_zh"] == "优秀"
    assert scores["t4"]["grade_name_zh"] == "待改进" and scores["t10"]["grade_name_zh"] == "合格"
    # standard competition ranks on the composite
    assert {t: r["rank_in_team"] for t, r in scores.items()} == {
        "t1": 1,
        "t2": 1,
        "t3": 1,
        "t10": 4,
        "t4": 5,
        "t5": None,
        "t7": 1,
        "t6": 2,
    }
    assert {t: r["rank_overall"] for t, r in scores.items()} == {
        "t1": 1,
        "t2": 1,
        "t3": 1,
        "t7": 4,
        "t10": 5,
        "t4": 6,
        "t6": 7,
        "t5": None,
    }
    reward = _rows(
        warehouse,
        "select technician_id, method, composite_score from marts.appraisal_reward_list "
        "where period_label = '2026-05' order by method, technician_id",
    )
    assert reward == [
        {"technician_id": "t1", "method": "comprehensive", "composite_score": D("100.00")},
        {"technician_id": "t1", "method": "qualitative", "composite_score": D("100.00")},
        {"technician_id": "t2", "method": "quantitative", "composite_score": D("100.00")},
    ]


def test_qualitative_method_and_technician_id_tie_rule(warehouse: Path) -> None:
    scores = _scores(warehouse, "2026-05", "qualitative")
    assert {t: r["composite_score"] for t, r in scores.items() if r["status"] == "graded"} == {
        "t1": D("100.00"),
        "t2": D("80.00"),
        "t4": D("31.43"),  # 3.0 is 14.29 % below 3.5: 60 - 28.57
        "t5": D("100.00"),
        "t6": D("60.00"),
        "t7": D("100.00"),
        "t10": D("88.00"),  # 60 + 40 * 0.7 / 1.0
    }
    # t1 and t5 tie on score and rated weight: technician_id decides, t5 is pushed down to B
    assert (scores["t1"]["grade"], scores["t5"]["grade"], scores["t5"]["band_grade"]) == ("A", "B", "A")
    # team y has 2 graded technicians: floor(0.25 * 2) = 0 A allowed
    assert (scores["t7"]["band_grade"], scores["t7"]["grade"], scores["t7"]["is_forced_down"]) == ("A", "B", True)


def test_comprehensive_method(warehouse: Path) -> None:
    scores = _scores(warehouse, "2026-05", "comprehensive")
    t4 = _breakdown(warehouse, "t4", "2026-05", "comprehensive")
    # 73.33 * 0.28 = 20.53; 80 * 0.21 = 16.80; 20 * 0.21 = 4.20; 31.43 * 0.30 = 9.43
    assert {c: r["contribution"] for c, r in t4.items()} == {
        "csat": D("20.53"),
        "avg_handling_time": D("16.80"),
        "reopen_rate": D("4.20"),
        "supervisor_review": D("9.43"),
    }
    assert scores["t4"]["composite_score"] == D("50.96")
    assert scores["t4"]["grade"] == "D"
    # t7: 86.67 * 0.28 = 24.27; 90 * 0.21 = 18.90; 92 * 0.21 = 19.32; 100 * 0.30 = 30 -> 92.49, A band,
    # forced down to B (team y allows no A)
    assert scores["t7"]["composite_score"] == D("92.49")
    assert (scores["t7"]["band_grade"], scores["t7"]["grade"]) == ("A", "B")
    # t3 has no supervisor review: 70 of 100 rated, graded over the quantitative indicators only
    assert scores["t3"]["rated_weight_share"] == D("0.7") and scores["t3"]["composite_score"] == D("100.00")
    # t1: 100 on csat, aht and the review, reopen not rated: 100 x 28 / 79 = 35.443, 100 x 21 / 79 = 26.582,
    # 100 x 30 / 79 = 37.975 sum to 100; floored they give 99.99 and the missing cent goes to the largest
    # remainder (the review): 35.44 + 26.58 + 37.98 = 100.00, not 99.99
    t1 = _breakdown(warehouse, "t1", "2026-05", "comprehensive")
    assert [t1[c]["contribution"] for c in ("csat", "avg_handling_time", "supervisor_review")] == [
        D("35.44"),
        D("26.58"),
        D("37.98"),
    ]
    assert scores["t1"]["composite_score"] == D("100.00")
    # t1 and t3 tie at 100 in team x: more rated weight (79 > 70) keeps the only A
    assert (scores["t1"]["grade"], scores["t3"]["grade"], scores["t3"]["is_forced_down"]) == ("A", "B", True)


def test_contributions_sum_to_composite_exactly(warehouse: Path) -> None:
    mismatches = _rows(
        warehouse,
        "select s.appraisal_id from marts.appraisal_scores as s "
        "left join (select appraisal_id, sum(contribution) as total from marts.appraisal_score_breakdown "
        "group by appraisal_id) as b on s.appraisal_id = b.appraisal_id "
        "where coalesce(s.composite_score, 0) <> coalesce(b.total, 0)",
    )
    assert mismatches == []


def test_settings_changed_mid_year(warehouse: Path) -> None:
    # July 2026 uses the csat target 0.95 in force from 2026-07-01: 0.90 -> 60 + 40 * 0.15 / 0.20 = 90
    july = _breakdown(warehouse, "t7", "2026-07", "quantitative")
    assert (july["csat"]["target"], july["csat"]["score"]) == (0.95, D("90.00"))
    assert _scores(warehouse, "2026-07", "quantitative")["t7"]["composite_score"] == D("96.00")
    assert str(_scores(warehouse, "2026-07", "quantitative")["t7"]["settings_effective_from"]) == "2026-07-01"
    # the year starts on 2026-01-01: scored with the settings in force then (target 0.90 -> 100)
    year = _breakdown(warehouse, "t7", "2026", "quantitative")
    assert (year["csat"]["target"], year["csat"]["score"]) == (0.9, D("100.00"))
    assert str(_scores(warehouse, "2026", "quantitative")["t7"]["settings_effective_from"]) == "2026-01-01"


def test_improvement_list(warehouse: Path) -> None:
    rows = _rows(
        warehouse,
        "select technician_id, improvement_reason, weakness_rank, indicator_code, score, gap_to_target, "
        "recommended_training_topic from marts.appraisal_improvement_list "
        "where period_label = '2026-05' and method = 'quantitative' order by technician_id, weakness_rank",
    )
    t4 = [r for r in rows if r["technician_id"] == "t4"]
    assert [(r["indicator_code"], r["score"], r["recommended_training_topic"]) for r in t4] == [
        ("reopen_rate", D("20.00"), "service_quality"),
        ("csat", D("73.33"), "customer_satisfaction"),
        ("avg_handling_time", D("80.00"), "processing_efficiency"),
    ]
    assert {r["improvement_reason"] for r in t4} == {"grade_d_and_below_threshold"}
    assert [round(r["gap_to_target"], 6) for r in t4] == [0.07, 0.1, 8.0]
    # t6 (D, all below threshold); t10 is at the thresholds, not below: not a case
    assert sorted({r["technician_id"] for r in rows}) == ["t4", "t6"]


def test_evidence_within_the_period(warehouse: Path) -> None:
    rows = _rows(
        warehouse,
        "select period_type, period_label, indicator_code, source_type, source_id, activity_date "
        "from marts.appraisal_evidence where technician_id = 't4' order by period_label, indicator_code, source_id",
    )
    may = [(r["indicator_code"], r["source_id"]) for r in rows if r["period_label"] == "2026-05"]
    assert may == [("avg_handling_time", "k1"), ("csat", "s1"), ("csat", "s2"), ("reopen_rate", "k1")]
    # month grain only: the evidence of 2026-Q2 is that of its months (join on activity_date in the period)
    assert {r["period_type"] for r in rows} == {"month"}
    q2 = [
        r["source_id"]
        for r in rows
        if r["indicator_code"] == "csat" and dt.date(2026, 4, 1) <= r["activity_date"] <= dt.date(2026, 6, 30)
    ]
    assert q2 == ["s1", "s2", "s3"]
    assert not [r for r in rows if r["period_label"] == "2026-07"]
