"""The indicator catalogue, as Python reads it: the `indicators` and `kpi_units` vars of dbt_project.yml.

The catalogue is data in one file (dbt_project.yml, so that dbt's macros read the very same list); this module
only parses and checks it. What derives from it on the Python side: the settings validator's indicator list
(orchestration/settings/indicators.py), the KPI mart suites (expectations/suites.py) and the serving file's
evidence view (orchestration/publication/evidence.py). docs/adding_an_indicator.md walks through adding one.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ingestion.paths import DBT_PROJECT_DIR

CATEGORIES = ("customer_satisfaction", "processing_efficiency", "service_quality", "complaint_handling", "qualitative")
KINDS = ("quantitative", "qualitative")
DIRECTIONS = ("higher", "lower")
DURATION_UNIT = "hours"
COUNT_TYPES = ("bigint", "hugeint")
_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*")


class CatalogueError(ValueError):
    """The indicator catalogue in dbt_project.yml is not well formed."""


@dataclass(frozen=True)
class Unit:
    name: str
    min: float | None
    max: float | None
    says: str


@dataclass(frozen=True)
class EvidenceRule:
    indicator_code: str
    fact: str
    activity_date: str
    condition: str


@dataclass(frozen=True)
class Indicator:
    code: str
    category: str
    kind: str
    direction: str
    unit: str
    value: dict[str, Any]
    counts: tuple[dict[str, Any], ...]
    measured_from: dict[str, str] | None
    evidence: tuple[EvidenceRule, ...]
    inputs_all_of: tuple[tuple[str, str], ...]
    inputs_any_of: tuple[tuple[str, str], ...]

    @property
    def is_duration(self) -> bool:
        return self.unit == DURATION_UNIT

    @property
    def value_columns(self) -> tuple[str, ...]:
        """The mart columns holding the value: one, or a duration's calendar and business hours."""
        return (f"{self.code}_hours", f"{self.code}_business_hours") if self.is_duration else (self.code,)

    @property
    def sample_column(self) -> str:
        return f"{self.code}_n"

    @property
    def published_counts(self) -> tuple[str, ...]:
        return tuple(c["column"] for c in self.counts if c.get("published"))

    @property
    def mart_columns(self) -> tuple[str, ...]:
        """Every column the indicator gives the KPI marts, in their order."""
        return (*self.value_columns, self.sample_column, *self.published_counts)


def _vars(project_dir: Path) -> dict[str, Any]:
    return yaml.safe_load((project_dir / "dbt_project.yml").read_text(encoding="utf-8"))["vars"]


def _one_of(value: object, allowed: tuple[str, ...], where: str) -> str:
    if value not in allowed:
        raise CatalogueError(f"{where} must be one of {list(allowed)}, not {value!r}")
    return str(value)


def _column(value: object, where: str) -> str:
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise CatalogueError(f"{where} must be a column name of int_kpi_monthly_sums, not {value!r}")
    return value


def _feed_column(value: object, where: str) -> tuple[str, str]:
    feed, _, column = str(value).partition(".")
    if not (_IDENTIFIER.fullmatch(feed) and _IDENTIFIER.fullmatch(column)):
        raise CatalogueError(f"{where}: {value!r} is not feed.column")
    return feed, column


def _indicator(entry: dict[str, Any], units: dict[str, Unit], position: int) -> Indicator:
    code = _column(entry.get("code"), f"indicator {position}: code")
    where = f"indicator {code}"
    unit = _one_of(entry.get("unit"), tuple(units), f"{where}: unit")
    value = entry.get("value")
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in ("ratio", "mean"):
        raise CatalogueError(f"{where}: value must be {{ratio: ...}} or {{mean: ...}}, not {value!r}")
    form, spec = next(iter(value.items()))
    if form == "ratio":
        _column(spec.get("denominator"), f"{where}: value.ratio.denominator")
        if not isinstance(spec.get("numerator"), str):
            raise CatalogueError(f"{where}: value.ratio.numerator must be a column or an expression")
        float(spec.get("scale", 1.0))
    else:
        keys = ("sum", "n", "business_sum", "business_n") if unit == DURATION_UNIT else ("sum", "n")
        if set(spec) != set(keys):
            raise CatalogueError(f"{where}: value.mean needs exactly {list(keys)} (unit {unit}), not {sorted(spec)}")
        for key in keys:
            _column(spec[key], f"{where}: value.mean.{key}")
    counts = tuple(entry.get("counts") or ())
    for count in counts:
        _column(count.get("column"), f"{where}: counts")
        _one_of(count.get("type", "bigint"), COUNT_TYPES, f"{where}: counts.{count['column']}.type")
    evidence = tuple(
        EvidenceRule(code, str(rule["fact"]), _column(rule["activity_date"], f"{where}: evidence"), rule["condition"])
        for rule in entry.get("evidence") or ()
    )
    if not evidence:
        raise CatalogueError(f"{where}: at least one evidence rule (the facts behind its values)")
    inputs = entry.get("inputs") or {}
    if not inputs.get("all_of") or set(inputs) - {"all_of", "any_of"}:
        raise CatalogueError(f"{where}: inputs needs all_of (and may have any_of): the feed columns it reads")
    feed_columns = {
        key: tuple(_feed_column(x, f"{where}: inputs.{key}") for x in inputs.get(key) or ()) for key in inputs
    }
    return Indicator(
        code=code,
        category=_one_of(entry.get("category"), CATEGORIES, f"{where}: category"),
        kind=_one_of(entry.get("kind"), KINDS, f"{where}: kind"),
        direction=_one_of(entry.get("direction"), DIRECTIONS, f"{where}: direction"),
        unit=unit,
        value=dict(value),
        counts=counts,
        measured_from=entry.get("measured_from"),
        evidence=evidence,
        inputs_all_of=feed_columns["all_of"],
        inputs_any_of=feed_columns.get("any_of", ()),
    )


