"""DuckDB's readers over landing files: CSV, JSON lines, Parquet and Excel read by one statement per batch of
files read the same way, with every row's file and physical line (the rejected rows name both)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ingestion.contracts import Feed
from ingestion.landing import (
    LandingError,
    LandingFile,
    csv_header,
    declared_encoding,
    scan_text,
    transcode_to_utf8,
)
from ingestion.load_results import FeedLoadError
from ingestion.warehouse import quote_ident, quote_literal


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


def parquet_schemas(con: duckdb.DuckDBPyConnection, paths: list[Path]) -> dict[str, list[tuple]]:
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
