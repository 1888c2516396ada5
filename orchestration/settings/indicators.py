"""Validation of the appraisal settings (docs/architecture.md, "Appraisal and scoring") before dbt scores
anything.

The business edits three CSV files in ``dbt_project/seeds/`` (loaded as dbt seeds into ``reference``):

``indicator_settings.csv``  one row per indicator, method and effective period::

    indicator_code, name_zh, name_en, category, kind, unit, direction, hours_basis, method,
    target, threshold, weight, min_sample, effective_from, effective_to

``appraisal_settings.csv``  scoring settings, one row per effective period::

    effective_from, effective_to, below_threshold_slope, min_rated_weight_share, forced_a_max_share

``grade_bands.csv``  grade bands::

    grade, grade_name_zh, grade_name_en, min_score

``sla_targets.csv``  resolution target per ticket priority, one row for each of P1..P4::

    priority, target_hours, hours_basis

``training_settings.csv``  training management settings, exactly one row::

    appraisal_method, bottom_quartile_share, bottom_quartile_min_rated, onboarding_window_days,
    coverage_horizon_days, outcome_window_months, min_group_size, outcome_hours_basis

``training_course_mapping.csv``  the course recommended per indicator, at most one row per indicator::

    indicator_code, course_id

Numbers and dates are written with ASCII digits: Python reads full-width (``１００``) or Arabic-Indic (``١٠٠``)
digits as numbers, but `dbt seed` does not, so they are refused here with the row.

``validate_settings(path_or_dir)`` checks them and returns the indicator rows; any broken rule raises
``IndicatorSettingsError`` whose message names the file, the row (the line number in the file, the header
being row 1) and the rule. All violations are reported at once.

This module only reads the small settings files; it never builds SQL from their text (identifiers are
checked against ``^[a-z][a-z0-9_]*$`` so that nothing else reaches the warehouse).
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from ingestion.indicator_catalogue import CATEGORIES, DIRECTIONS, KINDS, Indicator, indicators
from ingestion.paths import DBT_PROJECT_DIR


def _unknown_indicator(code: str, catalogue: dict[str, Indicator]) -> str:
    return f"indicator_code {code!r} is not one of the {len(catalogue)} catalogue indicators"


INDICATOR_SETTINGS_FILE = "indicator_settings.csv"
APPRAISAL_SETTINGS_FILE = "appraisal_settings.csv"
GRADE_BANDS_FILE = "grade_bands.csv"
SLA_TARGETS_FILE = "sla_targets.csv"
TRAINING_SETTINGS_FILE = "training_settings.csv"
COURSE_MAPPING_FILE = "training_course_mapping.csv"


# The indicators are the catalogue's (ingestion/indicator_catalogue.py, var `indicators` of dbt_project.yml):
# settings may only name its codes and may not contradict its direction, kind, unit or duration.
HOURS_BASES = ("business", "calendar")
METHODS = ("quantitative", "qualitative", "comprehensive")
# which indicator kinds a method may weigh
METHOD_KINDS: dict[str, tuple[str, ...]] = {
    "quantitative": ("quantitative",),
    "qualitative": ("qualitative",),
    "comprehensive": ("quantitative", "qualitative"),
}
GRADES = ("A", "B", "C", "D")

INDICATOR_COLUMNS = (
    "indicator_code",
    "name_zh",
    "name_en",
    "category",
    "kind",
    "unit",
    "direction",
    "hours_basis",
    "method",
    "target",
    "threshold",
    "weight",
    "min_sample",
    "effective_from",
    "effective_to",
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

IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
# what `dbt seed` reads as a number / a date: ASCII digits only
ASCII_NUMBER = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")
ASCII_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
WEIGHT_TOTAL = Decimal(100)
WEIGHT_TOLERANCE = Decimal("0.0001")


class IndicatorSettingsError(ValueError):
    """A settings file breaks a rule. ``violations`` holds one message per broken rule."""

    def __init__(self, violations: list[str]):
        self.violations = list(violations)
        super().__init__(
            f"{len(self.violations)} settings violation(s):\n" + "\n".join(f"- {v}" for v in self.violations)
        )


@dataclass(frozen=True)
class SettingRow:
    """One validated row of indicator_settings.csv."""

    row_number: int
    indicator_code: str
    name_zh: str
    name_en: str
    category: str
    kind: str
    unit: str
    direction: str
    hours_basis: str | None
    method: str
    target: Decimal
    threshold: Decimal
    weight: Decimal
    min_sample: int
    effective_from: date
    effective_to: date | None

    def in_force_on(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)


class _Collector:
    def __init__(self, file_name: str):
        self.file_name = file_name
        self.violations: list[str] = []

    def add(self, row: int | str, rule: str, message: str) -> None:
        self.violations.append(f"{self.file_name} row {row}: rule {rule}: {message}")


def _read_csv(path: Path, expected: tuple[str, ...], out: _Collector) -> list[tuple[int, dict[str, str]]]:
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        out.add(1, "encoding", "the file starts with a byte-order mark; save it as UTF-8 without BOM")
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        out.add("?", "encoding", f"the file is not UTF-8 ({exc.reason} at byte {exc.start})")
        return []
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None:
        out.add(1, "columns", "the file is empty")
        return []
    header = [h.strip() for h in header]
    missing = [c for c in expected if c not in header]
    unexpected = [c for c in header if c not in expected]
    if missing or unexpected:
        out.add(1, "columns", f"missing columns {missing}, unexpected columns {unexpected}; expected {list(expected)}")
        return []
    rows = []
    for line_number, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            out.add(line_number, "columns", f"{len(values)} fields, the header has {len(header)}")
            continue
        rows.append((line_number, {h: v.strip() for h, v in zip(header, values, strict=True)}))
    if not rows:
        out.add(2, "not_empty", "the file has no data rows")
    return rows


def _has_non_ascii_digit(value: str) -> bool:
    return any(ch.isdigit() and not "0" <= ch <= "9" for ch in value)


def _non_ascii_digits(value: str, row: int, column: str, out: _Collector) -> bool:
    if _has_non_ascii_digit(value):
        out.add(
            row,
            "ascii_digits",
            f"{column} {value!r} has digits other than 0-9 (full-width or another script); write it with ASCII digits",
        )
        return True
    return False


def _decimal(value: str, row: int, column: str, out: _Collector) -> Decimal | None:
    if _non_ascii_digits(value, row, column, out):
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        out.add(row, "number", f"{column} {value!r} is not a number")
        return None
    if not number.is_finite():
        out.add(row, "number", f"{column} {value!r} is not a finite number")
        return None
    if not ASCII_NUMBER.match(value):  # e.g. '1_000', which Decimal reads and dbt seed does not
        out.add(row, "number", f"{column} {value!r} is not a number")
        return None
    return number


def _whole(value: str, row: int, column: str, minimum: int, maximum: int | None, out: _Collector) -> int | None:
    number = _decimal(value, row, column, out)
    if number is None:
        return None
    shown = f"at least {minimum}" if maximum is None else f"within {minimum}..{maximum}"
    if number != number.to_integral_value() or "." in value or "e" in value.lower():
        out.add(row, "whole_number", f"{column} {value!r} must be a whole number {shown}")
        return None
    if number < minimum or (maximum is not None and number > maximum):
        out.add(row, "range", f"{column} {value} must be a whole number {shown}")
        return None
    return int(number)


def _date(value: str, row: int, column: str, out: _Collector) -> date | None:
    if _non_ascii_digits(value, row, column, out):
        return None
    try:
        if not ASCII_DATE.match(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        out.add(row, "date", f"{column} {value!r} is not a date YYYY-MM-DD")
        return None


def _check_chain(rows: list[tuple[int, date, date | None]], what: str, out: _Collector) -> None:
    """Effective periods of one key must follow each other without gap or overlap."""
    rows = sorted(rows, key=lambda r: (r[1], r[0]))
    for (prev_row, prev_from, prev_to), (row, start, _end) in zip(rows, rows[1:], strict=False):
        if prev_to is None or start <= prev_to:
            shown_to = "open" if prev_to is None else prev_to.isoformat()
            out.add(
                row,
                "effective_period_overlap",
                f"{what} effective from {start.isoformat()} overlaps row {prev_row} "
                f"({prev_from.isoformat()} to {shown_to})",
            )
        elif start != prev_to + timedelta(days=1):
            out.add(
                row,
                "effective_period_gap",
                f"{what} effective from {start.isoformat()} leaves a gap after row {prev_row} "
                f"(effective_to {prev_to.isoformat()}): no settings from "
                f"{(prev_to + timedelta(days=1)).isoformat()} to {(start - timedelta(days=1)).isoformat()}",
            )


def _check_identifier(value: str, row: int, column: str, out: _Collector) -> bool:
    if not IDENTIFIER.match(value):
        out.add(row, "identifier", f"{column} {value!r} is not a plain name matching ^[a-z][a-z0-9_]*$")
        return False
    return True


def _check_one_of(value: str, allowed: tuple[str, ...], row: int, column: str, out: _Collector) -> bool:
    if value not in allowed:
        out.add(row, f"allowed_{column}", f"{column} {value!r} is not one of {list(allowed)}")
        return False
    return True


def _validate_indicator_row(
    line: int, rec: dict[str, str], out: _Collector, catalogue: dict[str, Indicator]
) -> SettingRow | None:
    ok = True
    for column in ("indicator_code", "category", "kind", "unit", "direction", "method"):
        ok &= _check_identifier(rec[column], line, column, out)
    if rec["hours_basis"]:
        ok &= _check_identifier(rec["hours_basis"], line, "hours_basis", out)
    if not ok:
        return None
    for column in ("name_zh", "name_en"):
        if not rec[column]:
            out.add(line, "name_required", f"{column} is empty")
            ok = False
    code = rec["indicator_code"]
    spec = catalogue.get(code)
    if spec is None:
        out.add(line, "unknown_indicator", _unknown_indicator(code, catalogue))
        ok = False
    ok &= _check_one_of(rec["category"], CATEGORIES, line, "category", out)
    ok &= _check_one_of(rec["kind"], KINDS, line, "kind", out)
    ok &= _check_one_of(rec["direction"], DIRECTIONS, line, "direction", out)
    ok &= _check_one_of(rec["method"], METHODS, line, "method", out)
    if spec is not None and rec["direction"] in DIRECTIONS and rec["direction"] != spec.direction:
        out.add(
            line,
            "direction_catalogue",
            f"{code} is {spec.direction}-is-better in the catalogue, not {rec['direction']}",
        )
        ok = False
    for column in ("kind", "unit"):
        if spec is not None and rec[column] != getattr(spec, column):
            out.add(
                line,
                f"{column}_catalogue",
                f"{code} is {column} {getattr(spec, column)} in the catalogue, not {rec[column]}",
            )
            ok = False
    hours_basis = rec["hours_basis"] or None
    if spec is not None:
        if spec.is_duration and hours_basis not in HOURS_BASES:
            out.add(line, "hours_basis", f"{code} is a duration: hours_basis must be one of {list(HOURS_BASES)}")
            ok = False
        if not spec.is_duration and hours_basis is not None:
            out.add(line, "hours_basis", f"{code} is not a duration: hours_basis must be empty")
            ok = False
    if rec["method"] in METHODS and rec["kind"] in KINDS and rec["kind"] not in METHOD_KINDS[rec["method"]]:
        out.add(line, "method_kind", f"method {rec['method']} cannot weigh a {rec['kind']} indicator")
        ok = False

    target = _decimal(rec["target"], line, "target", out)
    threshold = _decimal(rec["threshold"], line, "threshold", out)
    weight = _decimal(rec["weight"], line, "weight", out)
    min_sample_number = _decimal(rec["min_sample"], line, "min_sample", out)
    if None in (target, threshold, weight, min_sample_number):
        return None
    assert target is not None and threshold is not None and weight is not None
    assert min_sample_number is not None
    if rec["direction"] == "higher" and not target > threshold:
        out.add(
            line,
            "target_vs_threshold",
            f"{code} is higher-is-better: target {target} must be above threshold {threshold}",
        )
        ok = False
    if rec["direction"] == "lower" and not target < threshold:
        out.add(
            line,
            "target_vs_threshold",
            f"{code} is lower-is-better: target {target} must be below threshold {threshold}",
        )
        ok = False
    if threshold == 0:
        out.add(line, "threshold_nonzero", "threshold must not be 0 (the slope below it is per % of the threshold)")
        ok = False
    if weight <= 0:
        out.add(line, "weight_positive", f"weight {weight} must be greater than 0")
        ok = False
    if min_sample_number != min_sample_number.to_integral_value() or min_sample_number <= 0:
        out.add(line, "min_sample_positive", f"min_sample {rec['min_sample']} must be a positive whole number")
        ok = False
    effective_from = _date(rec["effective_from"], line, "effective_from", out)
    effective_to = _date(rec["effective_to"], line, "effective_to", out) if rec["effective_to"] else None
    if effective_from is None or (rec["effective_to"] and effective_to is None):
        return None
    if effective_to is not None and effective_to < effective_from:
        out.add(
            line, "effective_period_order", f"effective_to {effective_to} is before effective_from {effective_from}"
        )
        ok = False
    if not ok:
        return None
    return SettingRow(
        row_number=line,
        indicator_code=code,
        name_zh=rec["name_zh"],
        name_en=rec["name_en"],
        category=rec["category"],
        kind=rec["kind"],
        unit=rec["unit"],
        direction=rec["direction"],
        hours_basis=hours_basis,
        method=rec["method"],
        target=target,
        threshold=threshold,
        weight=weight,
        min_sample=int(min_sample_number),
        effective_from=effective_from,
        effective_to=effective_to,
    )


def _check_weights(rows: list[SettingRow], out: _Collector) -> None:
    """Within a method, the rows in force on any day must weigh 100 in total.

    The sum can only change on a day some row starts or the day after some row ends, so those days are checked.
    """
    by_method: dict[str, list[SettingRow]] = defaultdict(list)
    for row in rows:
        by_method[row.method].append(row)
    for method, method_rows in sorted(by_method.items()):
        first_day = min(r.effective_from for r in method_rows)
        days = {r.effective_from for r in method_rows}
        days |= {r.effective_to + timedelta(days=1) for r in method_rows if r.effective_to is not None}
        for day in sorted(d for d in days if d >= first_day):
            in_force = [r for r in method_rows if r.in_force_on(day)]
            if not in_force:
                continue  # the method ends here: nothing to weigh
            total = sum((r.weight for r in in_force), Decimal(0))
            shown_total = format(total.normalize(), "f")
            if abs(total - WEIGHT_TOTAL) > WEIGHT_TOLERANCE:
                row_list = ", ".join(str(r.row_number) for r in sorted(in_force, key=lambda r: r.row_number))
                out.add(
                    row_list,
                    "weights_sum_100",
                    f"method {method}: the weights in force on {day.isoformat()} sum to {shown_total} (must be 100)",
                )
            # a code may appear only once per method on a day: caught by the overlap rule


def _validate_indicator_settings(path: Path, catalogue: dict[str, Indicator]) -> tuple[list[SettingRow], list[str]]:
    out = _Collector(path.name)
    rows: list[SettingRow] = []
    for line, rec in _read_csv(path, INDICATOR_COLUMNS, out):
        row = _validate_indicator_row(line, rec, out, catalogue)
        if row is not None:
            rows.append(row)
    if out.violations:
        return rows, out.violations
    chains: dict[tuple[str, str], list[tuple[int, date, date | None]]] = defaultdict(list)
    for row in rows:
        chains[(row.indicator_code, row.method)].append((row.row_number, row.effective_from, row.effective_to))
    for (code, method), chain in sorted(chains.items()):
        _check_chain(chain, f"{code} / method {method}", out)
    _check_weights(rows, out)
    return rows, out.violations


def _validate_appraisal_settings(path: Path) -> list[str]:
    out = _Collector(path.name)
    chain: list[tuple[int, date, date | None]] = []
    for line, rec in _read_csv(path, APPRAISAL_COLUMNS, out):
        slope = _decimal(rec["below_threshold_slope"], line, "below_threshold_slope", out)
        share = _decimal(rec["min_rated_weight_share"], line, "min_rated_weight_share", out)
        if slope is not None and slope <= 0:
            out.add(line, "slope_positive", f"below_threshold_slope {slope} must be greater than 0")
        if share is not None and not Decimal(0) < share <= Decimal(1):
            out.add(line, "share_range", f"min_rated_weight_share {share} must be a fraction in (0, 1]")
        if rec["forced_a_max_share"]:
            forced = _decimal(rec["forced_a_max_share"], line, "forced_a_max_share", out)
            if forced is not None and not Decimal(0) <= forced <= Decimal(1):
                out.add(
                    line,
                    "share_range",
                    f"forced_a_max_share {forced} must be a fraction in [0, 1] "
                    "(leave it empty for no forced distribution)",
                )
        start = _date(rec["effective_from"], line, "effective_from", out)
        end = _date(rec["effective_to"], line, "effective_to", out) if rec["effective_to"] else None
        if start is not None:
            if end is not None and end < start:
                out.add(line, "effective_period_order", f"effective_to {end} is before effective_from {start}")
            else:
                chain.append((line, start, end))
    if not out.violations:
        _check_chain(chain, "scoring settings", out)
    return out.violations


def _validate_grade_bands(path: Path) -> list[str]:
    out = _Collector(path.name)
    seen: dict[str, int] = {}
    scores: dict[Decimal, int] = {}
    records = _read_csv(path, GRADE_BAND_COLUMNS, out)
    for line, rec in records:
        grade = rec["grade"]
        if _check_one_of(grade, GRADES, line, "grade", out):
            if grade in seen:
                out.add(line, "grade_unique", f"grade {grade} is already defined in row {seen[grade]}")
            seen[grade] = line
        if not rec["grade_name_zh"] or not rec["grade_name_en"]:
            out.add(line, "name_required", "grade_name_zh and grade_name_en must not be empty")
        min_score = _decimal(rec["min_score"], line, "min_score", out)
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


def _validate_sla_targets(path: Path) -> list[str]:
    out = _Collector(path.name)
    seen: dict[str, int] = {}
    records = _read_csv(path, SLA_COLUMNS, out)
    for line, rec in records:
        priority = rec["priority"]
        if _check_one_of(priority, PRIORITIES, line, "priority", out):
            if priority in seen:
                out.add(line, "priority_unique", f"priority {priority} already has a target in row {seen[priority]}")
            else:
                seen[priority] = line
        target = _decimal(rec["target_hours"], line, "target_hours", out)
        if target is not None and target <= 0:
            out.add(line, "target_positive", f"target_hours {rec['target_hours']} must be greater than 0")
        _check_one_of(rec["hours_basis"], HOURS_BASES, line, "hours_basis", out)
    if records:
        missing = [p for p in PRIORITIES if p not in seen]
        if missing:
            out.add(1, "priorities_complete", f"priorities {missing} have no target (every ticket priority needs one)")
    return out.violations


def _validate_training_settings(path: Path) -> list[str]:
    out = _Collector(path.name)
    records = _read_csv(path, TRAINING_COLUMNS, out)
    for line, _rec in records[1:]:
        out.add(line, "one_row", f"the file must have exactly one settings row (row {records[0][0]} is it)")
    for line, rec in records[:1]:
        _check_one_of(rec["appraisal_method"], METHODS, line, "appraisal_method", out)
        share = _decimal(rec["bottom_quartile_share"], line, "bottom_quartile_share", out)
        if share is not None and not Decimal("0.01") <= share <= Decimal("0.5"):
            out.add(line, "range", f"bottom_quartile_share {rec['bottom_quartile_share']} must be within 0.01..0.5")
        for column, (minimum, maximum) in TRAINING_WHOLE_NUMBERS.items():
            _whole(rec[column], line, column, minimum, maximum, out)
        _check_one_of(rec["outcome_hours_basis"], HOURS_BASES, line, "outcome_hours_basis", out)
    return out.violations


def _validate_course_mapping(path: Path, catalogue: dict[str, Indicator]) -> list[str]:
    out = _Collector(path.name)
    seen: dict[str, int] = {}
    for line, rec in _read_csv(path, COURSE_MAPPING_COLUMNS, out):
        code = rec["indicator_code"]
        if code not in catalogue:
            out.add(line, "unknown_indicator", _unknown_indicator(code, catalogue))
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


# the optional files of the seeds directory, checked when present (the course mapping also with the catalogue)
OPTIONAL_FILES = (
    (APPRAISAL_SETTINGS_FILE, _validate_appraisal_settings),
    (GRADE_BANDS_FILE, _validate_grade_bands),
    (SLA_TARGETS_FILE, _validate_sla_targets),
    (TRAINING_SETTINGS_FILE, _validate_training_settings),
    (COURSE_MAPPING_FILE, None),
)


def validate_settings(path_or_dir: str | Path, project_dir: Path | None = None) -> list[SettingRow]:
    """Validate the appraisal settings and return the indicator setting rows.

    ``path_or_dir`` is either the ``indicator_settings.csv`` file (only it is checked) or the seeds directory
    holding ``indicator_settings.csv`` and, when present, ``appraisal_settings.csv``, ``grade_bands.csv``,
    ``sla_targets.csv``, ``training_settings.csv`` and ``training_course_mapping.csv``.
    The indicators are those of the catalogue of ``project_dir``: by default the dbt project the seeds
    directory belongs to (the folder above it, when it holds a dbt_project.yml), else this repository's.
    Raises ``IndicatorSettingsError`` listing every broken rule (file, row, rule, message).
    """
    path = Path(path_or_dir)
    if project_dir is None:
        above = (path if path.is_dir() else path.parent).parent
        project_dir = above if (above / "dbt_project.yml").is_file() else DBT_PROJECT_DIR
    catalogue = {i.code: i for i in indicators(project_dir)}
    violations: list[str] = []
    if path.is_dir():
        indicator_path = path / INDICATOR_SETTINGS_FILE
        if not indicator_path.is_file():
            raise IndicatorSettingsError([f"{INDICATOR_SETTINGS_FILE} row -: rule file_exists: not found in {path}"])
        rows, violations = _validate_indicator_settings(indicator_path, catalogue)
        for name, validate in OPTIONAL_FILES:
            if (path / name).is_file():
                violations += (
                    _validate_course_mapping(path / name, catalogue) if validate is None else validate(path / name)
                )
    elif path.is_file():
        rows, violations = _validate_indicator_settings(path, catalogue)
    else:
        raise IndicatorSettingsError([f"{path.name} row -: rule file_exists: {path} not found"])
    if violations:
        raise IndicatorSettingsError(violations)
    return rows
