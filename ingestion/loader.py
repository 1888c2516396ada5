"""Load landing files into DuckDB schema `raw`, one table per feed, with DuckDB's own readers.

For each new file (by content hash) of a feed, in ONE transaction:
  * every row that meets the feed contract goes into raw.<feed> (typed columns + load metadata);
  * every row that does not goes into raw.rejected_rows with the rule(s) it broke and the original record;
  * malformed lines (unterminated quote, wrong number of fields, invalid JSON) go there too;
  * raw.load_log gets one row for the file (rows read, loaded, rejected).
So every landed row is either loaded or rejected, a file is loaded completely or not at all, and a file
already loaded (same content hash) is skipped. A file that cannot be read at all (missing required column,
undecodable bytes) raises FeedLoadError naming the file and the rule; files loaded before stay untouched.

All row work is one SQL statement per file compiled from the contract; Python never loops over rows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ingestion.contracts import FEEDS, LOAD_METADATA_COLUMNS, Column, Feed
from ingestion.faults import fault_point
from ingestion.landing import (
    LandingError,
    LandingFile,
    csv_header,
    detect_encoding,
    file_hash,
    list_files,
    transcode_to_utf8,
)

DEFAULT_TIMEZONE = "Asia/Shanghai"
FUTURE_TOLERANCE = "interval 1 day"

REJECTED_ROWS_DDL = """
create table if not exists raw.rejected_rows (
    feed varchar,
    source_file varchar,
    file_hash varchar,
    row_number bigint,
    line_number bigint,
    rule varchar,
    reason varchar,
    record varchar,
    loaded_at timestamptz,
    run_id varchar
)
"""

LOAD_LOG_DDL = """
create table if not exists raw.load_log (
    feed varchar,
    source_file varchar,
    file_hash varchar,
    file_day date,
    encoding varchar,
    rows_read bigint,
    rows_loaded bigint,
    rows_rejected bigint,
    extra_columns varchar,
    loaded_at timestamptz,
    run_id varchar
)
"""


class FeedLoadError(Exception):
    """A feed file that cannot be loaded; the message names the file and the rule."""


class WarehouseLockedError(FeedLoadError):
    """Another process holds DuckDB's write lock on the warehouse: worth another try later."""


@dataclass
class FileLoad:
    source_file: str
    file_hash: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    skipped: bool = False
    encoding: str = ""
    extra_columns: list[str] = field(default_factory=list)


@dataclass
class FeedLoadResult:
    feed: str
    files: list[FileLoad] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    months_touched: list[str] = field(default_factory=list)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files)

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def files_read(self) -> int:
        return sum(1 for f in self.files if not f.skipped)

    @property
    def files_skipped(self) -> int:
        return sum(1 for f in self.files if f.skipped)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


@contextlib.contextmanager
def connect(warehouse: Path, timezone: str = DEFAULT_TIMEZONE) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived writer connection; DuckDB allows one writer process, so never keep it open."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(warehouse))
    except duckdb.IOException as exc:
        raise WarehouseLockedError(
            f"{warehouse}: the warehouse is locked by another process (another run is writing it): {exc}"
        ) from exc
    try:
        con.execute(f"set TimeZone = {quote_literal(timezone)}")
        yield con
    finally:
        con.close()


def raw_table_ddl(feed: Feed) -> str:
    cols = [f"{quote_ident(c.name)} {c.raw_type}" for c in feed.columns]
    cols += [f"{quote_ident(n)} {t}" for n, t in LOAD_METADATA_COLUMNS]
    return f"create table if not exists raw.{quote_ident(feed.name)} (\n    " + ",\n    ".join(cols) + "\n)"


def ensure_raw_schema(con: duckdb.DuckDBPyConnection, feeds: Iterable[Feed] = FEEDS.values()) -> None:
    con.execute("create schema if not exists raw")
    con.execute(REJECTED_ROWS_DDL)
    con.execute(LOAD_LOG_DDL)
    for feed in feeds:
        con.execute(raw_table_ddl(feed))


# --- compiling the contract to SQL -------------------------------------------------------------------

TRUE_TOKENS = ("true", "t", "1", "y", "yes")
FALSE_TOKENS = ("false", "f", "0", "n", "no")
EXTRA_TIMESTAMP_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y%m%d %H:%M:%S")


