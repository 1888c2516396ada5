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

import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ingestion.contracts import FEEDS
from ingestion.export_mapping.compiler import OTHER_ORDER, FeedCompiler, Params, execute, ident, reasons_sql
from ingestion.export_mapping.sources import MALFORMED_TABLE, SOURCE_TABLE, load_source, quote_ident
from ingestion.export_mapping.spec import (
    AUTO,
    ColumnRule,
    Mapping,
    MappingError,
    referenced_source_columns,
)

CLEAN_TABLE = "src_clean"
REJECTED_COLUMNS = ("mapping", "feed", "source_file", "row_number", "line", "rule", "reason", "record")


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


@dataclass
class MappingRun:
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


def run_mapping(mapping: Mapping, source_file: Path, work_dir: Path | None = None) -> MappingRun:
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
    p = Params()
    tokens = p(list(mapping.source.null_tokens))
    cleaned = []
    for col in columns:
        ref = quote_ident(col)
        value = f"trim({ref})" if mapping.source.trim else ref
        cleaned.append(f"case when list_contains({tokens}::varchar[], {value}) then null else {value} end as {ref}")
    execute(
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
    return MappingRun(con, mapping, source_file, results, read.malformed, notes)


def _run_feed(con: duckdb.DuckDBPyConnection, mapping: Mapping, feed: str, total: int) -> FeedResult:
    fm = mapping.feeds[feed]
    contract = FEEDS[feed]
    f = ident(feed)
    p = Params()
    # 1. rows
    if fm.derive_from is not None:
        parent = ident(fm.derive_from)
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
    fc = FeedCompiler(mapping, feed, fm, p)
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
            exprs.append(f"null::{raw_type} as {ident(col)}")
            flags.append(f"false as _f_{col}")
            continue
        compiled = fc.compile(col, rule)
        exprs.append(f"cast({compiled.expr} as {raw_type}) as {ident(col)}")
        failures += [(x.condition, p(x.rule), x.message) for x in compiled.failures]
        any_fail = " or ".join(f"coalesce({x.condition}, false)" for x in compiled.failures) or "false"
        flags.append(f"({any_fail}) as _f_{col}")
    checked = list(fc.day_month)
    ambiguity = "".join(
        f", {fc.day_month[col][2]} as _amb_{ident(col)}, {fc.day_month[col][3]} is not null as _has_{ident(col)}"
        for col in checked
    )
    execute(
        con,
        f"create temp table m1_{f} as select c._row_number, c._line, {', '.join(exprs)}, {', '.join(flags)}, "
        f"{reasons_sql(failures)} as _reasons{ambiguity} from rows_{f} as c where {where}",
        p.values,
    )
    mapped_in = con.execute(f"select count(*) from m1_{f}").fetchone()[0]
    date_checks = []
    for col in checked:
        x = ident(col)
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
        keys = [ident(k) for k in fm.distinct_on]
        aggs = []
        for col in contract.column_names:
            if col in keys:
                continue
            rule = fm.columns.get(col)
            pick = (rule.pick if rule is not None else None) or "mode"
            x = ident(col)
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
    q = Params()
    checks: list[tuple[str, str, str]] = []
    cw = f"contract.{feed}"
    for c in contract.columns:
        x = ident(c.name)
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
    execute(
        con,
        f"create temp table m3_{f} as select *, list_concat(_reasons, {reasons_sql(checks)}) as _all from m2_{f}",
        q.values,
    )
    cols = ", ".join(ident(c) for c in contract.column_names)
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
