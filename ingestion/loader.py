"""Load landing files into DuckDB schema `raw`, one table per feed, with DuckDB's own readers.

The new files (by content hash) of a feed are read in batches: all the files DuckDB reads the same way (all
Parquet files with one schema, all CSV files with one header, all JSON lines files) by ONE statement
(`read_parquet([...])` / `read_csv([...])` with the file name of every row), and each batch in ONE transaction:
  * every row that meets the feed contract goes into raw.<feed> (typed columns + load metadata);
  * every row that does not goes into raw.rejected_rows with the rule(s) it broke and the original record;
  * malformed lines (unterminated quote, wrong number of fields, invalid JSON) go there too;
  * raw.load_log gets one row per file (rows read, loaded, rejected).
So every landed row is either loaded or rejected, a file is loaded completely or not at all, and a file
already loaded (same content hash) is skipped. A file that cannot be read at all (missing required column,
undecodable bytes) raises FeedLoadError naming the file and the rule, after the other files are loaded; if a
batch's statement fails, its files are loaded one by one so that the error names the file.

All row work is SQL compiled from the contract; Python never loops over rows. A row is checked by one boolean
(all rules at once) on its way from the reader into raw; only the rows that break a rule are read again to
list the rules and keep the record.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ingestion.contracts import FEEDS, LOAD_METADATA_COLUMNS, Column, Feed, plausible_window
from ingestion.faults import fault_point
from ingestion.landing import (
    LandingError,
    LandingFile,
    csv_header,
    declared_encoding,
    file_hash,
    list_files,
    scan_text,
    transcode_to_utf8,
)
from ingestion.organisation import organisation_timezone
from ingestion.paths import DataDir, duckdb_settings
from ingestion.recovery import recover_late_references

DEFAULT_TIMEZONE = None  # None: the organisation's zone (ingestion.organisation) of the warehouse's data folder

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
    run_id varchar,
    recovered_at timestamptz,
    recovered_run_id varchar
)
"""
# set when a later load finds the reference a row was rejected for and loads it (ingestion.recovery)
REJECTED_ROWS_ADDED = (("recovered_at", "timestamptz"), ("recovered_run_id", "varchar"))
REJECTED_ROWS_INSERT = (
    "insert into raw.rejected_rows (feed, source_file, file_hash, row_number, line_number, rule, "
    "reason, record, loaded_at, run_id) "
)

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

# one row per landed file and run where the file was not read (bad name, invalid date, hidden, unsupported
# extension, a folder, a refused file, the sheets of a workbook after the first), with the reason
UNREAD_DDL = """
create table if not exists raw.unread_files (
    feed varchar,
    source_file varchar,
    file_hash varchar,
    reason varchar,
    run_id varchar,
    seen_at timestamptz
)
"""


class FeedLoadError(Exception):
    """A feed file that cannot be loaded; the message names the file and the rule. `result`: what load_feed did
    load and what it did not read (its `unread`), when the error comes from load_feed."""

    result: FeedLoadResult | None = None


class WarehouseLockedError(FeedLoadError):
    """Another process holds DuckDB's lock on the warehouse (a writer, or a reader such as a BI tool): worth another
    try later."""


class WarehouseCorruptError(FeedLoadError):
    """The warehouse file is not a readable DuckDB database: not worth another try; the message names the file."""


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
    # (source file, reason) of every landed file of the feed not read in this run (also in raw.unread_files)
    unread: list[tuple[str, str]] = field(default_factory=list)
    months_touched: list[str] = field(default_factory=list)
    rows_recovered: int = 0  # rows rejected by an earlier load for an unknown reference, loaded by this one

    @property
    def ignored(self) -> list[str]:
        """The unread files as 'file: reason' lines."""
        return [f"{name}: {reason}" for name, reason in self.unread]

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


def warehouse_timezone(warehouse: Path) -> str:
    """The organisation's zone of the data folder that holds the warehouse file (ingestion.organisation)."""
    return organisation_timezone(DataDir(warehouse.resolve().parent))


@contextlib.contextmanager
def connect(
    warehouse: Path,
    timezone: str | None = DEFAULT_TIMEZONE,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived writer connection; DuckDB allows one writer process, so never keep it open.
    Memory and threads: ingestion.paths.duckdb_settings (the pipeline's limits)."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(warehouse), config=duckdb_settings(memory_limit, threads))
    except duckdb.Error as exc:
        raise connect_error(warehouse, exc) from exc
    try:
        con.execute(f"set TimeZone = {quote_literal(timezone or warehouse_timezone(warehouse))}")
        yield con
    finally:
        con.close()


def _lock_holder(path: Path) -> tuple[str, int] | None:
    """('read'|'write', pid) of a POSIX lock another process holds on the file (DuckDB locks it with fcntl)."""
    import fcntl
    import struct

    fmt = "hhqqi4x"  # struct flock on Linux: l_type, l_whence, l_start, l_len, l_pid
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        got = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(fmt, fcntl.F_WRLCK, 0, 0, 0, 0))
        l_type, _w, _s, _l, pid = struct.unpack(fmt, got)
    except OSError:
        return None
    finally:
        os.close(fd)
    if l_type == fcntl.F_UNLCK:
        return None
    return ("read" if l_type == fcntl.F_RDLCK else "write"), pid


def connect_error(warehouse: Path, exc: duckdb.Error) -> FeedLoadError:
    """Tell a warehouse held by another process (retried) from one that is not a DuckDB database (not retried)."""
    first = str(exc).splitlines()[0]
    if isinstance(exc, duckdb.IOException) and "lock" in first.lower():
        holder = _lock_holder(warehouse)
        pid = f" (PID {holder[1]})" if holder else ""
        if (holder and holder[0] == "read") or (holder is None and "read-only mode" in str(exc)):
            return WarehouseLockedError(
                f"{warehouse}: the warehouse is held open by a reader{pid}, e.g. a BI tool or a duckdb shell "
                f"connected to the build warehouse (readers should open serving.duckdb); trying again later: {first}"
            )
        return WarehouseLockedError(
            f"{warehouse}: the warehouse is locked by another writer{pid} (another run is writing it): {first}"
        )
    return WarehouseCorruptError(
        f"{warehouse}: the warehouse file cannot be opened as a DuckDB database ({first}); not retried: restore "
        f"it from a backup, or move it away to rebuild it from the landing folder (rule: warehouse_readable)"
    )


def raw_table_ddl(feed: Feed) -> str:
    cols = [f"{quote_ident(c.name)} {c.raw_type}" for c in feed.columns]
    cols += [f"{quote_ident(n)} {t}" for n, t in LOAD_METADATA_COLUMNS]
    return f"create table if not exists raw.{quote_ident(feed.name)} (\n    " + ",\n    ".join(cols) + "\n)"


def ensure_raw_schema(con: duckdb.DuckDBPyConnection, feeds: Iterable[Feed] = FEEDS.values()) -> None:
    con.execute("create schema if not exists raw")
    con.execute(REJECTED_ROWS_DDL)
    for name, type_ in REJECTED_ROWS_ADDED:  # warehouses made before these columns existed
        con.execute(f"alter table raw.rejected_rows add column if not exists {name} {type_}")
    con.execute(LOAD_LOG_DDL)
    con.execute(UNREAD_DDL)
    for feed in feeds:
        con.execute(raw_table_ddl(feed))


# --- compiling the contract to SQL -------------------------------------------------------------------

TRUE_TOKENS = ("true", "t", "1", "y", "yes")
FALSE_TOKENS = ("false", "f", "0", "n", "no")
EXTRA_TIMESTAMP_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y%m%d %H:%M:%S")


def _sql_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(quote_literal(v) for v in values) + ")"


def _number(t: str) -> str:
    """A finite double from trimmed text: DuckDB's cast also reads '1_0' as 10 and 'NaN'/'Infinity' as numbers."""
    return f"case when not contains({t}, '_') and isfinite(try_cast({t} as double)) then try_cast({t} as double) end"


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
        d = _number(t)
        return f"case when {d} = floor({d}) then try_cast({d} as bigint) end"
    if col.type == "decimal":
        return _number(t)
    if col.type == "bool":
        return (
            f"case when lower({t}) in {_sql_list(TRUE_TOKENS)} then true "
            f"when lower({t}) in {_sql_list(FALSE_TOKENS)} then false end"
        )
    raise ValueError(f"unknown column type {col.type}")


INTEGER_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
)
NUMERIC_TYPES = (*INTEGER_TYPES, "FLOAT", "DOUBLE")


