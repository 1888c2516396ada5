"""The indicator catalogue (var `indicators` of dbt_project.yml, read through ingestion/indicator_catalogue.py) is
the one list of indicators: what derives from it derives, and what is written by hand beside it agrees with it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from expectations.suites import kpi_suite
from ingestion.indicator_catalogue import (
    CatalogueError,
    disagreements,
    evidence_rules,
    indicator,
    indicators,
    monthly_sums_read,
    units,
)
from ingestion.paths import DBT_PROJECT_DIR
from orchestration.settings.indicators import IndicatorSettingsError, validate_settings


def test_the_catalogue_lists_the_fifteen_indicators_of_the_appraisal_standard():
    codes = [i.code for i in indicators()]
    assert codes == [
        "csat",
        "customer_rating",
        "nps",
        "avg_handling_time",
        "mttr",
        "first_response_time",
        "sla_attainment",
        "service_attitude",
        "technical_level",
        "first_time_fix_rate",
        "reopen_rate",
        "complaint_acceptance_time",
        "problem_resolution_rate",
        "complaint_rate",
        "supervisor_review",
    ]
    durations = [i.code for i in indicators() if i.is_duration]
    assert durations == ["avg_handling_time", "mttr", "first_response_time", "complaint_acceptance_time"]
    assert indicator("mttr").value_columns == ("mttr_hours", "mttr_business_hours")
    assert indicator("nps").mart_columns == ("nps", "nps_n", "nps_promoters", "nps_passives", "nps_detractors")
    assert [i.code for i in indicators() if i.measured_from] == ["complaint_rate"]
    assert {i.code for i in indicators() if i.kind == "qualitative"} == {"supervisor_review"}


def test_docs_and_seed_agree_with_the_catalogue():
    assert disagreements() == []
    columns = tuple(c for i in indicators() for c in i.mart_columns)
    assert len(columns) == 37  # 11 single values, 4 durations (two bases), 15 samples, 3 NPS buckets
    read = set().union(*(monthly_sums_read(i) for i in indicators()))
    assert {"satisfied_count", "handling_business_hours_sum", "review_score_n", "reopen_n"} <= read


def test_a_doc_or_seed_that_disagrees_is_named(tmp_path: Path):
    project = tmp_path / "project"
    shutil.copytree(DBT_PROJECT_DIR / "models" / "marts" / "kpi", project / "models" / "marts" / "kpi")
    shutil.copytree(DBT_PROJECT_DIR / "models" / "intermediate" / "kpi", project / "models" / "intermediate" / "kpi")
    shutil.copytree(DBT_PROJECT_DIR / "seeds", project / "seeds")
    shutil.copy(DBT_PROJECT_DIR / "dbt_project.yml", project / "dbt_project.yml")
    marts = project / "models" / "marts" / "kpi" / "_kpi__models.yml"
    marts.write_text(
        marts.read_text(encoding="utf-8").replace("  - name: mttr_n\n", "  - name: mttr_count\n", 1), encoding="utf-8"
    )
    seed = project / "seeds" / "indicator_settings.csv"
    seed.write_text(
        "\n".join(line for line in seed.read_text(encoding="utf-8").splitlines() if not line.startswith("reopen_rate,"))
        + "\n",
        encoding="utf-8",
    )
    assert disagreements(project) == [
        "models/marts/kpi/_kpi__models.yml kpi_technician_monthly: columns must be the catalogue's in its order; "
        "missing ['mttr_n'], not in the catalogue ['mttr_count']",
        "seeds/indicator_settings.csv has no row for reopen_rate",
    ]


def test_evidence_rules_name_facts_with_a_source():
    sources = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))["vars"][
        "evidence_sources"
    ]
    rules = evidence_rules()
    assert len(rules) == 16  # complaint_rate has two: its resolved tickets and its complaints
    assert {r.fact for r in rules} == set(sources)
    assert [(r.fact, r.activity_date) for r in rules if r.indicator_code == "complaint_rate"] == [
        ("fct_service_tickets", "resolved_date"),
        ("fct_complaints", "received_date"),
    ]


def test_the_mart_suite_checks_each_value_against_its_unit():
    checks = {c.description for c in kpi_suite("kpi_team_monthly", ("team_id", "period_start")).checks}
    assert {
        "csat is a rate within 0..1",
        "supervisor_review is a rating within 1..5",
        "nps within -100..100",
        "complaint_rate >= 0",
        "complaint_acceptance_time_business_hours >= 0",
        "nps_n is a count >= 0",
        "each indicator value is null exactly when its count is 0",
    } <= checks
    ranged = [c for c in checks if c.endswith(("0..1", "1..5", "-100..100", ">= 0")) and "_n is a count" not in c]
    assert len(ranged) == 19  # 11 single values and 4 durations with two bases
    assert units()["score_1_5"].min == 1 and units()["score_1_5"].max == 5


def test_the_settings_validator_refuses_a_unit_or_kind_the_catalogue_contradicts(tmp_path: Path):
    seeds = tmp_path / "seeds"
    shutil.copytree(DBT_PROJECT_DIR / "seeds", seeds)
    path = seeds / "indicator_settings.csv"
    text = path.read_text(encoding="utf-8")
    text = text.replace(
        "mttr,故障平均修复时间,MTTR,processing_efficiency,quantitative,hours,",
        "mttr,故障平均修复时间,MTTR,processing_efficiency,quantitative,minutes,",
    )
    text = text.replace(
        "technical_level,技术水平,Technical level,service_quality,quantitative,",
        "technical_level,技术水平,Technical level,service_quality,qualitative,",
    )
    path.write_text(text, encoding="utf-8")
    with pytest.raises(IndicatorSettingsError) as err:
        validate_settings(seeds)
    message = str(err.value)
    assert "rule unit_catalogue: mttr is unit hours in the catalogue, not minutes" in message
    assert "rule kind_catalogue: technical_level is kind quantitative in the catalogue, not qualitative" in message


def _project_with(tmp_path: Path, change) -> Path:  # noqa: ANN001
    project = tmp_path / "project"
    project.mkdir()
    config = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    change(config["vars"])
    (project / "dbt_project.yml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return project


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda v: v["indicators"][0].update(unit="percent"), "indicator csat: unit must be one of"),
        (lambda v: v["indicators"][1].update(code="csat"), "indicator codes must be unique"),
        (
            lambda v: v["indicators"][4]["value"]["mean"].pop("business_n"),
            "indicator mttr: value.mean needs exactly ['sum', 'n', 'business_sum', 'business_n'] (unit hours)",
        ),
        (lambda v: v["indicators"][6].update(evidence=[]), "indicator sla_attainment: at least one evidence rule"),
        (
            lambda v: v["indicators"][6]["value"]["ratio"].update(denominator="sla n; drop table x"),
            "indicator sla_attainment: value.ratio.denominator must be a column name",
        ),
        (lambda v: v["indicators"][2].update(direction="up"), "indicator nps: direction must be one of"),
    ],
)
def test_a_malformed_catalogue_is_refused_naming_the_indicator(tmp_path: Path, change, message: str):  # noqa: ANN001
    project = _project_with(tmp_path, change)
    with pytest.raises(CatalogueError, match=None) as err:
        indicators(project)
    assert message in str(err.value)
