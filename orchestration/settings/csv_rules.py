"""The rules every settings file is read with, and the vocabulary the files share: a CSV with the expected
header, ASCII digits, numbers, whole
numbers, dates, effective-date chains and identifiers, each violation named by file, row and rule."""

from __future__ import annotations

import csv
import re
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from ingestion.indicator_catalogue import Indicator

IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
# what `dbt seed` reads as a number / a date: ASCII digits only
ASCII_NUMBER = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")
ASCII_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


class IndicatorSettingsError(ValueError):
    """A settings file breaks a rule. ``violations`` holds one message per broken rule."""

    def __init__(self, violations: list[str]):
        self.violations = list(violations)
        super().__init__(
            f"{len(self.violations)} settings violation(s):\n" + "\n".join(f"- {v}" for v in self.violations)
        )


class Collector:
    def __init__(self, file_name: str):
        self.file_name = file_name
        self.violations: list[str] = []

    def add(self, row: int | str, rule: str, message: str) -> None:
        self.violations.append(f"{self.file_name} row {row}: rule {rule}: {message}")


def read_csv(path: Path, expected: tuple[str, ...], out: Collector) -> list[tuple[int, dict[str, str]]]:
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


def _non_ascii_digits(value: str, row: int, column: str, out: Collector) -> bool:
    if _has_non_ascii_digit(value):
        out.add(
            row,
            "ascii_digits",
            f"{column} {value!r} has digits other than 0-9 (full-width or another script); write it with ASCII digits",
        )
        return True
    return False


def parse_decimal(value: str, row: int, column: str, out: Collector) -> Decimal | None:
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


def parse_whole(value: str, row: int, column: str, minimum: int, maximum: int | None, out: Collector) -> int | None:
    number = parse_decimal(value, row, column, out)
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


def parse_date(value: str, row: int, column: str, out: Collector) -> date | None:
    if _non_ascii_digits(value, row, column, out):
        return None
    try:
        if not ASCII_DATE.match(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        out.add(row, "date", f"{column} {value!r} is not a date YYYY-MM-DD")
        return None


def check_chain(rows: list[tuple[int, date, date | None]], what: str, out: Collector) -> None:
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


def check_identifier(value: str, row: int, column: str, out: Collector) -> bool:
    if not IDENTIFIER.match(value):
        out.add(row, "identifier", f"{column} {value!r} is not a plain name matching ^[a-z][a-z0-9_]*$")
        return False
    return True


def check_one_of(value: str, allowed: tuple[str, ...], row: int, column: str, out: Collector) -> bool:
    if value not in allowed:
        out.add(row, f"allowed_{column}", f"{column} {value!r} is not one of {list(allowed)}")
        return False
    return True


HOURS_BASES = ("business", "calendar")
METHODS = ("quantitative", "qualitative", "comprehensive")
GRADES = ("A", "B", "C", "D")


def unknown_indicator(code: str, catalogue: dict[str, Indicator]) -> str:
    return f"indicator_code {code!r} is not one of the {len(catalogue)} catalogue indicators"