def is_nested(source_type: str) -> bool:
    """A struct, list, array, map or union as DuckDB reads it: never a plain value of a feed column."""
    t = source_type.upper()
    return "[" in t or t.startswith(("STRUCT", "MAP", "UNION", "LIST"))


def _parse_typed(col: Column, src: str, source_type: str) -> str:
    """Parse a column that the reader already typed (Parquet). Only a lossless conversion is a cast; anything else
    goes through the text rules (a double 0.4 is not an int, -1 is not a boolean, NaN is not an amount)."""
    t = source_type.upper()
    numeric = t in NUMERIC_TYPES or t.startswith("DECIMAL")
    if col.type == "month":
        return f"cast(date_trunc('month', try_cast({src} as date)) as date)"
    if col.type == "timestamp" and t.startswith(("TIMESTAMP", "DATE")):
        return f"cast({src} as timestamptz)"
    if col.type == "date" and t == "DATE":
        return src
    if col.type == "int" and t in INTEGER_TYPES:
        return f"try_cast({src} as bigint)"
    if col.type == "int" and numeric:
        d = f"cast({src} as double)"
        return f"case when isfinite({d}) and {d} = floor({d}) then try_cast({d} as bigint) end"
    if col.type == "decimal" and numeric:
        return f"case when isfinite(cast({src} as double)) then cast({src} as double) end"
    if col.type == "bool" and t == "BOOLEAN":
        return src
    if col.type in ("string", "enum"):
        return f"cast({src} as varchar)"
    return _parse_text(col, f"nullif(trim(cast({src} as varchar)), '')")


def _checks(
    feed: Feed, text: dict[str, str], missing: dict[str, str], not_plain: dict[str, str] | None = None
) -> list[tuple[str, str, str]]:
    """(rule, SQL condition that is true when the row breaks it, SQL message expression).

    `text[col]`: the column's value as text (for messages); `missing[col]`: true when the file gives no value
    (cheap: it does not build the text of a typed value); `not_plain[col]`: true when the value is a JSON object or
    array, or a struct or list (such a value is rejected, never loaded as its text)."""
    window = plausible_window()
    until_run = f"now() + interval {quote_literal(window.tolerance)}"
    checks: list[tuple[str, str, str]] = []
    for col in feed.columns:
        c = quote_ident(col.name)
        t, absent = text[col.name], missing[col.name]
        name = quote_literal(col.name)
        if col.required:
            checks.append((f"required:{col.name}", absent, f"{name} || ': required value is missing'"))
        if not_plain and col.name in not_plain:
            checks.append(
                (
                    f"type:{col.name}",
                    not_plain[col.name],
                    f"{name} || ': ' || {t} || ' is not a plain value (a JSON object or array, or a struct or list)'",
                )
            )
        if col.type != "string" and col.type != "enum":
            checks.append(
                (
                    f"type:{col.name}",
                    f"not ({absent}) and {c} is null",
                    f"{name} || ': cannot read ''' || {t} || ''' as {col.type}'",
                )
            )
        if col.type == "enum" and col.values:
            checks.append(
                (
                    f"enum:{col.name}",
                    f"{c} is not null and {c} not in {_sql_list(col.values)}",
                    f"{name} || ': ''' || {c} || ''' is not one of {', '.join(col.values)}'",
                )
            )
        if col.min is not None:
            checks.append(
                (
                    f"range:{col.name}",
                    f"{c} < {col.min}",
                    f"{name} || ': ' || {t} || ' is below the minimum {col.min:g}'",
                )
            )
        if col.max is not None:
            checks.append(
                (
                    f"range:{col.name}",
                    f"{c} > {col.max}",
                    f"{name} || ': ' || {t} || ' is above the maximum {col.max:g}'",
                )
            )
        if col.is_temporal:
            since = f"{'timestamptz' if col.type == 'timestamp' else 'date'} {quote_literal(window.since)}"
            if col.future:
                upper_text = f"before {window.far_until}"
                too_late = f"{c} >= date {quote_literal(window.far_until)}"
            else:
                upper_text = f"up to the run time + {window.tolerance}"
                too_late = "false" if col.not_in_future else f"{c} > {until_run}"
            checks.append(
                (
                    f"plausible:{col.name}",
                    f"{c} < {since} or {too_late}",
                    f"{name} || ': ' || {t} || ' is outside the plausible window (from {window.since}, {upper_text})'",
                )
            )
        if col.not_in_future:
            checks.append((f"future:{col.name}", f"{c} > {until_run}", f"{name} || ': ' || {t} || ' is in the future'"))
    for rule in feed.rules:
        checks.append((f"rule:{rule.name}", f"not coalesce(({rule.predicate}), true)", quote_literal(rule.message)))
    for ref in feed.references:
        col = quote_ident(ref.column)
        checks.append(
            (
                f"reference:{ref.column}",
                f"{col} is not null and not exists (select 1 from raw.{quote_ident(ref.feed)} as r "
                f"where r.{quote_ident(ref.feed_column)} = c.{col})",
                f"{quote_literal(ref.column)} || ': unknown ' || {col} || ' (not in {ref.feed})'",
            )
        )
    # a later row (in file order) with the key of an earlier row of its file: the earliest such row of each key
    # is in _dups (dups_sql), nearly always empty
    checks.append(
        (
            "duplicate_key",
            "c._ordinal > d.__dup_first",
            "'same key "
            + ("and " + feed.version_column + " " if feed.version_column else "")
            + "as an earlier row of this file'",
        )
    )
    return checks


def _dup_key_columns(feed: Feed) -> list[str]:
    return list(feed.key) + ([feed.version_column] if feed.version_column else [])


