"""Compile a mapping to DuckDB SQL, run it over a source file, and write landing files.

Per target feed, in DuckDB (Python never touches a data row):
1. rows: the source rows (after null tokens and trimming); `latest` keeps the newest version of each
   key (the others are "superseded"); a derived feed takes the accepted rows of its parent;
   `filter` keeps the rows this feed is about (the others are "filtered out", not rejected);
2. mapped: one typed expression per contract column, plus, per row, the list of mapping rules that
   failed (timestamp in no candidate format, value not in a value map, not a number, bad duration);
3. `distinct_on`: accepted rows grouped by the key, one value per column by its `pick`;
4. contract checks on the typed values (required, allowed values, min/max, row rules of
   ingestion.contracts), so a dry-run explains what the loader would reject later;
5. rows without failures are written to landing/<feed>/<date>_<mapping>.<ext> (contract columns,
   timestamps as ISO-8601 UTC with explicit +00:00); the others to the rejected-rows file with the
   file, data row number, the original record as JSON, the first failing rule and all reasons.

Identifiers are our own contract names (strict pattern) or source column names checked against a
conservative pattern, the file's header, and quoted; every literal from a mapping is a bound
parameter.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from ingestion.contracts import FEEDS, Feed
from ingestion.export_mapping.sources import MALFORMED_TABLE, SOURCE_TABLE, load_source, quote_ident
from ingestion.export_mapping.spec import (
    AUTO,
    DAY_MONTH_ORDERS,
    DEFAULT_PLAUSIBLE_FROM,
    ISO8601,
    TARGET_NAME,
    ColumnRule,
    Condition,
    FeedMapping,
    Mapping,
    MappingError,
    generated_formats,
    load_mapping,
    referenced_source_columns,
    swap_day_month,
)

CLEAN_TABLE = "src_clean"
DURATION_PATTERN = r"^\d+:[0-5]\d:[0-5]\d(\.\d+)?$"
OFFSET_PATTERN = r"(Z|[+-]\d\d(:?\d\d)?)$"
TRUE_TOKENS = ["true", "t", "1", "y", "yes"]
FALSE_TOKENS = ["false", "f", "0", "n", "no"]
REJECTED_COLUMNS = ("mapping", "feed", "source_file", "row_number", "line", "rule", "reason", "record")
# the year position of generated date_order formats: four digits -> %Y, two digits -> %y (DuckDB's pivot)
YEAR_LAST_4 = r"^\d{1,2}[-/.]\d{1,2}[-/.]\d{4}(\D|$)"
YEAR_LAST_2 = r"^\d{1,2}[-/.]\d{1,2}[-/.]\d{2}(\D|$)"
YEAR_FIRST_4 = r"^\d{4}[-/.]"
OTHER_ORDER = {"day_first": "month_first", "month_first": "day_first"}


@dataclass
class DateCheck:
    """Day/month order of one timestamp or date column over the rows of its feed."""

    column: str
    order: str  # the order the column was read in: day_first | month_first
    declared: bool  # False: `date_order: auto`, guessed from the rows that parse only one way
    values: int  # rows with a text for the column
    ambiguous: int  # rows whose text parses both ways to different dates (e.g. 03/04/2021)
    contrary: int  # rows that parse only in the other order (rejected, never swapped)
    first_ambiguous: list[int] = field(default_factory=list)  # physical lines of the first ones

    @property
    def ambiguous_share(self) -> float:
        return self.ambiguous / self.values if self.values else 0.0

    @property
    def refuses(self) -> bool:
        """A guessed order with ambiguous rows: apply refuses to write."""
        return not self.declared and self.ambiguous > 0

    def describe(self, feed: str) -> str:
        how = "declared" if self.declared else "guessed (date_order: auto)"
        text = (
            f"feeds.{feed}.columns.{self.column}: {self.ambiguous} of {self.values} rows "
            f"({100 * self.ambiguous_share:.1f} %) parse both day-first and month-first; read {self.order}, "
            f"{how}"
        )
        if self.contrary:
            text += f"; {self.contrary} rows parse only {OTHER_ORDER[self.order]} and are rejected (check the order)"
        if self.first_ambiguous:
            text += "; first ambiguous lines " + ", ".join(str(x) for x in self.first_ambiguous)
        return text


@dataclass
class FeedResult:
    feed: str
    source_rows: int
    superseded: int
    filtered_out: int
    mapped: int
    rejected: int
    rejected_by_rule: dict[str, int] = field(default_factory=dict)
    path: Path | None = None  # the (first) landing file written
    paths: list[Path] = field(default_factory=list)  # all landing files (several with split_by_day)
    date_checks: list[DateCheck] = field(default_factory=list)

    def others_text(self) -> str:
        """`, superseded N, filtered out M` (the source rows neither mapped nor rejected), or ''."""
        return (f", superseded {self.superseded}" if self.superseded else "") + (
            f", filtered out {self.filtered_out}" if self.filtered_out else ""
        )


FIRST_ROWS = 5  # the rows (lines) a message names per rule


def where_text(count: int, first_rows: list[int], lines: list[int | None]) -> str:
    """`lines 4, 7, ...` (physical lines when all are known, else `rows ...`: the record numbers)."""
    known = [x for x in lines if x is not None]
    shown = ", ".join(str(x) for x in (known if len(known) == len(lines) else first_rows))
    more = ", ..." if count > len(first_rows) else ""
    return ("lines " if len(known) == len(lines) else "rows ") + shown + more


@dataclass
class MappingResult:
    mapping: str
    source_file: Path
    feeds: dict[str, FeedResult]
    rejected_path: Path | None = None
    malformed: int = 0  # source records that could not be read (feed `(source)` in the rejected rows)
    malformed_at: str = ""  # where they are: `lines 4, 7, ...`

    def malformed_text(self) -> str:
        """The line of the apply output about malformed source records ('' when there are none)."""
        return f"malformed source records: {self.malformed} ({self.malformed_at})" if self.malformed else ""

    @property
    def mapped(self) -> int:
        return sum(f.mapped for f in self.feeds.values())

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.feeds.values()) + self.malformed


class _Params:
    """Bound parameters: every literal from a mapping goes through here, never into the SQL text."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def __call__(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"${name}"


