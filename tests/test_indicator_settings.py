"""The settings validator: every rule fails with a message naming the file, the row and the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestion.indicator_catalogue import indicators
from orchestration.settings.indicators import (
    IndicatorSettingsError,
    validate_settings,
)

SEEDS_DIR = Path(__file__).resolve().parents[1] / "dbt_project" / "seeds"

HEADER = (
    "indicator_code,name_zh,name_en,category,kind,unit,direction,hours_basis,method,"
    "target,threshold,weight,min_sample,effective_from,effective_to"
)
CSAT = "csat,满意率,CSAT,customer_satisfaction,quantitative,fraction,higher,"
AHT = "avg_handling_time,平均处理时长,AHT,processing_efficiency,quantitative,hours,lower,business"
REVIEW = "supervisor_review,主管评价,Supervisor review,qualitative,qualitative,score_1_5,higher,"

# a valid file: row 2 csat 60, row 3 aht 40 (quantitative); row 4 review 100 (qualitative)
VALID_ROWS = [
    f"{CSAT},quantitative,0.9,0.75,60,5,2026-01-01,",
    f"{AHT},quantitative,16,32,40,5,2026-01-01,",
    f"{REVIEW},qualitative,4.5,3.5,100,1,2026-01-01,",
]


def _write(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "indicator_settings.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_valid_file(tmp_path: Path) -> None:
    rows = validate_settings(_write(tmp_path, VALID_ROWS))
    assert [(r.row_number, r.indicator_code, r.method, str(r.weight)) for r in rows] == [
        (2, "csat", "quantitative", "60"),
        (3, "avg_handling_time", "quantitative", "40"),
        (4, "supervisor_review", "qualitative", "100"),
    ]
    assert rows[1].hours_basis == "business" and rows[0].hours_basis is None
    assert rows[0].effective_to is None


def test_repository_settings_are_valid() -> None:
    rows = validate_settings(SEEDS_DIR)
    # every catalogue indicator is configured, each method weighs 100, and some settings change mid-year
    assert {r.indicator_code for r in rows} == {i.code for i in indicators()}
    assert {r.method for r in rows} == {"quantitative", "qualitative", "comprehensive"}
    assert any(str(r.effective_from) == "2026-07-01" for r in rows)


def test_effective_dated_change_is_valid(tmp_path: Path) -> None:
    rows = [
        f"{CSAT},quantitative,0.9,0.75,60,5,2026-01-01,2026-06-30",
        f"{CSAT},quantitative,0.95,0.75,60,5,2026-07-01,",
        *VALID_ROWS[1:],
    ]
    assert len(validate_settings(_write(tmp_path, rows))) == 4


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        pytest.param(
            [f"{CSAT},quantitative,0.9,0.75,50,5,2026-01-01,", *VALID_ROWS[1:]],
            "indicator_settings.csv row 2, 3: rule weights_sum_100: method quantitative: the weights in force "
            "on 2026-01-01 sum to 90 (must be 100)",
            id="weights_not_100",
        ),
        pytest.param(
            [
                f"{CSAT},quantitative,0.9,0.75,60,5,2026-01-01,2026-06-30",
                f"{CSAT},quantitative,0.95,0.75,50,5,2026-07-01,",
                *VALID_ROWS[1:],
            ],
            "indicator_settings.csv row 3, 4: rule weights_sum_100: method quantitative: the weights in force "
            "on 2026-07-01 sum to 90 (must be 100)",
            id="weights_not_100_after_a_change",
        ),
        pytest.param(
            [
                *VALID_ROWS,
                "cst,满意率,CSAT,customer_satisfaction,quantitative,fraction,higher,,quantitative,"
                "0.9,0.75,10,5,2026-01-01,",
            ],
            "indicator_settings.csv row 5: rule unknown_indicator: indicator_code 'cst' is not one of the 15 "
            "catalogue indicators",
            id="unknown_indicator",
        ),
        pytest.param(
            [f"{CSAT},quantitative,0.7,0.75,60,5,2026-01-01,", *VALID_ROWS[1:]],
            "indicator_settings.csv row 2: rule target_vs_threshold: csat is higher-is-better: target 0.7 must "
            "be above threshold 0.75",
            id="target_below_threshold_higher",
        ),
        pytest.param(
            [VALID_ROWS[0], f"{AHT},quantitative,32,16,40,5,2026-01-01,", VALID_ROWS[2]],
            "indicator_settings.csv row 3: rule target_vs_threshold: avg_handling_time is lower-is-better: "
            "target 32 must be below threshold 16",
            id="target_above_threshold_lower",
        ),
        pytest.param(
            [
                f"{CSAT},quantitative,0.9,0.75,60,5,2026-01-01,2026-06-30",
                f"{CSAT},quantitative,0.95,0.75,60,5,2026-07-05,",
                *VALID_ROWS[1:],
            ],
            "indicator_settings.csv row 3: rule effective_period_gap: csat / method quantitative effective from "
            "2026-07-05 leaves a gap after row 2 (effective_to 2026-06-30): no settings from 2026-07-01 to "
            "2026-07-04",
            id="gap",
        ),
        pytest.param(
            [
                f"{CSAT},quantitative,0.9,0.75,60,5,2026-01-01,2026-06-30",
                f"{CSAT},quantitative,0.95,0.75,60,5,2026-06-01,",
                *VALID_ROWS[1:],
            ],
            "indicator_settings.csv row 3: rule effective_period_overlap: csat / method quantitative effective "
            "from 2026-06-01 overlaps row 2 (2026-01-01 to 2026-06-30)",
            id="overlap",
        ),
        pytest.param(
            [
                f"{CSAT},quantitative,0.9,0.75,60,5,2026-01-01,",
                f"{CSAT},quantitative,0.95,0.75,60,5,2026-07-01,",
                *VALID_ROWS[1:],
            ],
            "indicator_settings.csv row 3: rule effective_period_overlap: csat / method quantitative effective "
            "from 2026-07-01 overlaps row 2 (2026-01-01 to open)",
            id="overlap_open_ended",
        ),
        pytest.param(
            [f"{CSAT},quantitative,0.9,0.75,60,0,2026-01-01,", *VALID_ROWS[1:]],
            "indicator_settings.csv row 2: rule min_sample_positive: min_sample 0 must be a positive whole number",
            id="min_sample_zero",
        ),
        pytest.param(
            [f"{CSAT},quantitative,0.9,0.75,60,-3,2026-01-01,", *VALID_ROWS[1:]],
            "indicator_settings.csv row 2: rule min_sample_positive: min_sample -3 must be a positive whole number",
            id="min_sample_negative",
        ),
        pytest.param(
            [
                VALID_ROWS[0],
                "avg_handling_time,平均处理时长,AHT,processing_efficiency,quantitative,hours;drop table x,"
                "lower,business,quantitative,16,32,40,5,2026-01-01,",
                VALID_ROWS[2],
            ],
            "indicator_settings.csv row 3: rule identifier: unit 'hours;drop table x' is not a plain name "
            "matching ^[a-z][a-z0-9_]*$",
            id="identifier_not_plain",
        ),
        pytest.param(
            [VALID_ROWS[0], f"{AHT},Quantitative,16,32,40,5,2026-01-01,", VALID_ROWS[2]],
            "indicator_settings.csv row 3: rule identifier: method 'Quantitative' is not a plain name",
            id="identifier_uppercase",
        ),
        pytest.param(
            [
                VALID_ROWS[0],
                "avg_handling_time,平均处理时长,AHT,processing_efficiency,quantitative,hours,lower,,"
                "quantitative,16,32,40,5,2026-01-01,",
                VALID_ROWS[2],
            ],
            "indicator_settings.csv row 3: rule hours_basis: avg_handling_time is a duration: hours_basis must be "
            "one of ['business', 'calendar']",
            id="duration_without_hours_basis",
        ),
        pytest.param(
            [
                VALID_ROWS[0],
                "avg_handling_time,平均处理时长,AHT,processing_efficiency,quantitative,hours,higher,"
                "business,quantitative,32,16,40,5,2026-01-01,",
                VALID_ROWS[2],
            ],
            "indicator_settings.csv row 3: rule direction_catalogue: avg_handling_time is lower-is-better in the "
            "catalogue, not higher",
            id="direction_contradicts_catalogue",
        ),
        pytest.param(
            [*VALID_ROWS[:2], f"{REVIEW},quantitative,4.5,3.5,100,1,2026-01-01,"],
            "indicator_settings.csv row 4: rule method_kind: method quantitative cannot weigh a qualitative indicator",
            id="method_kind",
        ),
        pytest.param(
            [f"{CSAT},quantitative,0.9,0.75,60,5,2026-13-01,", *VALID_ROWS[1:]],
            "indicator_settings.csv row 2: rule date: effective_from '2026-13-01' is not a date YYYY-MM-DD",
            id="bad_date",
        ),
        pytest.param(
            [f"{CSAT},quantitative,0.9,0.75,sixty,5,2026-01-01,", *VALID_ROWS[1:]],
            "indicator_settings.csv row 2: rule number: weight 'sixty' is not a number",
            id="bad_number",
        ),
    ],
)
def test_invalid_settings(tmp_path: Path, rows: list[str], expected: str) -> None:
    with pytest.raises(IndicatorSettingsError) as excinfo:
        validate_settings(_write(tmp_path, rows))
    assert any(v.startswith(expected) for v in excinfo.value.violations), excinfo.value.violations
    assert expected in str(excinfo.value)


def test_missing_column(tmp_path: Path) -> None:
    header = HEADER.replace(",min_sample", "")
    rows = [r.replace(",5,2026", ",2026").replace(",1,2026", ",2026") for r in VALID_ROWS]
    with pytest.raises(
        IndicatorSettingsError,
        match=r"indicator_settings.csv row 1: rule columns: missing "
        r"columns \['min_sample'\]",
    ):
        validate_settings(_write(tmp_path, rows, header=header))


def test_all_violations_reported_at_once(tmp_path: Path) -> None:
    rows = [f"{CSAT},quantitative,0.7,0.75,60,0,2026-01-01,", *VALID_ROWS[1:]]
    with pytest.raises(IndicatorSettingsError) as excinfo:
        validate_settings(_write(tmp_path, rows))
    rules = [v.split(": ")[1] for v in excinfo.value.violations]
    assert rules == ["rule target_vs_threshold", "rule min_sample_positive"]


def _seeds_dir(tmp_path: Path, appraisal: str, bands: str) -> Path:
    _write(tmp_path, VALID_ROWS)
    (tmp_path / "appraisal_settings.csv").write_text(appraisal, encoding="utf-8")
    (tmp_path / "grade_bands.csv").write_text(bands, encoding="utf-8")
    return tmp_path


APPRAISAL_OK = (
    "effective_from,effective_to,below_threshold_slope,min_rated_weight_share,forced_a_max_share\n"
    "2026-01-01,,2,0.6,0.2\n"
)
BANDS_OK = (
    "grade,grade_name_zh,grade_name_en,min_score\nA,优秀,excellent,90\nB,良好,good,80\nC,合格,ok,60\nD,待改进,bad,0\n"
)


def test_scoring_settings_valid(tmp_path: Path) -> None:
    assert len(validate_settings(_seeds_dir(tmp_path, APPRAISAL_OK, BANDS_OK))) == 3


@pytest.mark.parametrize(
    ("appraisal", "bands", "expected"),
    [
        pytest.param(
            APPRAISAL_OK.replace("2,0.6", "2,1.6"),
            BANDS_OK,
            "appraisal_settings.csv row 2: rule share_range: min_rated_weight_share 1.6 must be a fraction",
            id="share_out_of_range",
        ),
        pytest.param(
            APPRAISAL_OK.replace(",2,0.6", ",0,0.6"),
            BANDS_OK,
            "appraisal_settings.csv row 2: rule slope_positive: below_threshold_slope 0 must be greater than 0",
            id="slope_zero",
        ),
        pytest.param(
            APPRAISAL_OK + "2026-06-01,,2,0.6,\n",
            BANDS_OK,
            "appraisal_settings.csv row 3: rule effective_period_overlap: scoring settings effective from "
            "2026-06-01 overlaps row 2",
            id="scoring_overlap",
        ),
        pytest.param(
            APPRAISAL_OK,
            BANDS_OK.replace("B,良好,good,80", "B,良好,good,95"),
            "grade_bands.csv row 3: rule bands_descending: grade B min_score 95 must be below grade A min_score 90",
            id="bands_not_descending",
        ),
        pytest.param(
            APPRAISAL_OK,
            BANDS_OK.replace("D,待改进,bad,0", "D,待改进,bad,10"),
            "grade_bands.csv row 1: rule bands_cover_0: the lowest band must start at min_score 0",
            id="bands_not_from_0",
        ),
    ],
)
def test_invalid_scoring_settings(tmp_path: Path, appraisal: str, bands: str, expected: str) -> None:
    with pytest.raises(IndicatorSettingsError) as excinfo:
        validate_settings(_seeds_dir(tmp_path, appraisal, bands))
    assert expected in str(excinfo.value), excinfo.value.violations


# --- digits dbt seed cannot read; the SLA targets and training seeds ------------------------------------------


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        pytest.param(
            [f"{CSAT},quantitative,0.9,0.75,６０,5,2026-01-01,", *VALID_ROWS[1:]],
            "indicator_settings.csv row 2: rule ascii_digits: weight '６０' has digits other than 0-9 (full-width or "
            "another script); write it with ASCII digits",
            id="full_width_weight",
        ),
        pytest.param(
            [*VALID_ROWS[:2], f"{REVIEW},qualitative,4.5,3.5,١٠٠,1,2026-01-01,"],
            "indicator_settings.csv row 4: rule ascii_digits: weight '١٠٠' has digits other than 0-9 (full-width or "
            "another script); write it with ASCII digits",
            id="arabic_indic_weight",
        ),
        pytest.param(
            [f"{CSAT},quantitative,0.9,0.75,60,5,２026-01-01,", *VALID_ROWS[1:]],
            "indicator_settings.csv row 2: rule ascii_digits: effective_from '２026-01-01' has digits other than 0-9",
            id="full_width_date",
        ),
        pytest.param(
            [f"{CSAT},quantitative,0.9,0.75,6_0,5,2026-01-01,", *VALID_ROWS[1:]],
            "indicator_settings.csv row 2: rule number: weight '6_0' is not a number",
            id="underscore_number",
        ),
    ],
)
def test_digits_dbt_seed_cannot_read(tmp_path: Path, rows: list[str], expected: str) -> None:
    """Python's Decimal reads '１００' and '١٠٠' as 100; dbt seed does not: refused here, naming the row."""
    with pytest.raises(IndicatorSettingsError) as excinfo:
        validate_settings(_write(tmp_path, rows))
    assert [v for v in excinfo.value.violations if v.startswith(expected)], excinfo.value.violations