@dataclass(frozen=True)
class CompiledFeed:
    """The contract of a feed compiled to SQL over one source (see compile_feed)."""

    dups_sql: str  # SELECT: the earliest row of each key that occurs more than once in a file (for temp _dups)
    checked_sql: str  # SELECT: __file, _ordinal, the typed columns, _ok (true when the row breaks no rule)
    rejected_sql: str  # SELECT: __file, _ordinal, _problems ('rule|message' list), _record of rows breaking a rule


def compile_feed(
    feed: Feed,
    source_sql: str,
    source_types: dict[str, str],
    record_columns: list[str],
    jsonl: bool = False,
    lines: bool = False,
    xlsx: bool = False,
) -> CompiledFeed:
    """The contract as SQL over one reader: what finds duplicated keys, what types every column and tells whether
    the row meets the contract, and what lists the rules a rejected row breaks.

    `source_sql` yields the columns as read plus `__file` (the file DuckDB read the row from) and `__row` (the
    row's 1-based position in that file), for one file or for many files read by one reader; with `lines`, also
    `__line` (the physical line the row starts on); JSON lines also `__malformed` (the line, when it is not JSON)
    and `__nested` (the columns whose value is a JSON object or array).
    `record_columns` are the columns as read, kept as the JSON `_record` of a rejected row.

    Every row gets one cheap boolean (_ok, the AND of all rules over the typed columns); the list of the rules a
    row breaks, with its messages and its JSON record, is built only for the rows that break one (rejected_sql
    filters on _ok first). Columns that the reader already typed (Parquet) are not turned into text but for
    those messages."""
    typed_cols = ["s.__malformed as __malformed", "s.__nested as __nested"] if jsonl else []
    if xlsx:
        typed_cols.append("s.__uncached as __uncached")
    text: dict[str, str] = {}
    missing: dict[str, str] = {}
    not_plain: dict[str, str] = {}
    for col in feed.columns:
        src = f"s.{quote_ident(col.name)}"
        stype = source_types.get(col.name)
        t_col = quote_ident("__t_" + col.name)
        if jsonl:
            not_plain[col.name] = f"list_contains(__nested, {quote_literal(col.name)})"
        if stype is None:
            text[col.name], missing[col.name] = "cast(null as varchar)", "true"
            parsed = f"cast(null as {col.raw_type})"
        elif is_nested(stype):  # a struct or list column: every value of it is rejected
            typed_cols.append(f"{src} as {t_col}")
            text[col.name], missing[col.name] = f"cast({t_col} as varchar)", f"{t_col} is null"
            not_plain[col.name] = f"{t_col} is not null"
            parsed = f"cast(null as {col.raw_type})"
        elif stype.upper() == "VARCHAR":
            expr = f"nullif(trim({src}), '')"
            typed_cols.append(f"{expr} as {t_col}")
            text[col.name], missing[col.name] = t_col, f"{t_col} is null"
            parsed = f"cast({_parse_text(col, expr)} as {col.raw_type})"
        else:
            typed_cols.append(f"{src} as {t_col}")
            text[col.name], missing[col.name] = f"cast({t_col} as varchar)", f"{t_col} is null"
            parsed = _parse_typed(col, src, stype)
        typed_cols.append(f"{parsed} as {quote_ident(col.name)}")
    checks = _checks(feed, text, missing, not_plain)
    if jsonl:
        checks.insert(0, ("malformed_line", "__malformed is not null", "'line is not a valid JSON object'"))
    if xlsx:
        checks.insert(
            0,
            (
                "formula_not_calculated",
                "__uncached is not null",
                "'formula cell(s) without a calculated value in column(s) ' || __uncached || ' (the "
                "workbook was saved without calculating them; open it in Excel and save it again)'",
            ),
        )
    # one expression (not split into conjuncts): DuckDB evaluates it over the typed columns computed once, above
    # the join with _dups, instead of pushing each conjunct down into the reader with the casts inlined
    ok = "coalesce(" + " and ".join(f"not coalesce({cond}, false)" for _rule, cond, _msg in checks) + ", false)"
    problems = ", ".join(
        f"case when {cond} then {quote_literal(rule)} || '|' || ({msg}) end" for rule, cond, msg in checks
    )
    record = "{" + ", ".join(f"{quote_literal(c)}: s.{quote_ident(c)}" for c in record_columns) + "}"
    out_cols = ", ".join(f"c.{quote_ident(c)}" for c in feed.column_names)
    key_cols = [quote_ident(k) for k in _dup_key_columns(feed)]
    line = "s.__line" if lines else "cast(null as bigint)"
    typed = (
        f"select s.__file, s.__row as _ordinal, {line} as _line, {record} as _source, {', '.join(typed_cols)} "
        f"from ({source_sql}) as s"
    )
    dups = (
        "select __file as __dup_file, "
        + "".join(f"{k} as {quote_ident(f'__dup_k{i}')}, " for i, k in enumerate(key_cols))
        + f"min(_ordinal) as __dup_first from ({typed}) group by all having count(*) > 1"
    )
    joined = f"from ({typed}) as c left join _dups as d on c.__file = d.__dup_file" + "".join(
        f" and c.{k} is not distinct from d.{quote_ident(f'__dup_k{i}')}" for i, k in enumerate(key_cols)
    )
    checked = f"select c.__file, c._ordinal, {out_cols}, {ok} as _ok {joined}"
    # the JSON record is only made for rejected rows (to_json of every row is the costliest part of a load)
    rejected = f"""
with bad as (
    select c.__file, c._ordinal, c._line, c._source,
        list_filter([{problems}], lambda x: x is not null) as _problems
    {joined}
    where not {ok}
)
select __file, _ordinal, _line, _problems, cast(to_json(_source) as varchar) as _record from bad
"""
    return CompiledFeed(dups, checked, rejected)


# --- readers: one SELECT over all the files of a batch ---------------------------------------------------------


def _path_list(paths: Iterable[Path]) -> str:
    return "[" + ", ".join(quote_literal(str(p)) for p in paths) + "]"


def _with_row_numbers(sql: str) -> str:
    """Scan order is file order, then row order (DuckDB keeps insertion order): number rows within each file."""
    return (
        f"select *, __g - min(__g) over (partition by __file) + 1 as __row "
        f"from (select *, row_number() over () as __g from ({sql}))"
    )


def _csv_reader(paths: list[Path], header: list[str], rejects: str) -> str:
    """One read_csv per file, in one UNION ALL: DuckDB 2.0's multi-file CSV scan (read_csv([...])) of three or more
    files drops the store_rejects row of a line with an unterminated quote, and the line with it."""
    columns = "{" + ", ".join(f"{quote_literal(h)}: 'VARCHAR'" for h in header) + "}"
    return " union all ".join(
        f"select *, row_number() over () as __row from read_csv({quote_literal(str(path))}, header = true, "
        f"auto_detect = false, delim = ',', quote = '\"', escape = '\"', columns = {columns}, ignore_errors = true, "
        f"store_rejects = true, rejects_table = {quote_literal(rejects)}, "
        f"rejects_scan = {quote_literal(rejects + '_scan')}, null_padding = false, filename = '__file')"
        for path in paths
    )


