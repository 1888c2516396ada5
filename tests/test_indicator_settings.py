"""The settings validator: every rule fails with a message naming the file, the row and the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestration.indicator_settings import (
    INDICATORS,
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
    assert {r.indicator_code for r in rows} == set(INDICATORS)
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
            [*VALID_ROWS, "cst,满意率,CSAT,customer_satisfaction,quantitative,fraction,higher,,quantitative,"
                          "0.9,0.75,10,5,2026-01-01,"],
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
            [VALID_ROWS[0], "avg_handling_time,平均处理时长,AHT,processing_efficiency,quantitative,hours;drop table x,"
                            "lower,business,quantitative,16,32,40,5,2026-01-01,", VALID_ROWS[2]],
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
            [VALID_ROWS[0], "avg_handling_time,平均处理时长,AHT,processing_efficiency,quantitative,hours,lower,,"
                            "quantitative,16,32,40,5,2026-01-01,", VALID_ROWS[2]],
            "indicator_settings.csv row 3: rule hours_basis: avg_handling_time is a duration: hours_basis must be "
            "one of ['business', 'calendar']",
            id="duration_without_hours_basis",
        ),
        pytest.param(
            [VALID_ROWS[0], "avg_handling_time,平均处理时长,AHT,processing_efficiency,quantitative,hours,higher,"
                            "business,quantitative,32,16,40,5,2026-01-01,", VALID_ROWS[2]],
            "indicator_settings.csv row 3: rule direction_catalogue: avg_handling_time is lower-is-better in the "
            "catalogue, not higher",
            id="direction_contradicts_catalogue",
        ),
        pytest.param(
            [*VALID_ROWS[:2], f"{REVIEW},quantitative,4.5,3.5,100,1,2026-01-01,"],
            "indicator_settings.csv row 4: rule method_kind: method quantitative cannot weigh a qualitative "
            "indicator",
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
    with pytest.raises(IndicatorSettingsError, match=r"indicator_settings.csv row 1: rule columns: missing "
                                                     r"columns \['min_sample'\]"):
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
    "grade,grade_name_zh,grade_name_en,min_score\n"
    "A,优秀,excellent,90\nB,良好,good,80\nC,合格,ok,60\nD,待改进,bad,0\n"
)


def test_scoring_settings_valid(tmp_path: Path) -> None:
    assert len(validate_settings(_seeds_dir(tmp_path, APPRAISAL_OK, BANDS_OK))) == 3


@pytest.mark.parametrize(
    ("appraisal", "bands", "expected"),
    [
        pytest.param(
            APPRAISAL_OK.replace("2,0.6", "2,1.6"), BANDS_OK,
            "appraisal_settings.csv row 2: rule share_range: min_rated_weight_share 1.6 must be a fraction",
            id="share_out_of_range",
        ),
        pytest.param(
            APPRAISAL_OK.replace(",2,0.6", ",0,0.6"), BANDS_OK,
            "appraisal_settings.csv row 2: rule slope_positive: below_threshold_slope 0 must be greater than 0",
            id="slope_zero",
        ),
        pytest.param(
            APPRAISAL_OK + "2026-06-01,,2,0.6,\n", BANDS_OK,
            "appraisal_settings.csv row 3: rule effective_period_overlap: scoring settings effective from "
            "2026-06-01 overlaps row 2",
            id="scoring_overlap",
        ),
        pytest.param(
            APPRAISAL_OK, BANDS_OK.replace("B,良好,good,80", "B,良好,good,95"),
            "grade_bands.csv row 3: rule bands_descending: grade B min_score 95 must be below grade A min_score 90",
            id="bands_not_descending",
        ),
        pytest.param(
            APPRAISAL_OK, BANDS_OK.replace("D,待改进,bad,0", "D,待改进,bad,10"),
            "grade_bands.csv row 1: rule bands_cover_0: the lowest band must start at min_score 0",
            id="bands_not_from_0",
        ),
    ],
)
def test_invalid_scoring_settings(tmp_path: Path, appraisal: str, bands: str, expected: str) -> None:
    with pytest.raises(IndicatorSettingsError) as excinfo:
        validate_settings(_seeds_dir(tmp_path, appraisal, bands))
    assert expected in str(excinfo.value), excinfo.value.violations