def _sql_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(quote_literal(v) for v in values) + ")"


def _parse_text(col: Column, t: str) -> str:
    """SQL that parses trimmed text `t` into the contract type; NULL when it cannot."""
    if col.type in ("string", "enum"):
        return t
    if col.type == "timestamp":
        fmts = "[" + ", ".join(quote_literal(f) for f in EXTRA_TIMESTAMP_FORMATS) + "]"
        return f"coalesce(try_cast({t} as timestamptz), cast(try_strptime({t}, {fmts}) as timestamptz))"
    if col.type == "date":
        return f"coalesce(try_cast({t} as date), cast(try_cast({t} as timestamp) as date))"
    if col.type == "month":
        return (
            f"case when regexp_full_match({t}, '\\d{{4}}-\\d{{2}}') then try_cast({t} || '-01' as date) "
            f"else date_trunc('month', try_cast({t} as date)) end"
        )
    if col.type == "int":
        return (
            f"case when try_cast({t} as double) = floor(try_cast({t} as double)) "
            f"then try_cast(try_cast({t} as double) as bigint) end"
        )
    if col.type == "decimal":
        return f"try_cast({t} as double)"
    if col.type == "bool":
        return (
            f"case when lower({t}) in {_sql_list(TRUE_TOKENS)} then true "
            f"when lower({t}) in {_sql_list(FALSE_TOKENS)} then false end"
        )
    raise ValueError(f"unknown column type {col.type}")


def _parse_typed(col: Column, src: str, source_type: str) -> str:
    """Parse a column that the reader already typed (Parquet)."""
    if col.type == "month":
        return f"cast(date_trunc('month', try_cast({src} as date)) as date)"
    if col.type == "timestamp" and source_type.upper().startswith("TIMESTAMP"):
        return f"cast({src} as timestamptz)"
    return f"try_cast({src} as {col.raw_type})"


def _checks(feed: Feed, present: set[str]) -> list[tuple[str, str, str]]:
    """(rule, SQL condition that is true when the row breaks it, SQL message expression)."""
    checks: list[tuple[str, str, str]] = []
    for col in feed.columns:
        c = quote_ident(col.name)
        t = quote_ident(f"__t_{col.name}")
        name = quote_literal(col.name)
        if col.required:
            checks.append((f"required:{col.name}", f"{t} is null",
                           f"{name} || ': required value is missing'"))
        if col.type != "string" and col.type != "enum":
            checks.append((f"type:{col.name}", f"{t} is not null and {c} is null",
                           f"{name} || ': cannot read ''' || {t} || ''' as {col.type}'"))
        if col.type == "enum" and col.values:
            checks.append((f"enum:{col.name}", f"{c} is not null and {c} not in {_sql_list(col.values)}",
                           f"{name} || ': ''' || {c} || ''' is not one of {', '.join(col.values)}'"))
        if col.min is not None:
            checks.append((f"range:{col.name}", f"{c} < {col.min}",
                           f"{name} || ': ' || {t} || ' is below the minimum {col.min:g}'"))
        if col.max is not None:
            checks.append((f"range:{col.name}", f"{c} > {col.max}",
                           f"{name} || ': ' || {t} || ' is above the maximum {col.max:g}'"))
        if col.not_in_future:
            checks.append((f"future:{col.name}", f"{c} > now() + {FUTURE_TOLERANCE}",
                           f"{name} || ': ' || {t} || ' is in the future'"))
    for rule in feed.rules:
        checks.append((f"rule:{rule.name}", f"not coalesce(({rule.predicate}), true)",
                       quote_literal(rule.message)))
    for ref in feed.references:
        col = quote_ident(ref.column)
        checks.append((
            f"reference:{ref.column}",
            f"{col} is not null and not exists (select 1 from raw.{quote_ident(ref.feed)} as r "
            f"where r.{quote_ident(ref.feed_column)} = c.{col})",
            f"{quote_literal(ref.column)} || ': unknown ' || {col} || ' (not in {ref.feed})'",
        ))
    key_cols = list(feed.key) + ([feed.version_column] if feed.version_column else [])
    partition = ", ".join(quote_ident(k) for k in key_cols)
    checks.append((
        "duplicate_key",
        f"row_number() over (partition by {partition} order by _ordinal) > 1",
        "'same key " + ("and " + feed.version_column + " " if feed.version_column else "")
        + "as an earlier row of this file'",
    ))
    return checks