def _jsonl_reader(paths: list[Path], feed: Feed) -> str:
    """Every physical line of each (UTF-8, LF or CRLF) file, numbered; a blank line is no record, a line that is not
    JSON is a malformed record. The file is split on line feeds only, so no byte of a value (a 0x1F, a quote) can
    split or merge lines."""
    lines = (
        f"select __file, __line, rtrim(line, chr(13)) as line from ("
        f"select filename as __file, unnest(ls) as line, generate_subscripts(ls, 1) as __line from ("
        f"select filename, string_split(content, chr(10)) as ls from read_text({_path_list(paths)})))"
    )
    parsed = f"select __file, __line, line, try_cast(line as json) as j from ({lines}) where trim(line) <> ''"
    cols = ", ".join(f"j ->> {quote_literal(c.name)} as {quote_ident(c.name)}" for c in feed.columns)
    nested = ", ".join(
        f"case when json_type(j, {quote_literal('$.' + c.name)}) in ('OBJECT', 'ARRAY') "
        f"then {quote_literal(c.name)} end"
        for c in feed.columns
    )
    return (
        f"select __file, __line, {cols}, case when j is null then line end as __malformed, "
        f"list_filter([{nested}], lambda x: x is not null) as __nested, "
        f"row_number() over (partition by __file order by __line) as __row from ({parsed})"
    )


def _parquet_reader(paths: list[Path], names: list[str]) -> str:
    cols = ", ".join(f"{quote_ident(n)} as {quote_ident(n.strip().lower())}" for n in names)
    return (
        f"select {cols}, __file, file_row_number + 1 as __row from read_parquet({_path_list(paths)}, "
        f"filename = '__file', file_row_number = true)"
    )


@dataclass
class PendingFile:
    """A new landing file that passed the file-level checks, ready to be read in a batch."""

    lf: LandingFile
    rel: str
    digest: str
    read_path: Path  # what DuckDB reads: the file, or its UTF-8 copy
    encoding: str
    columns: list[str]  # as read (trimmed, lower-cased), in file order
    types: dict[str, str]  # contract column -> type as read
    extra_columns: list[str]
    group: tuple  # files with the same group are read by one statement
    names: list[str] = field(default_factory=list)  # Parquet: column names as stored
    frame: object = None  # xlsx: the DataFrame
    lines: int | None = None  # text files: physical lines (landing.scan_text)
    unread_note: str | None = None  # what of the file is not read (xlsx: the sheets after the first)


def _scan(lf: LandingFile, feed: Feed, work_dir: Path, digest: str, suffix: str) -> tuple[Path, str, int]:
    """(what DuckDB reads, encoding, physical lines) of a text file: a UTF-8 copy when the file is GB18030 or
    its line endings are mixed (DuckDB's CSV parser refuses a file with both \\r\\n and \\n), or, for JSON lines,
    when it starts with a byte-order mark."""
    try:
        scan = scan_text(lf.path, declared_encoding(feed.name))
    except LandingError as exc:
        raise FeedLoadError(str(exc)) from exc
    path = lf.path
    if scan.encoding == "gb18030" or scan.mixed_newlines or (suffix == ".jsonl" and scan.encoding == "utf-8-sig"):
        path = transcode_to_utf8(
            lf.path, scan.encoding, work_dir / f"{digest}{suffix}", normalise_newlines=scan.mixed_newlines
        )
    return path, scan.encoding, scan.lines


def prepare_file(
    con: duckdb.DuckDBPyConnection,
    lf: LandingFile,
    feed: Feed,
    work_dir: Path,
    digest: str,
    rel: str,
    parquet_schema: dict[str, list[tuple]] | None = None,
) -> PendingFile:
    """Decide how DuckDB reads the file; raise FeedLoadError when it cannot be read at all."""
    known = set(feed.column_names)

    def pending(
        path: Path, encoding: str, columns: list[str], types: dict[str, str], group: tuple, **kw: object
    ) -> PendingFile:
        return PendingFile(
            lf,
            rel,
            digest,
            path,
            encoding,
            columns,
            {k: v for k, v in types.items() if k in known},
            [c for c in columns if c not in known],
            group,
            **kw,
        )

    if lf.format == "csv":
        if lf.path.stat().st_size == 0:
            return pending(lf.path, "empty", [], {}, ("empty",))
        path, encoding, lines = _scan(lf, feed, work_dir, digest, ".csv")
        header = csv_header(path)
        if not header:
            return pending(path, encoding, [], {}, ("empty",))
        _require_unique(lf, header)
        _require_columns(lf, feed, header)
        return pending(path, encoding, header, dict.fromkeys(header, "VARCHAR"), ("csv", tuple(header)), lines=lines)
    if lf.format == "jsonl":
        if lf.path.stat().st_size == 0:
            return pending(lf.path, "empty", [], {}, ("empty",))
        path, encoding, lines = _scan(lf, feed, work_dir, digest, ".jsonl")
        return pending(
            path,
            encoding,
            [*feed.column_names, "__malformed"],
            dict.fromkeys(feed.column_names, "VARCHAR"),
            ("jsonl",),
            lines=lines,
        )
    if lf.format == "parquet":
        schema = (parquet_schema or {}).get(str(lf.path))
        src = f"read_parquet({quote_literal(str(lf.path))})"
        try:
            described = con.execute(f"describe select * from {src}").fetchall() if schema is None else None
        except duckdb.Error as exc:
            reason = str(exc).splitlines()[0]
            raise FeedLoadError(
                f"{lf.path}: cannot read the Parquet file ({reason}) (rule: parquet_readable; the file was not loaded)"
            ) from exc
        names = [str(n) for n, *_ in described] if described is not None else [n for n, *_ in schema]
        columns = [n.strip().lower() for n in names]
        _require_unique(lf, columns)
        _require_columns(lf, feed, columns)
        # the types as DuckDB reads them are asked once per group (load_feed), from its first file
        types = {c: str(t) for c, (_n, t, *_r) in zip(columns, described, strict=True)} if described else {}
        group = ("parquet", tuple(schema) if schema is not None else tuple(map(tuple, described)))
        return pending(lf.path, "parquet", columns, types or dict.fromkeys(columns, ""), group, names=names)
    if lf.format == "xlsx":
        frame, note = read_workbook(lf)
        _require_unique(lf, list(frame.columns))
        _require_columns(lf, feed, list(frame.columns))
        columns = [c for c in frame.columns if c != "__uncached"]
        return pending(
            lf.path, "xlsx", columns, dict.fromkeys(columns, "VARCHAR"), ("xlsx", digest), frame=frame, unread_note=note
        )
    raise FeedLoadError(f"{lf.path}: unsupported format {lf.format}")


# a formula cell whose workbook was saved without its calculated value (<f> and no <v>): openpyxl reads it as empty
_UNCACHED_FORMULA = re.compile(rb"<c\b[^>]*>\s*<f\b[^>]*(?:/>|>[^<]*</f>)\s*(?:<v\s*/>|<v>\s*</v>)?\s*</c>")


