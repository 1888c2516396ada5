"""Validation of the appraisal seeds besides the indicator settings: appraisal_settings.csv, grade_bands.csv,
sla_targets.csv, training_settings.csv and training_course_mapping.csv (orchestration/settings/indicators.py
validates them together with indicator_settings.csv)."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

from ingestion.indicator_catalogue import Indicator
from orchestration.settings.csv_rules import (
    GRADES,
    HOURS_BASES,
    METHODS,
    Collector,
    check_chain,
    check_one_of,
    parse_date,
    parse_decimal,
    parse_whole,
    read_csv,
    unknown_indicator,
)

APPRAISAL_COLUMNS = (
    "effective_from",
    "effective_to",
    "below_threshold_slope",
    "min_rated_weight_share",
    "forced_a_max_share",
)
GRADE_BAND_COLUMNS = ("grade", "grade_name_zh", "grade_name_en", "min_score")
SLA_COLUMNS = ("priority", "target_hours", "hours_basis")
PRIORITIES = ("P1", "P2", "P3", "P4")
TRAINING_COLUMNS = (
    "appraisal_method",
    "bottom_quartile_share",
    "bottom_quartile_min_rated",
    "onboarding_window_days",
    "coverage_horizon_days",
    "outcome_window_months",
    "min_group_size",
    "outcome_hours_basis",
)
# whole-number training settings and their allowed range (the seed's dbt tests, dbt_project/seeds/_training__seeds.yml)
TRAINING_WHOLE_NUMBERS: dict[str, tuple[int, int | None]] = {
    "bottom_quartile_min_rated": (2, None),
    "onboarding_window_days": (1, None),
    "coverage_horizon_days": (1, None),
    "outcome_window_months": (1, 12),
    "min_group_size": (1, None),
}
COURSE_MAPPING_COLUMNS = ("indicator_code", "course_id")
COURSE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def validate_appraisal_settings(path: Path) -> list[str]:
    out = Collector(path.name)
    chain: list[tuple[int, date, date | None]] = []
    for line, rec in read_csv(path, APPRAISAL_COLUMNS, out):
        slope = parse_decimal(rec["below_threshold_slope"], line, "below_threshold_slope", out)
        share = parse_decimal(rec["min_rated_weight_share"], line, "min_rated_weight_share", out)
        if slope is not None and slope <= 0:
            out.add(line, "slope_positive", f"below_threshold_slope {slope} must be greater than 0")
        if share is not None and not Decimal(0) < share <= Decimal(1):
            out.add(line, "share_range", f"min_rated_weight_share {share} must be a fraction in (0, 1]")
        if rec["forced_a_max_share"]:
            forced = parse_decimal(rec["forced_a_max_share"], line, "forced_a_max_share", out)
            if forced is not None and not Decimal(0) <= forced <= Decimal(1):
                out.add(
                    line,
                    "share_range",
                    f"forced_a_max_share {forced} must be a fraction in [0, 1] "
                    "(leave it empty for no forced distribution)",
                )
        start = parse_date(rec["effective_from"], line, "effective_from", out)
        end = parse_date(rec["effective_to"], line, "effective_to", out) if rec["effective_to"] else None
        if start is not None:
            if end is not None and end < start:
                out.add(line, "effective_period_order", f"effective_to {end} is before effective_from {start}")
            else:
                chain.append((line, start, end))
    if not out.violations:
        check_chain(chain, "scoring settings", out)
    return out.violations


def validate_grade_bands(path: Path) -> list[str]:
    out = Collector(path.name)
    seen: dict[str, int] = {}
    scores: dict[Decimal, int] = {}
    records = read_csv(path, GRADE_BAND_COLUMNS, out)
    for line, rec in records:
        grade = rec["grade"]
        if check_one_of(grade, GRADES, line, "grade", out):
            if grade in seen:
                out.add(line, "grade_unique", f"grade {grade} is already defined in row {seen[grade]}")
            seen[grade] = line
        if not rec["grade_name_zh"] or not rec["grade_name_en"]:
            out.add(line, "name_required", "grade_name_zh and grade_name_en must not be empty")
        min_score = parse_decimal(rec["min_score"], line, "min_score", out)
        if min_score is None:
            continue
        if not Decimal(0) <= min_score <= Decimal(100):
            out.add(line, "score_range", f"min_score {min_score} must be within 0..100")
        scores[min_score] = line
    if records and not out.violations:
        missing = [g for g in GRADES if g not in seen]
        if missing:
            out.add(1, "grades_complete", f"grades {missing} have no band")
        if Decimal(0) not in scores:
            out.add(1, "bands_cover_0", "the lowest band must start at min_score 0")
        by_grade = sorted(((rec["grade"], Decimal(rec["min_score"]), line) for line, rec in records))
        for (g1, s1, _l1), (g2, s2, l2) in zip(by_grade, by_grade[1:], strict=False):
            if not s1 > s2:
                out.add(l2, "bands_descending", f"grade {g2} min_score {s2} must be below grade {g1} min_score {s1}")
    return out.violations


def validate_sla_targets(path: Path) -> list[str]:
    out = Collector(path.name)
    seen: dict[str, int] = {}
    records = read_csv(path, SLA_COLUMNS, out)
    for line, rec in records:
        priority = rec["priority"]
        if check_one_of(priority, PRIORITIES, line, "priority", out):
            if priority in seen:
                out.add(line, "priority_unique", f"priority {priority} already has a target in row {seen[priority]}")
            else:
                seen[priority] = line
        target = parse_decimal(rec["target_hours"], line, "target_hours", out)
        if target is not None and target <= 0:
            out.add(line, "target_positive", f"target_hours {rec['target_hours']} must be greater than 0")
        check_one_of(rec["hours_basis"], HOURS_BASES, line, "hours_basis", out)
    if records:
        missing = [p for p in PRIORITIES if p not in seen]
        if missing:
            out.add(1, "priorities_complete", f"priorities {missing} have no target (every ticket priority needs one)")
    return out.violations


def validate_training_settings(path: Path) -> list[str]:
    out = Collector(path.name)
    records = read_csv(path, TRAINING_COLUMNS, out)
    for line, _rec in records[1:]:
        out.add(line, "one_row", f"the file must have exactly one settings row (row {records[0][0]} is it)")
    for line, rec in records[:1]:
        check_one_of(rec["appraisal_method"], METHODS, line, "appraisal_method", out)
        share = parse_decimal(rec["bottom_quartile_share"], line, "bottom_quartile_share", out)
        if share is not None and not Decimal("0.01") <= share <= Decimal("0.5"):
            out.add(line, "range", f"bottom_quartile_share {rec['bottom_quartile_share']} must be within 0.01..0.5")
        for column, (minimum, maximum) in TRAINING_WHOLE_NUMBERS.items():
            parse_whole(rec[column], line, column, minimum, maximum, out)
        check_one_of(rec["outcome_hours_basis"], HOURS_BASES, line, "outcome_hours_basis", out)
    return out.violations


def validate_course_mapping(path: Path, catalogue: dict[str, Indicator]) -> list[str]:
    out = Collector(path.name)
    seen: dict[str, int] = {}
    for line, rec in read_csv(path, COURSE_MAPPING_COLUMNS, out):
        code = rec["indicator_code"]
        if code not in catalogue:
            out.add(line, "unknown_indicator", unknown_indicator(code, catalogue))
        elif code in seen:
            out.add(
                line,
                "indicator_unique",
                f"indicator {code} already has a course in row {seen[code]} (one course per indicator)",
            )
        else:
            seen[code] = line
        if not COURSE_ID.match(rec["course_id"]):
            out.add(
                line,
                "course_id",
                f"course_id {rec['course_id']!r} is not a course id (letters, digits, _ or -, e.g. TC04)",
            )
    return out.violations