SLA_OK = "priority,target_hours,hours_basis\nP1,4,calendar\nP2,8,business\nP3,24,business\nP4,72,business\n"
TRAINING_OK = (
    "appraisal_method,bottom_quartile_share,bottom_quartile_min_rated,onboarding_window_days,coverage_horizon_days,"
    "outcome_window_months,min_group_size,outcome_hours_basis\n"
    "quantitative,0.25,8,90,90,2,5,business\n"
)
MAPPING_OK = "indicator_code,course_id\ncsat,TC04\navg_handling_time,TC02\n"


def _seeds(tmp_path: Path, sla: str = SLA_OK, training: str = TRAINING_OK, mapping: str = MAPPING_OK) -> Path:
    _write(tmp_path, VALID_ROWS)
    (tmp_path / "sla_targets.csv").write_text(sla, encoding="utf-8")
    (tmp_path / "training_settings.csv").write_text(training, encoding="utf-8")
    (tmp_path / "training_course_mapping.csv").write_text(mapping, encoding="utf-8")
    return tmp_path


def test_sla_and_training_seeds_valid(tmp_path: Path) -> None:
    assert len(validate_settings(_seeds(tmp_path))) == 3


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {"sla": SLA_OK + "P2,6,business\n"},
            ["sla_targets.csv row 6: rule priority_unique: priority P2 already has a target in row 3"],
            id="sla_duplicate_priority",
        ),
        pytest.param(
            {"sla": SLA_OK.replace("P3,24,", "P3,-24,")},
            ["sla_targets.csv row 4: rule target_positive: target_hours -24 must be greater than 0"],
            id="sla_negative_target",
        ),
        pytest.param(
            {"sla": SLA_OK.replace("P4,72,business\n", "")},
            [
                "sla_targets.csv row 1: rule priorities_complete: priorities ['P4'] have no target (every ticket "
                "priority needs one)"
            ],
            id="sla_missing_priority",
        ),
        pytest.param(
            {"sla": SLA_OK.replace("P1,4,calendar", "P1,４,wallclock")},
            [
                "sla_targets.csv row 2: rule ascii_digits: target_hours '４' has digits other than 0-9 (full-width or "
                "another script); write it with ASCII digits",
                "sla_targets.csv row 2: rule allowed_hours_basis: hours_basis 'wallclock' is not one of "
                "['business', 'calendar']",
            ],
            id="sla_full_width_and_basis",
        ),
        pytest.param(
            {"sla": SLA_OK.replace("P4,", "P5,")},
            [
                "sla_targets.csv row 5: rule allowed_priority: priority 'P5' is not one of ['P1', 'P2', 'P3', 'P4']",
                "sla_targets.csv row 1: rule priorities_complete: priorities ['P4'] have no target (every ticket "
                "priority needs one)",
            ],
            id="sla_unknown_priority",
        ),
        pytest.param(
            {"training": TRAINING_OK + "comprehensive,0.25,8,90,90,2,5,business\n"},
            ["training_settings.csv row 3: rule one_row: the file must have exactly one settings row (row 2 is it)"],
            id="training_two_rows",
        ),
        pytest.param(
            {
                "training": TRAINING_OK.replace(
                    "quantitative,0.25,8,90,90,2,5,business", "quality,0.75,1,٩٠,0,13,2.5,hourly"
                )
            },
            [
                "training_settings.csv row 2: rule allowed_appraisal_method: appraisal_method 'quality' is not one of "
                "['quantitative', 'qualitative', 'comprehensive']",
                "training_settings.csv row 2: rule range: bottom_quartile_share 0.75 must be within 0.01..0.5",
                "training_settings.csv row 2: rule range: bottom_quartile_min_rated 1 must be a whole number "
                "at least 2",
                "training_settings.csv row 2: rule ascii_digits: onboarding_window_days '٩٠' has digits other than 0-9 "
                "(full-width or another script); write it with ASCII digits",
                "training_settings.csv row 2: rule range: coverage_horizon_days 0 must be a whole number at least 1",
                "training_settings.csv row 2: rule range: outcome_window_months 13 must be a whole number within 1..12",
                "training_settings.csv row 2: rule whole_number: min_group_size '2.5' must be a whole number "
                "at least 1",
                "training_settings.csv row 2: rule allowed_outcome_hours_basis: outcome_hours_basis 'hourly' is not "
                "one of ['business', 'calendar']",
            ],
            id="training_every_rule",
        ),
        pytest.param(
            {"training": TRAINING_OK.replace(",min_group_size", ",min_group")},
            [
                "training_settings.csv row 1: rule columns: missing columns ['min_group_size'], unexpected columns "
                "['min_group']; expected ['appraisal_method', 'bottom_quartile_share', 'bottom_quartile_min_rated', "
                "'onboarding_window_days', 'coverage_horizon_days', 'outcome_window_months', 'min_group_size', "
                "'outcome_hours_basis']"
            ],
            id="training_missing_column",
        ),
        pytest.param(
            {"mapping": MAPPING_OK + "csat,TC05\nsla,TC06\nnps,TC 06\n"},
            [
                "training_course_mapping.csv row 4: rule indicator_unique: indicator csat already has a course "
                "in row 2 "
                "(one course per indicator)",
                "training_course_mapping.csv row 5: rule unknown_indicator: indicator_code 'sla' is not one of the 15 "
                "catalogue indicators",
                "training_course_mapping.csv row 6: rule course_id: course_id 'TC 06' is not a course id (letters, "
                "digits, _ or -, e.g. TC04)",
            ],
            id="mapping_rules",
        ),
    ],
)
def test_invalid_sla_and_training_seeds(tmp_path: Path, files: dict[str, str], expected: list[str]) -> None:
    with pytest.raises(IndicatorSettingsError) as excinfo:
        validate_settings(_seeds(tmp_path, **files))
    assert excinfo.value.violations == expected