def read_workbook(lf: LandingFile) -> tuple[object, str | None]:
    """The first sheet of a workbook as text columns (pandas over openpyxl), with `__uncached`: per row, the
    columns whose cell is a formula without a calculated value (else the row would load an empty value); and a
    note naming the other sheets that hold data (they are not read; raw.unread_files records them)."""
    import zipfile

    import openpyxl
    import pandas as pd

    try:
        frame = pd.read_excel(lf.path, dtype=str, engine="openpyxl")
        workbook = openpyxl.load_workbook(lf.path, read_only=True, data_only=False)
    except Exception as exc:  # not a zip, not a workbook, no sheet: openpyxl raises many kinds
        raise FeedLoadError(
            f"{lf.path}: cannot read the Excel workbook ({type(exc).__name__}: {exc}) "
            f"(rule: xlsx_readable; the file was not loaded)"
        ) from exc
    try:
        sheets = workbook.worksheets
        others = [
            ws.title
            for ws in sheets[1:]
            if any(v is not None for row in ws.iter_rows(max_row=2, values_only=True) for v in row)
        ]
        first = sheets[0]
        with zipfile.ZipFile(lf.path) as z:
            xml_names = [n for n in z.namelist() if n.startswith("xl/worksheets/") and n.endswith(".xml")]
            uncached = any(_UNCACHED_FORMULA.search(z.read(n)) for n in xml_names)
        header = [str(c).strip().lower() for c in frame.columns]
        frame.columns = header
        frame["__uncached"] = None
        if uncached:
            # only then: the formulas as written, cell by cell (openpyxl has no vectorised reader), against the values
            formulas = pd.DataFrame(list(first.iter_rows(min_row=2, max_row=len(frame) + 1, values_only=True)))
            formulas = formulas.iloc[:, : len(header)].reindex(columns=range(len(header)))
            formulas.columns = header
            is_uncached = (
                formulas.map(lambda v: isinstance(v, str) and v.startswith("=")).to_numpy()
                & frame[header].isna().to_numpy()
            )
            names = pd.DataFrame(is_uncached, columns=header).apply(
                lambda row: ",".join(c for c, bad in zip(header, row, strict=True) if bad) or None, axis=1
            )
            frame["__uncached"] = names.to_numpy()
    finally:
        workbook.close()
    note = (
        (
            f"sheet(s) {', '.join(repr(t) for t in others)} not read: only the first sheet of a workbook "
            f"({first.title!r}) is read; move the rows to it or land each sheet as its own file"
        )
        if others
        else None
    )
    return frame, note


def _require_unique(lf: LandingFile, header: list[str]) -> None:
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise FeedLoadError(
            f"{lf.path}: duplicated column(s) {', '.join(dupes)} in the header (rule: header_unique) "
            f"(names are compared trimmed and in lower case; the file was not loaded)"
        )


def _require_columns(lf: LandingFile, feed: Feed, header: list[str]) -> None:
    missing = [c for c in feed.required_columns if c not in header]
    if missing:
        raise FeedLoadError(
            f"{lf.path}: missing required column(s) {', '.join(missing)} for feed {feed.name} "
            f"(rule: required_columns; the file was not loaded)"
        )


def _parquet_schemas(con: duckdb.DuckDBPyConnection, paths: list[Path]) -> dict[str, list[tuple]]:
    """path -> [(column name, physical type, logical type)] from the Parquet footers, in one query; {} when one of
    the files cannot be read (each file is then described on its own, to name the bad one)."""
    if not paths:
        return {}
    try:
        rows = con.execute(
            f"select file_name, name, type, converted_type, cast(logical_type as varchar), num_children "
            f"from parquet_schema({_path_list(paths)})"
        ).fetchall()
    except duckdb.Error:
        return {}
    schemas: dict[str, list[tuple]] = {str(p): [] for p in paths}
    roots: dict[str, int] = {}
    for file_name, name, ptype, converted, logical, children in rows:  # footer entries, not data rows
        if file_name not in roots:  # the first entry of a file is its root
            roots[file_name] = children or 0
            continue
        if children:  # nested column: not a flat feed file, let DuckDB describe it
            return {}
        schemas[file_name].append((str(name), ptype, converted, logical))
    if set(roots) != set(schemas) or any(len(schemas[f]) != n for f, n in roots.items()):
        return {}  # not the footers expected: describe each file instead
    return schemas


# --- loading ---------------------------------------------------------------------------------------------------

FILES_DDL = """
create or replace temp table _files (
    __file varchar, source_file varchar, file_hash varchar, file_day date, encoding varchar,
    extra_columns varchar, loaded_at timestamptz, lines bigint, header_lines bigint
)
"""

LINEMAP_DDL = (
    "create or replace temp table _linemap (__file varchar, record bigint, line_number bigint, byte_pos bigint)"
)


def linemap_sql(paths: list[Path]) -> str:
    """Record number -> physical line (and 1-based byte offset) of every record of these CSV files, from their text:
    a line starts a record when the quotes before it are balanced (RFC 4180: a doubled quote adds two) and it is not
    empty (DuckDB skips empty lines); line 1 is the header. Only read for files that need it: with malformed lines
    (the reader skips them, so its row numbers run short) or whose rejected rows are not simply line = row + 1
    (quoted values spanning lines, empty lines)."""
    return f"""
with t as (select filename as __file, string_split(content, chr(10)) as ls from read_text({_path_list(paths)})),
l as (select __file, unnest(ls) as line, generate_subscripts(ls, 1) as ln from t),
q as (select __file, ln, line, strlen(line) + 1 as nbytes, length(line) - length(replace(line, '"', '')) as quotes
      from l),
c as (select *, coalesce(sum(quotes) over w, 0) as q_before, coalesce(sum(nbytes) over w, 0) as off from q
      window w as (partition by __file order by ln rows between unbounded preceding and 1 preceding))
select __file, row_number() over (partition by __file order by ln) as record, ln as line_number, off + 1 as byte_pos
from c where ln > 1 and q_before % 2 = 0 and line <> '' and line <> chr(13)
"""


def batch_source(
    con: duckdb.DuckDBPyConnection, feed: Feed, files: list[PendingFile], tag: str
) -> tuple[str, dict[str, str], list[str], str | None, str]:
    """(source SQL, types as read, record columns, rejects table, kind) for files of one group."""
    first = files[0]
    kind = first.group[0]
    paths = [f.read_path for f in files]
    if kind == "csv":
        rejects = f"rej_{tag}"
        return _csv_reader(paths, first.columns, rejects), first.types, first.columns, rejects, kind
    if kind == "jsonl":
        return _jsonl_reader(paths, feed), first.types, first.columns, None, kind
    if kind == "parquet":
        sql = _parquet_reader(paths, first.names)
        described = con.execute(f"describe {sql}").fetchall()
        types = {str(n): str(t) for n, t, *_ in described if str(n) in first.types}
        return sql, types, first.columns, None, kind
    if kind == "xlsx":
        view = f"xlsx_{tag}"
        con.register(view, first.frame)
        sql = _with_row_numbers(f"select *, {quote_literal(str(first.read_path))} as __file from {quote_ident(view)}")
        return sql, first.types, first.columns, None, kind
    raise ValueError(kind)