def _execute(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> duckdb.DuckDBPyConnection:
    """Execute with only the parameters the statement uses (compilation may register unused ones)."""
    used = set(re.findall(r"\$([a-z]\w*)", sql))
    return con.execute(sql, {k: v for k, v in params.items() if k in used})


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _ident(name: str) -> str:
    if not TARGET_NAME.fullmatch(name):
        raise MappingError(f"internal: {name!r} is not a safe identifier")
    return name


@dataclass
class _Failure:
    condition: str  # SQL: true when the rule failed for the row
    rule: str  # key path of the rule, e.g. feeds.tickets.columns.created_at.formats
    message: str  # SQL text expression with the reason


@dataclass
class _Compiled:
    expr: str  # typed SQL expression
    failures: list[_Failure]


class _FeedCompiler:
    def __init__(self, mapping: Mapping, feed: str, fm: FeedMapping, p: _Params) -> None:
        self.mapping = mapping
        self.feed = feed
        self.fm = fm
        self.contract: Feed = FEEDS[feed]
        self.p = p
        self.done: dict[str, str] = {}
        self.orders: dict[str, str] = {}  # the order an `auto` column resolved to
        self.day_month: dict[str, tuple[str, bool, str, str]] = {}  # col -> (order, declared, ambiguous, text)

    def where(self, col: str) -> str:
        return f"feeds.{self.feed}.columns.{col}"

    def condition(self, c: Condition) -> str:
        ref = f"c.{quote_ident(c.column)}"
        if c.equals is not None:
            return f"coalesce({ref} = {self.p(c.equals)}, false)"
        if c.in_ is not None:
            return f"coalesce(list_contains({self.p(list(c.in_))}::varchar[], {ref}), false)"
        if c.not_in is not None:
            return f"not coalesce(list_contains({self.p(list(c.not_in))}::varchar[], {ref}), false)"
        if c.not_null:
            return f"{ref} is not null"
        return f"{ref} is null"

    def text_expr(self, col: str, rule: ColumnRule) -> tuple[str, str, list[_Failure]]:
        """(text expression, description of the input for messages, failures)."""
        ctype = self.contract.column(col).type
        failures: list[_Failure] = []
        if rule.column is not None or rule.columns is not None:
            cols = [rule.column] if rule.column is not None else list(rule.columns or [])
            refs = [f"c.{quote_ident(c)}" for c in cols]
            default_sep = " " if ctype in ("timestamp", "date") else "-"
            sep = self.p(rule.separator if rule.separator is not None else default_sep)
            joined = f" || {sep} || ".join(refs)
            if rule.prefix is not None:
                joined = f"{self.p(rule.prefix)} || {joined}"
            any_null = " or ".join(f"{r} is null" for r in refs)
            expr = f"(case when {any_null} then null else {joined} end)"
            desc = "column " + " + ".join(repr(c) for c in cols)
        elif rule.constant is not None:
            expr = f"{self.p(_text(rule.constant))}::varchar"
            desc = "constant"
        else:
            raise MappingError(f"internal: no text for {col}")
        if rule.values is not None:
            keys = list(rule.values)
            cases = " ".join(f"when {self.p(k)} then {self.p(_text(v))}::varchar" for k, v in rule.values.items())
            default = f"{self.p(_text(rule.default))}::varchar" if rule.default is not None else "null"
            mapped = f"(case {expr} {cases} else {default} end)"
            if rule.default is None:
                failures.append(
                    _Failure(
                        f"({expr} is not null and not list_contains({self.p(keys)}::varchar[], {expr}))",
                        f"{self.where(col)}.values",
                        f"{self.p(f'value of {desc} not in the value map of {col}: ')} || {expr}",
                    )
                )
            expr = mapped
        return expr, desc, failures

    def compile(self, col: str, rule: ColumnRule) -> _Compiled:
        c = self.contract.column(col)
        w = self.where(col)
        failures: list[_Failure] = []
        if rule.base is not None:
            expr = self.done[rule.base]
        else:
            text, desc, failures = self.text_expr(col, rule)
            expr, more = self.typed(col, c.type, rule, text, desc)
            failures += more
        for i, part in enumerate(rule.add or []):
            ref = f"c.{quote_ident(part.source_column)}"
            rw = f"{w}.add[{i}].{part.unit}"
            if part.unit == "duration":
                ok = f"regexp_matches({ref}, {self.p(DURATION_PATTERN)})"
                secs = (
                    f"(case when {ok} then cast(split_part({ref}, ':', 1) as bigint) * 3600"
                    f" + cast(split_part({ref}, ':', 2) as bigint) * 60"
                    f" + cast(split_part({ref}, ':', 3) as double) end)"
                )
                failures.append(
                    _Failure(
                        f"({ref} is not null and not {ok})",
                        rw,
                        f"{self.p(f'column {part.source_column!r} is not a duration H:MM:SS: ')} || {ref}",
                    )
                )
            else:
                factor = {"seconds": 1, "minutes": 60, "hours": 3600}[part.unit]
                secs = f"(try_cast({ref} as double) * {factor})"
                failures.append(
                    _Failure(
                        f"({ref} is not null and try_cast({ref} as double) is null)",
                        rw,
                        f"{self.p(f'column {part.source_column!r} is not a number of {part.unit}: ')} || {ref}",
                    )
                )
            expr = f"({expr} + to_seconds({secs}))"
        if rule.when is not None:
            cond = self.condition(rule.when)
            expr = f"(case when {cond} then {expr} end)"
            failures = [_Failure(f"({cond} and {f.condition})", f.rule, f.message) for f in failures]
        if rule.fallback is not None:
            expr = f"coalesce({expr}, {self.done[rule.fallback]})"
        if c.type in ("timestamp", "date", "month"):
            failures.append(self.plausible(col, c.type, rule, expr))
        self.done[col] = expr
        return _Compiled(expr, failures)

    def plausible(self, col: str, ctype: str, rule: ColumnRule, expr: str) -> _Failure:
        """Reject a value outside the plausible window (never write year 0015, 1970 epochs or 9999)."""
        src = self.mapping.source.plausible
        own = rule.plausible
        low = (own.from_ if own is not None and own.from_ is not None else src.from_) or DEFAULT_PLAUSIBLE_FROM
        high = own.until if own is not None and own.until is not None else src.until
        key = f"{self.where(col)}.plausible" if own is not None else "source.plausible"
        shown = f"{low} .. {high if high is not None else 'one day after the run'}"
        if ctype == "timestamp":
            zone = self.p(rule.timezone or self.mapping.source.timezone or "UTC")
            too_low = f"{expr} < timezone({zone}, {self.p(low)}::date::timestamp)"
            too_high = (
                f"{expr} >= timezone({zone}, ({self.p(high)}::date + 1)::timestamp)"
                if high is not None
                else f"{expr} > now() + interval 1 day"
            )
        else:
            too_low = f"{expr} < {self.p(low)}::date"
            too_high = f"{expr} > {self.p(high)}::date" if high is not None else f"{expr} > current_date + 1"
        return _Failure(
            f"({expr} is not null and ({too_low} or {too_high}))",
            f"{self.where(col)}.plausible",
            f"{self.p(f'{col} is outside the plausible window {shown} (widen it with {key}): ')} || {expr}::varchar",
        )

    def naive(self, text: str, rule: ColumnRule, ctype: str, order: str | None) -> tuple[str, list[str]]:
        """(SQL: the text parsed to a naive timestamp, the formats tried) for the given day/month order."""
        with_time = ctype == "timestamp"
        if rule.formats is not None:
            formats = list(rule.formats)
            if order is not None and order != rule.day_month_order():
                formats = [f if f == ISO8601 else swap_day_month(f) for f in formats]
            parts = []
            strp = [f for f in formats if f != ISO8601]
            if strp:
                parts.append(f"try_strptime({text}, {self.p(strp)}::varchar[])")
            if ISO8601 in formats:
                parts.append(self.iso_naive(text))
            return (parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"), formats
        if order is not None or rule.date_order is not None:
            order = order or rule.date_order
            if order == AUTO:
                order = "day_first"
            if order == "year_first":
                fmts = generated_formats(order, with_time, "%Y")
                return (
                    f"(case when regexp_matches({text}, {self.p(YEAR_FIRST_4)}) then "
                    f"try_strptime({text}, {self.p(fmts)}::varchar[]) end)"
                ), fmts
            four = generated_formats(order, with_time, "%Y")
            two = generated_formats(order, with_time, "%y")
            return (
                f"(case when regexp_matches({text}, {self.p(YEAR_LAST_4)}) "
                f"then try_strptime({text}, {self.p(four)}::varchar[]) "
                f"when regexp_matches({text}, {self.p(YEAR_LAST_2)}) "
                f"then try_strptime({text}, {self.p(two)}::varchar[]) end)"
            ), four + two
        if ctype == "month":
            return f"try_strptime({text}, {self.p(['%Y-%m'])}::varchar[])", ["%Y-%m"]
        return self.iso_naive(text), [ISO8601]

    def iso_naive(self, text: str) -> str:
        return (
            f"(case when not regexp_matches({text}, {self.p(OFFSET_PATTERN)}) then try_cast({text} as timestamp) end)"
        )

    def guess_order(self, con: duckdb.DuckDBPyConnection, col: str, rule: ColumnRule, rows: str, where: str) -> None:
        """`date_order: auto`: the order most rows that parse only one way have (ties: day first)."""
        ctype = self.contract.column(col).type
        text, _, _ = self.text_expr(col, rule)
        d, _ = self.naive(text, rule, ctype, "day_first")
        m, _ = self.naive(text, rule, ctype, "month_first")
        only_d, only_m = _execute(
            con,
            f"select count(*) filter (where ({d}) is not null and ({m}) is null), "
            f"count(*) filter (where ({m}) is not null and ({d}) is null) from {rows} as c where {where}",
            self.p.values,
        ).fetchone()
        self.orders[col] = "month_first" if only_m > only_d else "day_first"

    def typed(self, col: str, ctype: str, rule: ColumnRule, text: str, desc: str) -> tuple[str, list[_Failure]]:
        w = self.where(col)
        fails: list[_Failure] = []

        def fail(cond: str, aspect: str, message: str) -> None:
            fails.append(_Failure(f"({text} is not null and {cond})", f"{w}.{aspect}", f"{self.p(message)} || {text}"))

        if ctype in ("string", "enum"):
            return text, fails
        if ctype == "int":
            as_double = f"try_cast({text} as double)"
            expr = (
                f"coalesce(try_cast({text} as bigint), case when {as_double} = trunc({as_double}) "
                f"then try_cast({as_double} as bigint) end)"
            )
            fail(f"{expr} is null", "type", f"{desc} is not an integer for {col}: ")
            return expr, fails
        if ctype == "decimal":
            expr = f"try_cast({text} as double)"
            fail(f"{expr} is null", "type", f"{desc} is not a number for {col}: ")
            return expr, fails
        if ctype == "bool":
            low = f"lower({text})"
            expr = (
                f"(case when list_contains({self.p(TRUE_TOKENS)}::varchar[], {low}) then true "
                f"when list_contains({self.p(FALSE_TOKENS)}::varchar[], {low}) then false end)"
            )
            fail(f"{expr} is null", "type", f"{desc} is not a boolean for {col} (map it with values:, e.g. Y: true): ")
            return expr, fails
        # timestamp, date, month
        declared_order = rule.day_month_order()
        order = self.orders.get(col, "day_first") if declared_order == AUTO else declared_order
        naive, formats = self.naive(text, rule, ctype, order if order in DAY_MONTH_ORDERS else None)
        shown = ", ".join(formats)
        other = None
        if order in DAY_MONTH_ORDERS:
            # the other reading of the same text: a row that parses only that way is rejected (never swapped),
            # a row that parses both ways to different dates is ambiguous (counted and reported)
            other, _ = self.naive(text, rule, ctype, OTHER_ORDER[order])
            aspect = "formats" if rule.formats is not None else "date_order"
            how = "declared" if declared_order != AUTO else "guessed from the other rows (date_order: auto)"
            contrary = (
                f"{desc} of {col} parses only {OTHER_ORDER[order]}, not {order} as {how}; "
                "day and month are not swapped: "
            )
            fails.append(
                _Failure(
                    f"({text} is not null and ({naive}) is null and ({other}) is not null)",
                    f"{w}.{aspect}",
                    f"{self.p(contrary)} || {text}",
                )
            )
            self.day_month[col] = (
                order,
                declared_order != AUTO,
                f"coalesce(({naive}) is not null and ({other}) is not null and ({naive}) <> ({other}), false)",
                text,
            )
        unparsed = f"{text} is not null" if other is None else f"{text} is not null and ({other}) is null"
        has_offset = f"regexp_matches({text}, {self.p(OFFSET_PATTERN)})"
        has_iso = ISO8601 in formats
        if ctype == "timestamp":
            zone = rule.timezone or self.mapping.source.timezone
            local = f"timezone({self.p(zone)}, {naive})" if zone is not None else "null::timestamptz"
            if has_iso:
                expr = f"(case when {has_offset} then try_cast({text} as timestamptz) else {local} end)"
            else:
                expr = local
            aspect = "date_order" if rule.formats is None and rule.date_order is not None else "formats"
            message = f"{desc} of {col} matches none of the formats [{shown}]"
            if zone is None:
                message += " (text without an offset needs a timezone)"
            fails.append(
                _Failure(f"({unparsed} and {expr} is null)", f"{w}.{aspect}", f"{self.p(message + ': ')} || {text}")
            )
            return expr, fails
        date_expr = f"cast({naive} as date)"
        if has_iso:
            date_expr = f"coalesce({date_expr}, cast(try_cast({text} as timestamptz) as date))"
        if ctype == "month":
            date_expr = f"date_trunc('month', {date_expr})::date"
        aspect = "date_order" if rule.formats is None and rule.date_order is not None else "formats"
        fails.append(
            _Failure(
                f"({unparsed} and {date_expr} is null)",
                f"{w}.{aspect}",
                f"{self.p(f'{desc} of {col} matches none of the formats [{shown}]: ')} || {text}",
            )
        )
        return date_expr, fails


def _reasons_sql(failures: list[tuple[str, str, str]]) -> str:
    """SQL list of {rule, reason} structs for the failures that apply to a row."""
    if not failures:
        return "[]::struct(rule varchar, reason varchar)[]"
    items = ", ".join(f"case when {cond} then {{'rule': {rule}, 'reason': {msg}}} end" for cond, rule, msg in failures)
    return f"list_filter([{items}], lambda x: x is not null)::struct(rule varchar, reason varchar)[]"


@dataclass
class _Run:
    con: duckdb.DuckDBPyConnection
    mapping: Mapping
    source_file: Path
    results: dict[str, FeedResult]
    malformed: int = 0
    notes: list[str] = field(default_factory=list)

    def refusals(self) -> list[str]:
        """Why `apply` must not write: a guessed day/month order with ambiguous rows, or a feed rejecting
        more than source.max_rejected_share of its rows. Each message names the key and the counts."""
        out: list[str] = []
        for feed, res in self.results.items():
            for check in res.date_checks:
                if check.refuses:
                    out.append(
                        f"feeds.{feed}.columns.{check.column}.date_order: the order is guessed (auto) but "
                        f"{check.ambiguous} of {check.values} rows ({100 * check.ambiguous_share:.1f} %) parse both "
                        f"day-first and month-first (first lines {', '.join(map(str, check.first_ambiguous))}); "
                        "say date_order: day_first or month_first"
                    )
        limit = self.mapping.source.max_rejected_share
        if limit is not None:
            for feed, res in self.results.items():
                own = self.mapping.feeds[feed].derive_from is None
                bad = res.rejected + (self.malformed if own else 0)
                total = res.mapped + bad
                if total and bad / total > limit:
                    out.append(
                        f"source.max_rejected_share: {feed} rejects {bad} of {total} rows "
                        f"({100 * bad / total:.1f} %"
                        + (f", {self.malformed} malformed source records" if own and self.malformed else "")
                        + f"), more than {100 * limit:g} %"
                    )
        return out


def run_mapping(mapping: Mapping, source_file: Path, work_dir: Path | None = None) -> _Run:
    """Map the source into temp tables out_<feed> (typed contract columns) and rejected (all feeds)."""
    source_file = Path(source_file)
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    work = work_dir or Path(os.environ.get("TMPDIR", "/tmp")) / "servicescore_mappings"
    read = load_source(con, mapping, source_file, work)
    columns = read.columns
    missing = [(where, name) for where, name in referenced_source_columns(mapping) if name not in columns]
    if missing:
        raise MappingError(
            "\n".join(
                f"{source_file}: {where}: source column {name!r} is not in the file; its columns are: "
                + ", ".join(repr(c) for c in columns)
                for where, name in missing
            )
        )
    packed = ", ".join(f"{quote_ident(c)} := {quote_ident(c)}" for c in columns)
    con.execute(
        f"create temp view src_records as select _row_number, _line, to_json(struct_pack({packed}))::varchar "
        f"as record from {SOURCE_TABLE}"
    )
    p = _Params()
    tokens = p(list(mapping.source.null_tokens))
    cleaned = []
    for col in columns:
        ref = quote_ident(col)
        value = f"trim({ref})" if mapping.source.trim else ref
        cleaned.append(f"case when list_contains({tokens}::varchar[], {value}) then null else {value} end as {ref}")
    _execute(
        con,
        f"create temp table {CLEAN_TABLE} as select _row_number, _line, {', '.join(cleaned)} from {SOURCE_TABLE}",
        p.values,
    )
    total = con.execute(f"select count(*) from {CLEAN_TABLE}").fetchone()[0]
    con.execute(
        "create temp table rejected (feed varchar, row_number bigint, line bigint, record varchar, "
        "reasons struct(rule varchar, reason varchar)[])"
    )
    # malformed source records: rejected once, as feed `(source)`, with their physical line
    con.execute(
        "insert into rejected select '(source)', row_number, line, to_json({'_raw_record': raw})::varchar, "
        f"[{{'rule': rule, 'reason': reason}}] from {MALFORMED_TABLE}"
    )
    results: dict[str, FeedResult] = {}
    order = [f for f, fm in mapping.feeds.items() if fm.derive_from is None]
    order += [f for f, fm in mapping.feeds.items() if fm.derive_from is not None]
    for feed in order:
        results[feed] = _run_feed(con, mapping, feed, total)
    notes = [read.note] if read.note else []
    return _Run(con, mapping, source_file, results, read.malformed, notes)


def _run_feed(con: duckdb.DuckDBPyConnection, mapping: Mapping, feed: str, total: int) -> FeedResult:
    fm = mapping.feeds[feed]
    contract = FEEDS[feed]
    f = _ident(feed)
    p = _Params()
    # 1. rows
    if fm.derive_from is not None:
        parent = _ident(fm.derive_from)
        base = f"select * from {CLEAN_TABLE} where _row_number in (select _row_number from accepted_rows_{parent})"
    else:
        base = f"select * from {CLEAN_TABLE}"
    if fm.latest is not None:
        keys = ", ".join(quote_ident(k) for k in fm.latest.key)
        by = quote_ident(fm.latest.by)
        order_by = f"try_cast({by} as double)" if fm.latest.numeric else by
        base = (
            f"select * from ({base}) "
            f"qualify row_number() over (partition by {keys} order by {order_by} desc nulls last, "
            "_row_number desc) = 1"
        )
    con.execute(f"create temp table rows_{f} as {base}")
    candidates = con.execute(f"select count(*) from rows_{f}").fetchone()[0]
    superseded = (total - candidates) if fm.derive_from is None else 0
    fc = _FeedCompiler(mapping, feed, fm, p)
    where = " and ".join(fc.condition(c) for c in fm.filter) or "true"
    for col, rule in fm.columns.items():
        if rule.day_month_order() == AUTO:
            fc.guess_order(con, col, rule, f"rows_{f}", where)
    # 2. mapped, row level
    exprs: list[str] = []
    failures: list[tuple[str, str, str]] = []
    flags: list[str] = []
    for col in contract.column_names:
        raw_type = contract.column(col).raw_type
        rule = fm.columns.get(col)
        if rule is None:
            exprs.append(f"null::{raw_type} as {_ident(col)}")
            flags.append(f"false as _f_{col}")
            continue
        compiled = fc.compile(col, rule)
        exprs.append(f"cast({compiled.expr} as {raw_type}) as {_ident(col)}")
        failures += [(x.condition, p(x.rule), x.message) for x in compiled.failures]
        any_fail = " or ".join(f"coalesce({x.condition}, false)" for x in compiled.failures) or "false"
        flags.append(f"({any_fail}) as _f_{col}")
    checked = list(fc.day_month)
    ambiguity = "".join(
        f", {fc.day_month[col][2]} as _amb_{_ident(col)}, {fc.day_month[col][3]} is not null as _has_{_ident(col)}"
        for col in checked
    )
    _execute(
        con,
        f"create temp table m1_{f} as select c._row_number, c._line, {', '.join(exprs)}, {', '.join(flags)}, "
        f"{_reasons_sql(failures)} as _reasons{ambiguity} from rows_{f} as c where {where}",
        p.values,
    )
    mapped_in = con.execute(f"select count(*) from m1_{f}").fetchone()[0]
    date_checks = []
    for col in checked:
        x = _ident(col)
        order, declared, _, _ = fc.day_month[col]
        rule_key = f"feeds.{feed}.columns.{col}." + ("formats" if fm.columns[col].formats is not None else "date_order")
        values, ambiguous, first = con.execute(
            f"select count(*) filter (where _has_{x}), count(*) filter (where _amb_{x}), "
            f"list(coalesce(_line, _row_number) order by _row_number) filter (where _amb_{x})[1:5] from m1_{f}"
        ).fetchone()
        contrary = con.execute(
            f"select count(*) from m1_{f} where len(list_filter(_reasons, lambda r: r.rule = $rule "
            "and contains(r.reason, ' parses only '))) > 0",
            {"rule": rule_key},
        ).fetchone()[0]
        date_checks.append(DateCheck(col, order, declared, values, ambiguous, contrary, list(first or [])))
    filtered_out = candidates - mapped_in
    # 3. distinct_on
    if fm.distinct_on is not None:
        keys = [_ident(k) for k in fm.distinct_on]
        aggs = []
        for col in contract.column_names:
            if col in keys:
                continue
            rule = fm.columns.get(col)
            pick = (rule.pick if rule is not None else None) or "mode"
            x = _ident(col)
            agg = {
                "mode": f"list_sort(list_transform(map_entries(histogram({x})), "
                f"lambda e: {{'n': -cast(e.value as bigint), 'v': e.key}}))[1].v",
                "min": f"min({x})",
                "max": f"max({x})",
                "first": f"first({x} order by _row_number) filter (where {x} is not null)",
                "last": f"first({x} order by _row_number desc) filter (where {x} is not null)",
            }[pick]
            aggs.append(f"{agg} as {x}")
        con.execute(
            "insert into rejected select $feed, m._row_number, m._line, s.record, m._reasons "
            f"from m1_{f} as m join src_records as s using (_row_number) where len(m._reasons) > 0",
            {"feed": feed},
        )
        flag_cols = ", ".join(f"false as _f_{c}" for c in contract.column_names)
        con.execute(
            f"create temp table m2_{f} as select min(_row_number) as _row_number, min(_line) as _line, "
            f"{', '.join(keys)}, "
            f"{', '.join(aggs)}, {flag_cols}, []::struct(rule varchar, reason varchar)[] as _reasons, "
            f"true as _is_group from m1_{f} where len(_reasons) = 0 group by {', '.join(keys)}"
        )
    else:
        con.execute(f"create temp table m2_{f} as select *, false as _is_group from m1_{f}")
    # 4. contract checks on typed values
    q = _Params()
    checks: list[tuple[str, str, str]] = []
    cw = f"contract.{feed}"
    for c in contract.columns:
        x = _ident(c.name)
        if c.required:
            src = fm.columns.get(c.name)
            checks.append(
                (
                    f"{x} is null and not _f_{c.name}",
                    q(f"{cw}.{c.name}.required"),
                    q(f"required column {c.name} is empty" + (_rule_origin(src) if src else "")),
                )
            )
        if c.values:
            allowed = ", ".join(c.values)
            checks.append(
                (
                    f"{x} is not null and not list_contains({q(list(c.values))}::varchar[], {x})",
                    q(f"{cw}.{c.name}.values"),
                    f"{q(f'{c.name} is not one of {allowed}: ')} || {x}",
                )
            )
        if c.min is not None:
            checks.append(
                (f"{x} < {q(c.min)}", q(f"{cw}.{c.name}.min"), f"{q(f'{c.name} is below {c.min:g}: ')} || {x}::varchar")
            )
        if c.max is not None:
            checks.append(
                (f"{x} > {q(c.max)}", q(f"{cw}.{c.name}.max"), f"{q(f'{c.name} is above {c.max:g}: ')} || {x}::varchar")
            )
        if c.not_in_future:
            checks.append(
                (
                    f"{x} > now()",
                    q(f"{cw}.{c.name}.not_in_future"),
                    f"{q(f'{c.name} is in the future: ')} || {x}::varchar",
                )
            )
    for r in contract.rules:
        # predicates are written in ingestion.contracts (code), never taken from a mapping file
        checks.append((f"not coalesce({r.predicate}, true)", q(f"{cw}.rules.{r.name}"), q(r.message)))
    _execute(
        con,
        f"create temp table m3_{f} as select *, list_concat(_reasons, {_reasons_sql(checks)}) as _all from m2_{f}",
        q.values,
    )
    cols = ", ".join(_ident(c) for c in contract.column_names)
    con.execute(f"create temp table out_{f} as select {cols} from m3_{f} where len(_all) = 0 order by _row_number")
    con.execute(f"create temp table accepted_rows_{f} as select _row_number from m3_{f} where len(_all) = 0")
    packed = ", ".join(f"{c} := m.{c}" for c in contract.column_names)
    con.execute(
        f"insert into rejected select $feed, m._row_number, m._line, "
        f"case when m._is_group then to_json(struct_pack({packed}))::varchar else s.record end, "
        "m._all "
        f"from m3_{f} as m left join src_records as s on s._row_number = m._row_number and not m._is_group "
        "where len(m._all) > 0",
        {"feed": feed},
    )
    by_rule = dict(
        con.execute(
            "select r.rule, count(distinct row_number) from "
            "(select row_number, unnest(reasons) as r from rejected where feed = $feed) group by all order by 2 desc",
            {"feed": feed},
        ).fetchall()
    )
    mapped = con.execute(f"select count(*) from out_{f}").fetchone()[0]
    rejected = con.execute("select count(*) from rejected where feed = $feed", {"feed": feed}).fetchone()[0]
    return FeedResult(
        feed,
        total if fm.derive_from is None else candidates,
        superseded,
        filtered_out,
        mapped,
        rejected,
        by_rule,
        date_checks=date_checks,
    )


def _rule_origin(rule: ColumnRule) -> str:
    if rule.column is not None:
        return f" (from column {rule.column!r})"
    if rule.columns is not None:
        return f" (from columns {', '.join(repr(c) for c in rule.columns)})"
    if rule.base is not None:
        return f" (from {rule.base} + durations)"
    return ""


# ---------------------------------------------------------------------------------------------
# writing


def _sql_string(value: str) -> str:
    """A SQL string literal for a file path (COPY takes no parameters); quotes are doubled."""
    if "\x00" in value:
        raise MappingError("path contains a NUL character")
    return "'" + value.replace("'", "''") + "'"


def _day_expr(feed: str, col: str) -> str:
    x = _ident(col)
    if FEEDS[feed].column(col).type == "timestamp":
        return f"strftime(timezone($zone, {x}), '%Y-%m-%d')"
    return f"strftime({x}, '%Y-%m-%d')"


def _export_select(feed: str, fmt: str, table: str | None = None, where: str | None = None) -> str:
    contract = FEEDS[feed]
    cols = []
    for c in contract.columns:
        x = _ident(c.name)
        if fmt != "parquet" and c.type == "timestamp":
            cols.append(f"strftime(timezone('UTC', {x}), '%Y-%m-%dT%H:%M:%S') || '+00:00' as {x}")
        elif fmt != "parquet" and c.type in ("date", "month"):
            cols.append(f"strftime({x}, '%Y-%m-%d') as {x}")
        else:
            cols.append(x)
    source = table or f"out_{_ident(feed)}"
    return f"select {', '.join(cols)} from {source}" + (f" where {where}" if where else "")


def _copy(con: duckdb.DuckDBPyConnection, select: str, path: Path, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    options = {"csv": "format csv, header true", "parquet": "format parquet", "jsonl": "format json"}[fmt]
    con.execute(f"copy ({select}) to {_sql_string(str(tmp))} ({options})")
    os.replace(tmp, path)


def write_outputs(
    run: _Run,
    landing_dir: Path,
    rejected_dir: Path,
    as_of: dt.date,
    *,
    output_format: str | None = None,
    stem: str | None = None,
) -> MappingResult:
    """Write landing/<feed>/<stem>.<ext> per feed (stem default <as_of>_<name>) and the rejected rows."""
    fmt = output_format or run.mapping.output.format
    ext = {"csv": "csv", "parquet": "parquet", "jsonl": "jsonl"}[fmt]
    name = run.mapping.name
    stem = stem or f"{as_of.isoformat()}_{name}"
    if not stem.startswith(as_of.isoformat()) or "/" in stem or stem.startswith("."):
        raise MappingError(f"landing file stem {stem!r} must start with the date {as_of}")
    split = run.mapping.output.split_by_day
    zone = run.mapping.source.timezone or "UTC"
    days: dict[str, list[str]] = {}
    for feed, col in split.items():
        day = _day_expr(feed, col)
        days[feed] = [
            r[0]
            for r in _execute(
                run.con,
                f"select distinct {day} as d from out_{_ident(feed)} where d is not null order by d",
                {"zone": zone},
            ).fetchall()
        ]
        # rows without a day go into the first day's file
        _execute(
            run.con,
            f"create or replace temp table day_{_ident(feed)} as select *, "
            f"coalesce({day}, $first) as _day from out_{_ident(feed)}",
            {"zone": zone, "first": days[feed][0] if days[feed] else as_of.isoformat()},
        )
    all_days = sorted({d for ds in days.values() for d in ds})
    single_stem = stem
    if all_days and stem == f"{as_of.isoformat()}_{name}":
        single_stem = f"{all_days[0]}_{name}"
    for feed, res in run.results.items():
        if feed in split:
            paths = []
            for day in days[feed]:
                path = Path(landing_dir) / feed / f"{day}_{name}.{ext}"
                select = _export_select(feed, fmt, table=f"day_{_ident(feed)}", where=f"_day = {_sql_string(day)}")
                _copy(run.con, select, path, fmt)
                paths.append(path)
            res.paths = paths
            res.path = paths[0] if paths else None
            continue
        path = Path(landing_dir) / feed / f"{single_stem}.{ext}"
        _copy(run.con, _export_select(feed, fmt), path, fmt)
        res.path = path
        res.paths = [path]
    rejected_path = Path(rejected_dir) / f"{stem}.csv"
    select = (
        f"select {_sql_string(name)} as mapping, feed, {_sql_string(str(run.source_file))} as source_file, "
        "row_number, line, reasons[1].rule as rule, "
        "array_to_string(list_transform(reasons, lambda r: r.reason), '; ') as reason, record "
        "from rejected order by feed, row_number"
    )
    _copy(run.con, select, rejected_path, "csv")
    first_rows, first_lines = run.con.execute(
        "select coalesce(list(row_number order by row_number)[1:$n], []), "
        "coalesce(list(line order by row_number)[1:$n], []) from rejected where feed = '(source)'",
        {"n": FIRST_ROWS},
    ).fetchone()
    return MappingResult(
        name,
        run.source_file,
        run.results,
        rejected_path,
        run.malformed,
        where_text(run.malformed, first_rows, first_lines) if run.malformed else "",
    )


def apply_mapping(
    mapping_path: str | Path,
    source_path: str | Path,
    landing_dir: str | Path,
    *,
    rejected_dir: str | Path | None = None,
    as_of: dt.date | None = None,
) -> MappingResult:
    """Map one source file and write landing/<feed>/<as_of>_<name>.<ext> for every feed of the mapping.

    The rejected rows go to <rejected_dir>/<as_of>_<name>.csv (default: a `mapping_rejected` folder
    beside the landing folder, so the landing sensor never mistakes it for a feed).
    """
    mapping = load_mapping(mapping_path)
    landing_dir = Path(landing_dir)
    rejected = Path(rejected_dir) if rejected_dir is not None else landing_dir.parent / "mapping_rejected"
    run = run_mapping(mapping, Path(source_path), work_dir=landing_dir.parent / "work")
    try:
        refusals = run.refusals()
        if refusals:
            raise MappingError("\n".join(f"{mapping_path}: {r}; nothing was written" for r in refusals))
        return write_outputs(run, landing_dir, rejected, as_of or dt.date.today())
    finally:
        run.con.close()


def rejected_rows(run: _Run, feed: str | None = None) -> list[dict[str, Any]]:
    rows = run.con.execute(
        "select feed, row_number, line, reasons[1].rule, array_to_string(list_transform(reasons, lambda r: "
        "r.reason), '; '), record from rejected where $feed is null or feed = $feed order by feed, row_number",
        {"feed": feed},
    ).fetchall()
    return [dict(zip(("feed", "row_number", "line", "rule", "reason", "record"), r, strict=True)) for r in rows]


def mapped_rows(run: _Run, feed: str, limit: int | None = None, as_text: bool = False) -> list[dict[str, Any]]:
    """The mapped rows of a feed: typed values, or (as_text) exactly as a CSV landing file has them."""
    select = _export_select(feed, "csv") if as_text else f"select * from out_{_ident(feed)}"
    cur = run.con.execute(select + (f" limit {int(limit)}" if limit else ""))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
