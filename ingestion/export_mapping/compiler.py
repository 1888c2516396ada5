"""A feed of a mapping compiled to DuckDB SQL: one typed expression per contract column and, per row, the
mapping rules and contract checks that failed. Every literal of a mapping is a bound parameter."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import duckdb

from ingestion.contracts import FEEDS, Feed
from ingestion.export_mapping.sources import quote_ident
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
    swap_day_month,
)

DURATION_PATTERN = r"^\d+:[0-5]\d:[0-5]\d(\.\d+)?$"
OFFSET_PATTERN = r"(Z|[+-]\d\d(:?\d\d)?)$"
TRUE_TOKENS = ["true", "t", "1", "y", "yes"]
FALSE_TOKENS = ["false", "f", "0", "n", "no"]
# the year position of generated date_order formats: four digits -> %Y, two digits -> %y (DuckDB's pivot)
YEAR_LAST_4 = r"^\d{1,2}[-/.]\d{1,2}[-/.]\d{4}(\D|$)"
YEAR_LAST_2 = r"^\d{1,2}[-/.]\d{1,2}[-/.]\d{2}(\D|$)"
YEAR_FIRST_4 = r"^\d{4}[-/.]"
OTHER_ORDER = {"day_first": "month_first", "month_first": "day_first"}


class Params:
    """Bound parameters: every literal from a mapping goes through here, never into the SQL text."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def __call__(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"${name}"


def execute(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> duckdb.DuckDBPyConnection:
    """Execute with only the parameters the statement uses (compilation may register unused ones)."""
    used = set(re.findall(r"\$([a-z]\w*)", sql))
    return con.execute(sql, {k: v for k, v in params.items() if k in used})


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def ident(name: str) -> str:
    if not TARGET_NAME.fullmatch(name):
        raise MappingError(f"internal: {name!r} is not a safe identifier")
    return name


@dataclass
class Failure:
    condition: str  # SQL: true when the rule failed for the row
    rule: str  # key path of the rule, e.g. feeds.tickets.columns.created_at.formats
    message: str  # SQL text expression with the reason


@dataclass
class Compiled:
    expr: str  # typed SQL expression
    failures: list[Failure]


class FeedCompiler:
    def __init__(self, mapping: Mapping, feed: str, fm: FeedMapping, p: Params) -> None:
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

    def text_expr(self, col: str, rule: ColumnRule) -> tuple[str, str, list[Failure]]:
        """(text expression, description of the input for messages, failures)."""
        ctype = self.contract.column(col).type
        failures: list[Failure] = []
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
                    Failure(
                        f"({expr} is not null and not list_contains({self.p(keys)}::varchar[], {expr}))",
                        f"{self.where(col)}.values",
                        f"{self.p(f'value of {desc} not in the value map of {col}: ')} || {expr}",
                    )
                )
            expr = mapped
        return expr, desc, failures

    def compile(self, col: str, rule: ColumnRule) -> Compiled:
        c = self.contract.column(col)
        w = self.where(col)
        failures: list[Failure] = []
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
                    Failure(
                        f"({ref} is not null and not {ok})",
                        rw,
                        f"{self.p(f'column {part.source_column!r} is not a duration H:MM:SS: ')} || {ref}",
                    )
                )
            else:
                factor = {"seconds": 1, "minutes": 60, "hours": 3600}[part.unit]
                secs = f"(try_cast({ref} as double) * {factor})"
                failures.append(
                    Failure(
                        f"({ref} is not null and try_cast({ref} as double) is null)",
                        rw,
                        f"{self.p(f'column {part.source_column!r} is not a number of {part.unit}: ')} || {ref}",
                    )
                )
            expr = f"({expr} + to_seconds({secs}))"
        if rule.when is not None:
            cond = self.condition(rule.when)
            expr = f"(case when {cond} then {expr} end)"
            failures = [Failure(f"({cond} and {f.condition})", f.rule, f.message) for f in failures]
        if rule.fallback is not None:
            expr = f"coalesce({expr}, {self.done[rule.fallback]})"
        if c.type in ("timestamp", "date", "month"):
            failures.append(self.plausible(col, c.type, rule, expr))
        self.done[col] = expr
        return Compiled(expr, failures)

    def plausible(self, col: str, ctype: str, rule: ColumnRule, expr: str) -> Failure:
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
        return Failure(
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
        only_d, only_m = execute(
            con,
            f"select count(*) filter (where ({d}) is not null and ({m}) is null), "
            f"count(*) filter (where ({m}) is not null and ({d}) is null) from {rows} as c where {where}",
            self.p.values,
        ).fetchone()
        self.orders[col] = "month_first" if only_m > only_d else "day_first"

    def typed(self, col: str, ctype: str, rule: ColumnRule, text: str, desc: str) -> tuple[str, list[Failure]]:
        w = self.where(col)
        fails: list[Failure] = []

        def fail(cond: str, aspect: str, message: str) -> None:
            fails.append(Failure(f"({text} is not null and {cond})", f"{w}.{aspect}", f"{self.p(message)} || {text}"))

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
                Failure(
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
                Failure(f"({unparsed} and {expr} is null)", f"{w}.{aspect}", f"{self.p(message + ': ')} || {text}")
            )
            return expr, fails
        date_expr = f"cast({naive} as date)"
        if has_iso:
            date_expr = f"coalesce({date_expr}, cast(try_cast({text} as timestamptz) as date))"
        if ctype == "month":
            date_expr = f"date_trunc('month', {date_expr})::date"
        aspect = "date_order" if rule.formats is None and rule.date_order is not None else "formats"
        fails.append(
            Failure(
                f"({unparsed} and {date_expr} is null)",
                f"{w}.{aspect}",
                f"{self.p(f'{desc} of {col} matches none of the formats [{shown}]: ')} || {text}",
            )
        )
        return date_expr, fails


def reasons_sql(failures: list[tuple[str, str, str]]) -> str:
    """SQL list of {rule, reason} structs for the failures that apply to a row."""
    if not failures:
        return "[]::struct(rule varchar, reason varchar)[]"
    items = ", ".join(f"case when {cond} then {{'rule': {rule}, 'reason': {msg}}} end" for cond, rule, msg in failures)
    return f"list_filter([{items}], lambda x: x is not null)::struct(rule varchar, reason varchar)[]"