def load_batch(
    con: duckdb.DuckDBPyConnection, feed: Feed, files: list[PendingFile], run_id: str, loaded_at: dict[str, dt.datetime]
) -> list[FileLoad]:
    """Load files of one group in ONE transaction and (but for empty files) ONE read: raw rows, rejected rows and
    one load_log row per file. A file is loaded completely or not at all; so is the batch.

    Row numbers are record numbers within the file (1-based, the header excluded, malformed records counted);
    line numbers of rejected rows are the physical line the record starts on (CSV, JSON lines; the sheet row of a
    workbook; none for Parquet)."""
    tag = files[0].digest[:16]
    empty = files[0].group == ("empty",)
    kind = files[0].group[0]
    rejects: str | None = None
    con.execute("begin transaction")
    try:
        con.execute(FILES_DDL)
        con.execute(
            "insert into _files select unnest(?), unnest(?), unnest(?), try_cast(unnest(?) as date), unnest(?), "
            "unnest(?), unnest(?), unnest(?), unnest(?)",
            [
                [str(f.read_path) for f in files],
                [f.rel for f in files],
                [f.digest for f in files],
                [f.lf.day for f in files],
                [f.encoding for f in files],
                [",".join(f.extra_columns) for f in files],
                [loaded_at[f.digest] for f in files],
                [f.lines for f in files],
                [1 if kind in ("csv", "xlsx") else None for f in files],
            ],
        )
        con.execute(LINEMAP_DDL)
        if empty:
            con.execute(
                "create or replace temp table _counts as select __file, 0::bigint as loaded, "
                "0::bigint as rejected from _files"
            )
        else:
            source_sql, types, record_columns, rejects, kind = batch_source(con, feed, files, tag)
            if kind != "parquet":
                # CSV (one read_csv per file, with its rejects table), JSON lines and Excel are read ONCE, in
                # file order (the readers number rows with window functions, which do not keep it); Parquet is
                # read where it is used (projection pushdown: the duplicate search reads the key columns only)
                con.execute(
                    f"create or replace temp table _src as select s.* from ({source_sql}) as s "
                    f"join _files as f using (__file) order by f.loaded_at, s.__row"
                )
                source_sql = "select * from _src"
            malformed = "select __file, 0 as n from _files where false"
            if rejects:
                # DuckDB may report several errors for one line: one rejected row per line
                con.execute(
                    f"create or replace temp table _malformed as select f.__file, f.source_file, f.file_hash, "
                    f"f.loaded_at, r.line, min(r.line_byte_position) as line_byte_position, "
                    f"arg_max(r.error_type || ': ' || r.error_message, coalesce(r.column_idx, 0)) as reason, "
                    f"any_value(r.csv_line) as csv_line "
                    f"from {quote_ident(rejects)} as r join {quote_ident(rejects + '_scan')} as s "
                    f"using (scan_id, file_id) join _files as f on f.__file = s.file_path "
                    f"group by f.__file, f.source_file, f.file_hash, f.loaded_at, r.line"
                )
                malformed = "select __file, count(*) as n from _malformed group by __file"
                with_malformed = [r[0] for r in con.execute("select distinct __file from _malformed").fetchall()]
                if with_malformed:
                    # the reader numbered the rows it kept: renumber them as records, the malformed ones counted
                    con.execute(f"insert into _linemap {linemap_sql([Path(p) for p in with_malformed])}")
                    con.execute(
                        "create or replace temp table _src as with good as ("
                        "select m.__file, m.record, row_number() over (partition by m.__file order by m.record) "
                        "as __row from _linemap as m anti join _malformed as x "
                        "on x.__file = m.__file and x.line_byte_position = m.byte_pos) "
                        "select s.* replace (coalesce(g.record, s.__row) as __row) from _src as s "
                        "left join good as g on g.__file = s.__file and g.__row = s.__row "
                        "join _files as f on f.__file = s.__file order by f.loaded_at, s.__row"
                    )
            compiled = compile_feed(
                feed,
                source_sql,
                types,
                record_columns,
                jsonl=kind == "jsonl",
                lines=kind == "jsonl",
                xlsx=kind == "xlsx",
            )
            cols = ", ".join(f"v.{quote_ident(c)}" for c in feed.column_names)
            con.execute(
                f"create or replace temp table _rows as select __file, count(*) as n from ({source_sql}) "
                f"group by __file"
            )
            con.execute(f"create or replace temp table _dups as {compiled.dups_sql}")
            # the rows that meet the contract stream from the reader into raw, in file order (no join here
            # reorders its probe side, and the source is read in file order)
            inserted = con.execute(
                f"insert into raw.{quote_ident(feed.name)} select {cols}, f.source_file, f.file_hash, v._ordinal, "
                f"f.loaded_at, ? from ({compiled.checked_sql}) as v join _files as f using (__file) where v._ok",
                [run_id],
            ).fetchone()[0]
            total = con.execute("select coalesce(sum(n), 0) from _rows").fetchone()[0]
            if inserted == total:  # nothing rejected: no need to read the batch again
                con.execute(
                    "create or replace temp table _rejected as select __file, 0::bigint as _ordinal, "
                    "null::bigint as _line, []::varchar[] as _problems, ''::varchar as _record "
                    "from _files where false"
                )
            else:
                con.execute(f"create or replace temp table _rejected as {compiled.rejected_sql}")
                rejected = con.execute("select count(*) from _rejected").fetchone()[0]
                if inserted + rejected != total:  # every row is loaded or rejected, never both, never neither
                    raise FeedLoadError(
                        f"feed {feed.name}: {total} rows read but {inserted} loaded and {rejected} "
                        f"rejected ({', '.join(f.rel for f in files)}; the files were not loaded)"
                    )
                if kind == "csv":
                    # a CSV file whose physical lines are not header + one per record (a quoted value spans lines,
                    # an empty line): its rejected rows' lines come from its text
                    unmapped = [
                        r[0]
                        for r in con.execute(
                            f"select f.__file from _files as f join _rows as n using (__file) "
                            f"left join ({malformed}) as m using (__file) "
                            f"where f.lines is distinct from 1 + n.n + coalesce(m.n, 0) "
                            f"and f.__file in (select __file from _rejected) "
                            f"and f.__file not in (select __file from _linemap)"
                        ).fetchall()
                    ]
                    if unmapped:
                        con.execute(f"insert into _linemap {linemap_sql([Path(p) for p in unmapped])}")
            con.execute(
                REJECTED_ROWS_INSERT + "select ?, f.source_file, f.file_hash, b._ordinal, "
                "coalesce(m.line_number, b._line, b._ordinal + f.header_lines), "
                "split_part(b._problems[1], '|', 1), "
                "array_to_string(list_transform(b._problems, lambda x: substr(x, strpos(x, '|') + 1)), '; '), "
                "b._record, f.loaded_at, ? from _rejected as b join _files as f using (__file) "
                "left join _linemap as m on m.__file = b.__file and m.record = b._ordinal "
                "order by f.loaded_at, b._ordinal",
                [feed.name, run_id],
            )
            if rejects:
                con.execute(
                    REJECTED_ROWS_INSERT + "select ?, x.source_file, x.file_hash, "
                    "coalesce(m.record, x.line - 1), coalesce(m.line_number, x.line), 'malformed_line', x.reason, "
                    "x.csv_line, x.loaded_at, ? "
                    "from _malformed as x left join _linemap as m "
                    "on m.__file = x.__file and m.byte_pos = x.line_byte_position order by x.loaded_at, x.line",
                    [feed.name, run_id],
                )
            con.execute(
                f"create or replace temp table _counts as "
                f"with r as (select __file, count(*) as n from _rejected group by __file), "
                f"m as ({malformed}) "
                f"select f.__file, coalesce(n.n, 0) - coalesce(r.n, 0) as loaded, coalesce(r.n, 0) + coalesce(m.n, 0) "
                f"as rejected from _files as f left join _rows as n using (__file) left join r using (__file) "
                f"left join m using (__file)"
            )
        con.execute(
            "insert into raw.load_log select ?, f.source_file, f.file_hash, f.file_day, f.encoding, "
            "c.loaded + c.rejected, c.loaded, c.rejected, f.extra_columns, f.loaded_at, ? "
            "from _files as f join _counts as c using (__file) order by f.loaded_at",
            [feed.name, run_id],
        )
        counts = dict(con.execute("select __file, [loaded, rejected] from _counts").fetchall())
        for t in ("_src", "_dups", "_rows", "_rejected", "_counts", "_malformed", "_files", "_linemap"):
            con.execute(f"drop table if exists {t}")
        for f in files:
            # tests kill the process here: the batch's rows are written, not committed (SERVICESCORE_FAULT_PAUSE)
            fault_point(f"load:{f.rel}")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        if rejects:
            for t in (rejects, rejects + "_scan"):
                con.execute(f"drop table if exists {quote_ident(t)}")
        if kind == "xlsx":
            con.unregister(f"xlsx_{tag}")
    results = []
    for f in files:
        loaded, rejected = counts[str(f.read_path)]
        results.append(
            FileLoad(
                f.rel,
                f.digest,
                rows_read=int(loaded) + int(rejected),
                rows_loaded=int(loaded),
                rows_rejected=int(rejected),
                encoding=f.encoding,
                extra_columns=f.extra_columns,
            )
        )
    return results