def compile_feed_select(feed: Feed, source_sql: str, source_types: dict[str, str], jsonl: bool = False) -> str:
    """One SELECT over the reader that types every column and lists the rules each row breaks."""
    typed_cols = ["s.__malformed as __malformed"] if jsonl else []
    for col in feed.columns:
        src = f"s.{quote_ident(col.name)}"
        stype = source_types.get(col.name)
        if stype is None:
            text, parsed = "cast(null as varchar)", f"cast(null as {col.raw_type})"
        elif stype.upper() == "VARCHAR":
            text = f"nullif(trim({src}), '')"
            parsed = f"cast({_parse_text(col, text)} as {col.raw_type})"
        else:
            text = f"cast({src} as varchar)"
            parsed = _parse_typed(col, src, stype)
        typed_cols.append(f"{text} as {quote_ident('__t_' + col.name)}")
        typed_cols.append(f"{parsed} as {quote_ident(col.name)}")
    checks = _checks(feed, set(source_types))
    if jsonl:
        checks.insert(0, ("malformed_line", "__malformed is not null", "'line is not a valid JSON object'"))
    problems = ", ".join(f"case when {cond} then {quote_literal(rule)} || '|' || ({msg}) end"
                         for rule, cond, msg in checks)
    return f"""
with numbered as (
    select s.*, row_number() over () as _ordinal, to_json(s) as _record from ({source_sql}) as s
),
typed as (
    select _ordinal, _record, {', '.join(typed_cols)}
    from numbered as s
),
checked as (
    select c.*, list_filter([{problems}], lambda x: x is not null) as _problems
    from typed as c
)
select * from checked
"""


# --- readers --------------------------------------------------------------------------------------------

def _csv_reader(path: Path, header: list[str], rejects: str) -> str:
    columns = "{" + ", ".join(f"{quote_literal(h)}: 'VARCHAR'" for h in header) + "}"
    return (
        f"select * from read_csv({quote_literal(str(path))}, header = true, auto_detect = false, "
        f"delim = ',', quote = '\"', escape = '\"', columns = {columns}, ignore_errors = true, "
        f"store_rejects = true, rejects_table = {quote_literal(rejects)}, "
        f"rejects_scan = {quote_literal(rejects + '_scan')}, null_padding = false)"
    )


def _jsonl_reader(path: Path, feed: Feed) -> tuple[str, dict[str, str]]:
    lines = (
        f"select line, try_cast(line as json) as j from read_csv({quote_literal(str(path))}, header = false, "
        f"auto_detect = false, delim = '\x1f', quote = '', escape = '', columns = {{'line': 'VARCHAR'}}) "
        f"where trim(line) <> ''"
    )
    cols = ", ".join(f"j ->> {quote_literal(c.name)} as {quote_ident(c.name)}" for c in feed.columns)
    sql = f"select {cols}, case when j is null then line end as __malformed from ({lines})"
    return sql, {c.name: "VARCHAR" for c in feed.columns}


@dataclass
class PreparedSource:
    sql: str
    types: dict[str, str]
    encoding: str
    extra_columns: list[str]
    rejects_table: str | None = None
    jsonl: bool = False