@cache
def units(project_dir: Path = DBT_PROJECT_DIR) -> dict[str, Unit]:
    return {
        name: Unit(name, spec.get("min"), spec.get("max"), str(spec["says"]))
        for name, spec in _vars(project_dir)["kpi_units"].items()
    }


@cache
def indicators(project_dir: Path = DBT_PROJECT_DIR) -> tuple[Indicator, ...]:
    """The catalogue in its order (the order of the KPI mart columns); checked, or CatalogueError."""
    known_units = units(project_dir)
    out = tuple(_indicator(e, known_units, i + 1) for i, e in enumerate(_vars(project_dir)["indicators"]))
    codes = [i.code for i in out]
    if len(set(codes)) != len(codes):
        raise CatalogueError(f"indicator codes must be unique: {codes}")
    return out


def indicator(code: str, project_dir: Path = DBT_PROJECT_DIR) -> Indicator:
    for item in indicators(project_dir):
        if item.code == code:
            return item
    raise KeyError(code)


def evidence_rules(project_dir: Path = DBT_PROJECT_DIR) -> tuple[EvidenceRule, ...]:
    return tuple(rule for item in indicators(project_dir) for rule in item.evidence)


KPI_MARTS = {
    "kpi_technician_monthly": ("technician_id", "team_id"),
    "kpi_technician_quarterly": ("technician_id", "team_id"),
    "kpi_technician_annual": ("technician_id", "team_id"),
    "kpi_team_monthly": ("team_id",),
    "kpi_team_quarterly": ("team_id",),
    "kpi_team_annual": ("team_id",),
}
KPI_PERIOD_COLUMNS = ("period_start", "period_end", "period_label")
KPI_VOLUMES = ("tickets_resolved", "complaints_received")  # macros/kpi.sql kpi_volumes


def monthly_sums_read(item: Indicator) -> set[str]:
    """The int_kpi_monthly_sums columns an indicator's value reads."""
    form, spec = next(iter(item.value.items()))
    if form == "mean":
        read = set(spec.values())
    else:
        read = {spec["denominator"]} | ({spec["numerator"]} if _IDENTIFIER.fullmatch(spec["numerator"]) else set())
    return read | {c["column"] for c in item.counts}


def _documented(path: Path) -> dict[str, list[str]]:
    models = yaml.safe_load(path.read_text(encoding="utf-8"))["models"]
    return {m["name"]: [c["name"] for c in m.get("columns", [])] for m in models}


def disagreements(project_dir: Path = DBT_PROJECT_DIR) -> list[str]:
    """What is written by hand beside the catalogue and does not agree with it: the column docs of the six KPI
    marts (exactly the catalogue's columns, in its order), the docs of int_kpi_monthly_sums (every column an
    indicator reads), the settings seed (every indicator and no other, with the catalogue's kind, unit and
    direction). [] when all agree. `python -m ingestion.indicator_catalogue` prints them."""
    catalogue = indicators(project_dir)
    out = []
    marts = _documented(project_dir / "models" / "marts" / "kpi" / "_kpi__models.yml")
    columns = tuple(c for i in catalogue for c in i.mart_columns)
    for mart, keys in KPI_MARTS.items():
        want = (*keys, *KPI_PERIOD_COLUMNS, *columns, *KPI_VOLUMES)
        got = tuple(marts.get(mart, ()))
        if got != want:
            missing = [c for c in want if c not in got]
            extra = [c for c in got if c not in want]
            out.append(
                f"models/marts/kpi/_kpi__models.yml {mart}: columns must be the catalogue's in its order; "
                f"missing {missing}, not in the catalogue {extra}" + ("" if missing or extra else " (order differs)")
            )
    monthly = set(
        _documented(project_dir / "models" / "intermediate" / "kpi" / "_kpi__models.yml")["int_kpi_monthly_sums"]
    )
    for item in catalogue:
        undocumented = sorted(monthly_sums_read(item) - monthly)
        if undocumented:
            out.append(f"int_kpi_monthly_sums does not document {undocumented}, which {item.code} reads")
    with (project_dir / "seeds" / "indicator_settings.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    by_code = {i.code: i for i in catalogue}
    seeded = {r["indicator_code"] for r in rows}
    for code in sorted(set(by_code) - seeded):
        out.append(f"seeds/indicator_settings.csv has no row for {code}")
    for row in rows:
        item = by_code.get(row["indicator_code"])
        if item is None:
            out.append(f"seeds/indicator_settings.csv: {row['indicator_code']} is not in the catalogue")
        elif (row["kind"], row["unit"], row["direction"]) != (item.kind, item.unit, item.direction):
            out.append(f"seeds/indicator_settings.csv: {item.code} is not {item.kind}/{item.unit}/{item.direction}")
    return out


if __name__ == "__main__":
    import sys

    problems = disagreements()
    print("\n".join(problems) or f"the catalogue's {len(indicators())} indicators agree with the docs and the seed")
    sys.exit(1 if problems else 0)