def _error_message(lf: LandingFile, exc: Exception) -> str:
    return str(exc) if isinstance(exc, FeedLoadError) else f"{lf.path}: {exc}"


def load_feed(
    warehouse: Path,
    landing: Path,
    feed_name: str,
    run_id: str,
    work_dir: Path,
    day_from: str | None = None,
    day_to: str | None = None,
    timezone: str | None = DEFAULT_TIMEZONE,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> FeedLoadResult:
    """Load every new file of one feed. Raises FeedLoadError after loading the good files if any file failed.

    Files are hashed (a hash already in raw.load_log is skipped), checked one by one (encoding, header, required
    columns, readable Parquet footer), then grouped by how DuckDB reads them (all Parquet files with the same
    schema, all CSV files with the same header, all JSON lines files) and each group is loaded by one statement
    in one transaction. If a group's statement fails, its files are loaded one by one so that the error names
    the file and the other files still load.

    Every landed file not read in this run is in `result.unread` with the reason, and (with the refused files)
    one row each in raw.unread_files."""
    timezone = timezone or warehouse_timezone(warehouse)
    files, unread_entries = list_files(landing, feed_name, day_from=day_from, day_to=day_to)
    feed = FEEDS[feed_name]
    result = FeedLoadResult(feed=feed_name)
    started = dt.datetime.now(dt.UTC)
    root = landing.resolve()
    unread: list[tuple[str, str | None, str]] = []  # (source file, hash, reason)
    with ThreadPoolExecutor(max_workers=2) as pool:
        unread_hashes = list(pool.map(_hash_if_inside(root), [entry for entry, _reason in unread_entries]))
    for (entry, reason), digest in zip(unread_entries, unread_hashes, strict=True):
        unread.append((f"{feed_name}/{entry.name}", digest, reason))
    loads: dict[str, FileLoad] = {}  # by relative name, reported in file order
    with connect(warehouse, timezone, memory_limit, threads) as con:
        ensure_raw_schema(con)
        loaded_hashes = {
            r[0]
            for r in con.execute("select distinct file_hash from raw.load_log where feed = ?", [feed.name]).fetchall()
        }
        new: list[tuple[LandingFile, str, str]] = []
        # hashlib releases the GIL on large blocks: hash the files on two threads
        with ThreadPoolExecutor(max_workers=2) as pool:
            digests = list(pool.map(file_hash, [lf.path for lf in files]))
        for lf, digest in zip(files, digests, strict=True):
            rel = str(lf.path.relative_to(root))
            if digest in loaded_hashes:
                loads[rel] = FileLoad(source_file=rel, file_hash=digest, skipped=True)
                continue
            loaded_hashes.add(digest)  # the same content twice in one run: the later copy is skipped
            new.append((lf, digest, rel))
        # the later file (in name order) gets the later _loaded_at, as when files were loaded one at a time:
        # staging ranks versions of a record by _loaded_at, then _row_number
        stamps = {digest: started + dt.timedelta(microseconds=i) for i, (_lf, digest, _rel) in enumerate(new)}
        schemas = _parquet_schemas(con, [lf.path for lf, _d, _r in new if lf.format == "parquet"])
        groups: dict[tuple, list[PendingFile]] = {}
        for lf, digest, rel in new:
            try:
                pf = prepare_file(con, lf, feed, work_dir, digest, rel, schemas)
            except (FeedLoadError, duckdb.Error) as exc:
                result.errors.append(_error_message(lf, exc))
                continue
            groups.setdefault(pf.group, []).append(pf)
        notes = {pf.rel: pf.unread_note for group in groups.values() for pf in group if pf.unread_note}
        for group in groups.values():
            for batch in _chunks(group):
                try:
                    done = load_batch(con, feed, batch, run_id, stamps)
                except (FeedLoadError, duckdb.Error) as exc:
                    if len(batch) == 1:
                        result.errors.append(_error_message(batch[0].lf, exc))
                        continue
                    done = []
                    for pf in batch:  # find the file that fails; load the others
                        try:
                            done += load_batch(con, feed, [pf], run_id, stamps)
                        except (FeedLoadError, duckdb.Error) as file_exc:
                            result.errors.append(_error_message(pf.lf, file_exc))
                loads.update((fl.source_file, fl) for fl in done)
                unread += [
                    (fl.source_file, fl.file_hash, notes[fl.source_file]) for fl in done if fl.source_file in notes
                ]
        result.unread = [(name, reason) for name, _digest, reason in unread]
        refused = [
            (rel, digest, msg) for (lf, digest, rel) in new for msg in result.errors if msg.startswith(f"{lf.path}:")
        ]
        _record_unread(
            con,
            feed.name,
            run_id,
            [*unread, *((rel, digest, f"file refused: {msg.split(': ', 1)[1]}") for rel, digest, msg in refused)],
        )
        order = {str(lf.path.relative_to(root)): i for i, lf in enumerate(files)}
        result.files = sorted(loads.values(), key=lambda fl: order[fl.source_file])
        # rows rejected earlier for a reference that this or an earlier load has since brought
        result.rows_recovered, recovered_from = recover_late_references(con, feed, run_id)
        touched = [f.file_hash for f in result.files if not f.skipped]
        result.months_touched = months_touched(con, feed, list(dict.fromkeys(touched + recovered_from)), timezone)
    if result.errors:
        error = FeedLoadError(
            f"feed {feed_name}: {len(result.errors)} file(s) could not be loaded:\n  - " + "\n  - ".join(result.errors)
        )
        error.result = result
        raise error
    return result


def _hash_if_inside(root: Path):
    def digest(entry: Path) -> str | None:
        try:
            resolved = entry.resolve()
        except OSError:
            return None
        if not entry.is_file() or (resolved != root and root not in resolved.parents):
            return None
        try:
            return file_hash(entry)
        except OSError:
            return None

    return digest


def _record_unread(
    con: duckdb.DuckDBPyConnection, feed: str, run_id: str, rows: list[tuple[str, str | None, str]]
) -> None:
    """One raw.unread_files row per file not read in this run (one statement)."""
    if not rows:
        return
    names, digests, reasons = (list(c) for c in zip(*rows, strict=True))
    con.execute(
        "insert into raw.unread_files select ?, unnest(?), unnest(?), unnest(?), ?, now()",
        [feed, names, digests, reasons, run_id],
    )


# input bytes per statement: bounds the memory of one batch. Larger batches make DuckDB spill under the
# pipeline's memory_limit and were slower, not faster, on the tier L tickets (docs/benchmarks.md).
MAX_BATCH_BYTES = 128 << 20


def _chunks(files: list[PendingFile]) -> Iterator[list[PendingFile]]:
    batch: list[PendingFile] = []
    size = 0
    for pf in files:
        n = pf.lf.path.stat().st_size
        if batch and size + n > MAX_BATCH_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(pf)
        size += n
    if batch:
        yield batch


# --- months touched --------------------------------------------------------------------------------------------


def _month_of(feed: Feed, alias: str, name: str, timezone: str, field: str) -> str:
    col = f"{alias}.{field}"
    expr = f"{col} at time zone {quote_literal(timezone)}" if feed.column(name).type == "timestamp" else col
    return f"cast(date_trunc('month', {expr}) as date)"


def months_touched_sql(feed: Feed, timezone: str, reloads: bool = True) -> str:
    """The months (local time) whose KPI values the newly loaded rows (`_file_hash` in $hashes) can change, as one
    query over raw.<feed>.

    For each record (key) with a new row, compare its newest version now with its newest version before the load
    (the versions ordered as staging orders them: macros/versions.sql newest_version_rank). Nothing, if the newest
    version is still an old one (a stale update). Otherwise, for each period column: a new record counts for the
    month of the column; a changed record counts for the column's new and old month when the column, or one of
    the columns or expressions the indicators attributed to it read (Feed.period_inputs), differs between the two
    versions. One hash aggregate per key (arg_max), no sort.

    Records loaded for the first time (most of them; all of them in a first load) need only their newest version's
    period columns: they are aggregated apart, with a small state, from the records that had rows before, whose
    old and new versions are compared on every input. `reloads=False`: the table has no rows but the new ones
    (a first load), so no record has an old version."""
    keys = [quote_ident(k) for k in feed.key]
    table = f"raw.{quote_ident(feed.name)}"
    inputs: dict[str, str] = {}  # column or expression -> its field name in the version structs
    for period in feed.period_columns:
        for item in (period, *feed.period_input_columns(period)):
            inputs.setdefault(item, f"__in_{len(inputs)}")

    def fields(items: Iterable[str]) -> str:
        return ", ".join(
            f"{inputs[i]} := {f't.{quote_ident(i)}' if i in feed.column_names else f'({i})'}" for i in items
        )

    if feed.version_column:
        if feed.column(feed.version_column).type != "timestamp":
            raise ValueError(f"feed {feed.name}: version column {feed.version_column} must be a timestamp")
        v = f"t.{quote_ident(feed.version_column)}"
        order_by = [f"{v} is not null", f"coalesce({v}, '-infinity'::timestamptz)", "t._loaded_at", "t._row_number"]
    else:
        order_by = ["t._loaded_at", "t._row_number"]
    # the version order as one memcmp-comparable blob: arg_max over it is several times faster than over a struct
    order = "create_sort_key(" + ", ".join(f"{e}, 'ASC NULLS LAST'" for e in order_by) + ")"
    on = " and ".join(f"t.{k} = k.{k}" for k in keys)
    branches = []
    for period in feed.period_columns:
        changed = " or ".join(
            f"p.n.{inputs[i]} is distinct from p.o.{inputs[i]}"
            for i in dict.fromkeys((period, *feed.period_input_columns(period)))
        )
        p = inputs[period]
        branches.append(
            f"select {_month_of(feed, 'a.n', period, timezone, p)} as m from first_loads as a where a.n.{p} is not null"
        )
        branches.append(
            f"select {_month_of(feed, 'p.n', period, timezone, p)} as m from per_key as p "
            f"where p.n.{p} is not null and (p.o is null or {changed})"
        )
        branches.append(
            f"select {_month_of(feed, 'p.o', period, timezone, p)} as m from per_key as p "
            f"where p.o.{p} is not null and ({changed})"
        )
    return f"""
with new_files as (
    select unnest($hashes) as _file_hash
),
new_keys as (
    select {", ".join(keys)} from {table} where _file_hash in (select _file_hash from new_files)
),
reloaded_keys as (
    select distinct {", ".join(f"t.{k}" for k in keys)} from {table} as t semi join new_keys as k on {on}
    where t._file_hash not in (select _file_hash from new_files){"" if reloads else " and false"}
),
first_loads as (
    select arg_max(struct_pack({fields(feed.period_columns)}), {order}) as n
    from {table} as t anti join reloaded_keys as k on {on}
    where t._file_hash in (select _file_hash from new_files) and {" and ".join(f"t.{k} is not null" for k in keys)}
    group by {", ".join(f"t.{k}" for k in keys)}
),
versions as (
    select {", ".join(f"t.{k}" for k in keys)}, struct_pack({fields(inputs)}) as _v, {order} as _order,
        t._file_hash in (select _file_hash from new_files) as _is_new
    from {table} as t semi join reloaded_keys as k on {on}
),
per_key as (
    select arg_max(_v, _order) as n, arg_max(_is_new, _order) as n_is_new,
        arg_max(_v, _order) filter (where not _is_new) as o
    from versions group by {", ".join(keys)}
    having n_is_new
)
select distinct m from ({" union all ".join(branches)}) where m is not null order by m
"""


def months_touched(con: duckdb.DuckDBPyConnection, feed: Feed, hashes: list[str], timezone: str) -> list[str]:
    """Months (YYYY-MM-01, local time) whose KPIs the rows of these files change: what must be rebuilt."""
    if not hashes or not feed.period_columns:
        return []
    # a first load (no other rows in the table): no record has an old version to compare with
    reloads = con.execute(
        f"select exists (select 1 from raw.{quote_ident(feed.name)} where _file_hash not in (select unnest($hashes)))",
        {"hashes": hashes},
    ).fetchone()[0]
    rows = con.execute(months_touched_sql(feed, timezone, reloads), {"hashes": hashes}).fetchall()
    return [r[0].isoformat() for r in rows]