def prepare_source(con: duckdb.DuckDBPyConnection, lf: LandingFile, feed: Feed, work_dir: Path,
                   digest: str) -> PreparedSource:
    """Decide how DuckDB reads the file; raise FeedLoadError when it cannot be read at all."""
    known = set(feed.column_names)
    if lf.format == "csv":
        if lf.path.stat().st_size == 0:
            header: list[str] = []
            encoding = "empty"
        else:
            try:
                encoding = detect_encoding(lf.path)
            except LandingError as exc:
                raise FeedLoadError(str(exc)) from exc
            path = lf.path
            if encoding == "gb18030":
                path = transcode_to_utf8(lf.path, encoding, work_dir / f"{digest}.csv")
            header = csv_header(path)
        if not header:
            return PreparedSource(
                "select " + ", ".join(f"cast(null as varchar) as {quote_ident(c)}" for c in feed.column_names)
                + " where false", {c: "VARCHAR" for c in feed.column_names}, encoding, [])
        if len(set(header)) != len(header):
            dupes = sorted({h for h in header if header.count(h) > 1})
            raise FeedLoadError(f"{lf.path}: duplicated column(s) {', '.join(dupes)} in the header "
                                f"(rule: header_unique)")
        _require_columns(lf, feed, header)
        rejects = f"rej_{digest[:16]}"
        return PreparedSource(_csv_reader(path, header, rejects), {h: "VARCHAR" for h in header if h in known},
                              encoding, [h for h in header if h not in known], rejects_table=rejects)
    if lf.format == "jsonl":
        sql, types = _jsonl_reader(lf.path, feed)
        return PreparedSource(sql, types, "utf-8", [], jsonl=True)
    if lf.format == "parquet":
        src = f"read_parquet({quote_literal(str(lf.path))})"
        try:
            described = con.execute(f"describe select * from {src}").fetchall()
        except duckdb.Error as exc:
            reason = str(exc).splitlines()[0]
            raise FeedLoadError(f"{lf.path}: cannot read the Parquet file ({reason}) "
                                f"(rule: parquet_readable; the file was not loaded)") from exc
        types = {str(n).strip().lower(): str(t) for n, t, *_ in described}
        _require_columns(lf, feed, list(types))
        cols = ", ".join(f"{quote_ident(n)} as {quote_ident(str(n).strip().lower())}" for n, *_ in described)
        return PreparedSource(f"select {cols} from {src}", {k: v for k, v in types.items() if k in known},
                              "parquet", [k for k in types if k not in known])
    if lf.format == "xlsx":
        import pandas as pd

        try:
            frame = pd.read_excel(lf.path, dtype=str, engine="openpyxl")
        except Exception as exc:  # not a zip, not a workbook, no sheet: openpyxl raises many kinds
            raise FeedLoadError(f"{lf.path}: cannot read the Excel workbook ({type(exc).__name__}: {exc}) "
                                f"(rule: xlsx_readable; the file was not loaded)") from exc
        frame.columns = [str(c).strip().lower() for c in frame.columns]
        _require_columns(lf, feed, list(frame.columns))
        view = f"xlsx_{digest[:16]}"
        con.register(view, frame)
        return PreparedSource(f"select * from {quote_ident(view)}",
                              {c: "VARCHAR" for c in frame.columns if c in known}, "xlsx",
                              [c for c in frame.columns if c not in known])
    raise FeedLoadError(f"{lf.path}: unsupported format {lf.format}")


def _require_columns(lf: LandingFile, feed: Feed, header: list[str]) -> None:
    missing = [c for c in feed.required_columns if c not in header]
    if missing:
        raise FeedLoadError(
            f"{lf.path}: missing required column(s) {', '.join(missing)} for feed {feed.name} "
            f"(rule: required_columns; the file was not loaded)"
        )


# --- loading ---------------------------------------------------------------------------------------------

def already_loaded(con: duckdb.DuckDBPyConnection, feed: str, digest: str) -> bool:
    sql = "select count(*) from raw.load_log where feed = ? and file_hash = ?"
    return bool(con.execute(sql, [feed, digest]).fetchall()[0][0])


