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

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from ingestion.indicator_catalogue import CATEGORIES, DIRECTIONS, KINDS, Indicator, indicators
from ingestion.paths import DBT_PROJECT_DIR
from orchestration.settings.csv_rules import (
    HOURS_BASES,
    METHODS,
    Collector,
    IndicatorSettingsError,
    check_chain,
    check_identifier,
    check_one_of,
    parse_date,
    parse_decimal,
    read_csv,
    unknown_indicator,
)
from orchestration.settings.seeds import (
    validate_appraisal_settings,
    validate_course_mapping,
    validate_grade_bands,
    validate_sla_targets,
    validate_training_settings,
)

INDICATOR_SETTINGS_FILE = "indicator_settings.csv"
APPRAISAL_SETTINGS_FILE = "appraisal_settings.csv"
GRADE_BANDS_FILE = "grade_bands.csv"
SLA_TARGETS_FILE = "sla_targets.csv"
TRAINING_SETTINGS_FILE = "training_settings.csv"
COURSE_MAPPING_FILE = "training_course_mapping.csv"


# The indicators are the catalogue's (ingestion/indicator_catalogue.py, var `indicators` of dbt_project.yml):
# settings may only name its codes and may not contradict its direction, kind, unit or duration.
# which indicator kinds a method may weigh
METHOD_KINDS: dict[str, tuple[str, ...]] = {
    "quantitative": ("quantitative",),
    "qualitative": ("qualitative",),
    "comprehensive": ("quantitative", "qualitative"),
}

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
WEIGHT_TOTAL = Decimal(100)
WEIGHT_TOLERANCE = Decimal("0.0001")


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


def _validate_indicator_row(
    line: int, rec: dict[str, str], out: Collector, catalogue: dict[str, Indicator]
) -> SettingRow | None:
    ok = True
    for column in ("indicator_code", "category", "kind", "unit", "direction", "method"):
        ok &= check_identifier(rec[column], line, column, out)
    if rec["hours_basis"]:
        ok &= check_identifier(rec["hours_basis"], line, "hours_basis", out)
    if not ok:
        return None
    for column in ("name_zh", "name_en"):
        if not rec[column]:
            out.add(line, "name_required", f"{column} is empty")
            ok = False
    code = rec["indicator_code"]
    spec = catalogue.get(code)
    if spec is None:
        out.add(line, "unknown_indicator", unknown_indicator(code, catalogue))
        ok = False
    ok &= check_one_of(rec["category"], CATEGORIES, line, "category", out)
    ok &= check_one_of(rec["kind"], KINDS, line, "kind", out)
    ok &= check_one_of(rec["direction"], DIRECTIONS, line, "direction", out)
    ok &= check_one_of(rec["method"], METHODS, line, "method", out)
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

    target = parse_decimal(rec["target"], line, "target", out)
    threshold = parse_decimal(rec["threshold"], line, "threshold", out)
    weight = parse_decimal(rec["weight"], line, "weight", out)
    min_sample_number = parse_decimal(rec["min_sample"], line, "min_sample", out)
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
    effective_from = parse_date(rec["effective_from"], line, "effective_from", out)
    effective_to = parse_date(rec["effective_to"], line, "effective_to", out) if rec["effective_to"] else None
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


def _check_weights(rows: list[SettingRow], out: Collector) -> None:
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
    out = Collector(path.name)
    rows: list[SettingRow] = []
    for line, rec in read_csv(path, INDICATOR_COLUMNS, out):
        row = _validate_indicator_row(line, rec, out, catalogue)
        if row is not None:
            rows.append(row)
    if out.violations:
        return rows, out.violations
    chains: dict[tuple[str, str], list[tuple[int, date, date | None]]] = defaultdict(list)
    for row in rows:
        chains[(row.indicator_code, row.method)].append((row.row_number, row.effective_from, row.effective_to))
    for (code, method), chain in sorted(chains.items()):
        check_chain(chain, f"{code} / method {method}", out)
    _check_weights(rows, out)
    return rows, out.violations


# the optional files of the seeds directory, checked when present (the course mapping also with the catalogue)
OPTIONAL_FILES = (
    (APPRAISAL_SETTINGS_FILE, validate_appraisal_settings),
    (GRADE_BANDS_FILE, validate_grade_bands),
    (SLA_TARGETS_FILE, validate_sla_targets),
    (TRAINING_SETTINGS_FILE, validate_training_settings),
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
                    validate_course_mapping(path / name, catalogue) if validate is None else validate(path / name)
                )
    elif path.is_file():
        rows, violations = _validate_indicator_settings(path, catalogue)
    else:
        raise IndicatorSettingsError([f"{path.name} row -: rule file_exists: {path} not found"])
    if violations:
        raise IndicatorSettingsError(violations)
    return rows