def load_file(con: duckdb.DuckDBPyConnection, lf: LandingFile, feed: Feed, run_id: str,
              work_dir: Path, landing_root: Path) -> FileLoad:
    digest = file_hash(lf.path)
    rel = str(lf.path.relative_to(landing_root.resolve()))
    result = FileLoad(source_file=rel, file_hash=digest)
    if already_loaded(con, feed.name, digest):
        result.skipped = True
        return result
    prepared = prepare_source(con, lf, feed, work_dir, digest)
    result.encoding, result.extra_columns = prepared.encoding, prepared.extra_columns
    select_sql = compile_feed_select(feed, prepared.sql, prepared.types, jsonl=prepared.jsonl)
    loaded_at = dt.datetime.now(dt.UTC)
    meta = [rel, digest, loaded_at, run_id]
    cols = ", ".join(quote_ident(c) for c in feed.column_names)
    con.execute("begin transaction")
    try:
        con.execute(f"create or replace temp table _batch as {select_sql}")
        con.execute(
            f"insert into raw.{quote_ident(feed.name)} select {cols}, ?, ?, _ordinal, ?, ? from _batch "
            f"where len(_problems) = 0",
            meta,
        )
        con.execute(
            "insert into raw.rejected_rows select ?, ?, ?, _ordinal, null, "
            "split_part(_problems[1], '|', 1), "
            "array_to_string(list_transform(_problems, lambda x: substr(x, strpos(x, '|') + 1)), '; '), "
            "cast(_record as varchar), ?, ? from _batch where len(_problems) > 0",
            [feed.name, rel, digest, loaded_at, run_id],
        )
        if prepared.rejects_table:
            con.execute(
                # DuckDB may report several errors for one line: one rejected row per line
                f"insert into raw.rejected_rows select ?, ?, ?, line - 1, line, 'malformed_line', "
                f"arg_max(error_type || ': ' || error_message, coalesce(column_idx, 0)), any_value(csv_line), ?, ? "
                f"from {quote_ident(prepared.rejects_table)} group by line",
                [feed.name, rel, digest, loaded_at, run_id],
            )
        counts = con.execute(
            "select count(*) filter (where feed = ? and file_hash = ?) from raw.rejected_rows",
            [feed.name, digest],
        ).fetchall()[0]
        loaded = con.execute("select count(*) from _batch where len(_problems) = 0").fetchall()[0]
        result.rows_loaded = int(loaded[0]) if loaded else 0
        result.rows_rejected = int(counts[0]) if counts else 0
        result.rows_read = result.rows_loaded + result.rows_rejected
        con.execute(
            "insert into raw.load_log values (?, ?, ?, try_cast(? as date), ?, ?, ?, ?, ?, ?, ?)",
            [feed.name, rel, digest, lf.day, result.encoding, result.rows_read, result.rows_loaded,
             result.rows_rejected, ",".join(result.extra_columns), loaded_at, run_id],
        )
        con.execute("drop table _batch")
        fault_point(f"load:{rel}")  # tests kill the process here: the file's rows are written, not committed
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        if prepared.rejects_table:
            for t in (prepared.rejects_table, prepared.rejects_table + "_scan"):
                con.execute(f"drop table if exists {quote_ident(t)}")
    return result


def load_feed(warehouse: Path, landing: Path, feed_name: str, run_id: str, work_dir: Path,
              day_from: str | None = None, day_to: str | None = None,
              timezone: str = DEFAULT_TIMEZONE) -> FeedLoadResult:
    """Load every new file of one feed. Raises FeedLoadError after loading the good files if any file failed."""
    files, ignored = list_files(landing, feed_name, day_from=day_from, day_to=day_to)
    feed = FEEDS[feed_name]
    result = FeedLoadResult(feed=feed_name, ignored=ignored)
    with connect(warehouse, timezone) as con:
        ensure_raw_schema(con)
        for lf in files:
            try:
                result.files.append(load_file(con, lf, feed, run_id, work_dir, landing))
            except (FeedLoadError, duckdb.Error) as exc:
                msg = str(exc) if isinstance(exc, FeedLoadError) else f"{lf.path}: {exc}"
                result.errors.append(msg)
        result.months_touched = months_touched(con, feed, [f.file_hash for f in result.files if not f.skipped],
                                               timezone)
    if result.errors:
        raise FeedLoadError(f"feed {feed_name}: {len(result.errors)} file(s) could not be loaded:\n  - "
                            + "\n  - ".join(result.errors))
    return result


def months_touched(con: duckdb.DuckDBPyConnection, feed: Feed, hashes: list[str], timezone: str) -> list[str]:
    """Months (YYYY-MM-01, local time) that the rows of these files count for: what must be rebuilt."""
    if not hashes or not feed.period_columns:
        return []
    parts = []
    for name in feed.period_columns:
        col = quote_ident(name)
        expr = (f"{col} at time zone {quote_literal(timezone)}" if feed.column(name).type == "timestamp" else col)
        parts.append(f"select distinct cast(date_trunc('month', {expr}) as date) as m "
                     f"from raw.{quote_ident(feed.name)} where _file_hash in (select unnest(?)) and {col} is not null")
    rows = con.execute(" union ".join(parts) + " order by 1", [hashes] * len(parts)).fetchall()
    return [r[0].isoformat() for r in rows]
