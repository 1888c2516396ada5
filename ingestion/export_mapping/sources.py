"""Read a source file of another system into DuckDB as text, one table, with its data row numbers.

Every value is read as text (the mapping decides what it means); `_row_number` is the 1-based
number of the data record and `_line` the PHYSICAL line it starts on (a quoted value may span lines,
blank lines are skipped), so messages point into the file as an editor shows it.

CSV is read by DuckDB itself with the dialect the mapping states (no sniffing, so one bad record
cannot make the dialect undetectable); a malformed record (unterminated quote, too many or too few
fields, invalid UTF-8) is not read but kept in table `src_malformed` with its physical line and
DuckDB's reason, and the rest of the file loads. Physical lines come from the file's bytes: the
newlines and quote characters are located with numpy (vectorised, no Python loop over rows); a line
starts a record when an even number of quotes precedes it. Encodings DuckDB does not read natively
(GB18030/GBK, ...) are transcoded to UTF-8 first, as a stream. Excel workbooks are read with
pandas/openpyxl into Arrow and registered (`_line` = the sheet row). JSON lines are read as text, one
record a physical line, each parsed in DuckDB: a line that is not one JSON object (cut off, malformed, an array,
a key twice, bytes not in the encoding) is kept in `src_malformed` like a bad CSV record (see _load_json).
"""

from __future__ import annotations

import codecs
import csv
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from ingestion.export_mapping.spec import Mapping, MappingError, SourceSpec

SOURCE_TABLE = "src"
MALFORMED_TABLE = "src_malformed"
# DuckDB's CSV error types -> the rule of a malformed record in the rejected rows
CSV_RULES = {
    "UNQUOTED VALUE": "source.csv.unterminated_quote",
    "TOO MANY COLUMNS": "source.csv.too_many_fields",
    "MISSING COLUMNS": "source.csv.too_few_fields",
    "INVALID ENCODING": "source.csv.invalid_encoding",
    "LINE SIZE OVER MAXIMUM": "source.csv.line_too_long",
    "INVALID STATE": "source.csv.malformed",
    "CAST": "source.csv.malformed",
}


@dataclass
class SourceRead:
    columns: list[str]
    malformed: int = 0  # records in src_malformed
    note: str | None = None  # why physical lines are not known, when they are not


NATIVE_ENCODINGS = {"utf-8", "utf-8-sig", "utf8", "utf_8", "utf_8_sig"}


def _native(encoding: str) -> bool:
    """DuckDB reads this encoding as it is (UTF-8, with or without a byte-order mark)."""
    return codecs.lookup(encoding).name in {codecs.lookup(e).name for e in NATIVE_ENCODINGS}


def quote_ident(name: str) -> str:
    """DuckDB identifier quoting (names are also checked against a strict pattern beforehand)."""
    return '"' + name.replace('"', '""') + '"'


def source_format(spec: SourceSpec, path: Path) -> str:
    if spec.format is not None:
        return spec.format
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("csv", "txt"):
        return "csv"
    if suffix in ("xlsx", "xlsm"):
        return "xlsx"
    if suffix in ("jsonl", "ndjson"):
        return "jsonl"
    if suffix == "json":
        return "json"
    raise MappingError(f"{path}: cannot tell the format from the extension; set source.format")


def load_source(con: duckdb.DuckDBPyConnection, mapping: Mapping, path: Path, work_dir: Path) -> SourceRead:
    """Create table `src` (all VARCHAR + _row_number, _line) and `src_malformed`; return the column names."""
    if not path.is_file():
        raise MappingError(f"{path}: source file not found")
    spec = mapping.source
    fmt = source_format(spec, path)
    con.execute(f"drop table if exists {SOURCE_TABLE}_read")
    con.execute(
        f"create or replace temp table {MALFORMED_TABLE} (row_number bigint, line bigint, rule varchar, "
        "reason varchar, raw varchar)"
    )
    read = SourceRead([])
    if fmt == "csv":
        csv_path = path
        if not _native(spec.encoding):
            csv_path = _transcode(path, spec.encoding, work_dir)
        read = _load_csv(con, spec, path, csv_path)
        return read
    if fmt != "xlsx":
        return _load_json(con, spec, path, fmt, work_dir)
    _load_excel(con, path, spec.sheet, spec.header)
    line = "rowid + 2" if spec.header else "rowid + 1"
    # insertion order is the file order (DuckDB preserves it), so rowid numbers the data rows
    con.execute(
        f"create or replace temp table {SOURCE_TABLE} as "
        f"select rowid + 1 as _row_number, {line} as _line, * from {SOURCE_TABLE}_read"
    )
    con.execute(f"drop table {SOURCE_TABLE}_read")
    read.columns = _columns(con)
    return read


def _load_json(con: duckdb.DuckDBPyConnection, spec: SourceSpec, path: Path, fmt: str, work_dir: Path) -> SourceRead:
    """JSON lines: every physical line, split on line feeds only (a carriage return before one is dropped, so
    CRLF, LF and a mix read alike; no byte of a value can split or merge lines), is one record; an empty line
    is none; a line that is not one JSON object is a malformed record. A `json` file that is one JSON array (or
    object) gives its elements as the records (no lines); any other `json` file is read as JSON lines.

    Values are the source's text: a string as it is, any other value as its JSON text (nested objects and lists
    too). Nothing is typed by guessing: read_json would turn '2021-01-01T08:00:00+08:00' into a UTC timestamp
    and 12345678901234567890 into a double before the mapping sees them.
    """
    text_path, bad_lines = path, []
    if not _native(spec.encoding):
        text_path, bad_lines = _utf8_copy(path, spec.encoding, work_dir)
    try:
        con.execute(
            "create or replace temp table src_text as select ltrim(content, chr(65279)) as content "
            "from read_text($path)",
            {"path": str(text_path)},
        )
    except duckdb.InvalidInputException:  # not valid UTF-8: the lines holding bad bytes are malformed records
        if text_path != path:
            raise
        text_path, bad_lines = _utf8_copy(path, spec.encoding, work_dir)
        con.execute(
            "create or replace temp table src_text as select ltrim(content, chr(65279)) as content "
            "from read_text($path)",
            {"path": str(text_path)},
        )
    document = None
    if fmt == "json":
        document = con.execute("select json_type(try_cast(content as json)) from src_text").fetchone()[0]
    if document in ("ARRAY", "OBJECT"):
        records = (
            "select generate_subscripts(js, 1) as _row_number, null::bigint as _line, unnest(js)::varchar as raw "
            "from (select case when json_type(j) = 'ARRAY' then json_extract(j, '$[*]') else [j] end as js "
            "from (select content::json as j from src_text))"
        )
    else:
        records = (
            "select row_number() over (order by _line) as _row_number, _line, raw from ("
            "select generate_subscripts(ls, 1) as _line, rtrim(unnest(ls), chr(13)) as raw "
            "from (select string_split(content, chr(10)) as ls from src_text)) where trim(raw) <> ''"
        )
    kind = fmt if fmt in ("json", "jsonl") else "jsonl"
    con.execute(
        "create or replace temp table src_json as "
        "select *, case when list_contains($bad, _line) then 'invalid_encoding' when j is null then 'invalid_json' "
        "when json_type(j) <> 'OBJECT' then 'not_an_object' when m is null then 'duplicate_key' end as problem "
        "from (select *, try_cast(j as map(varchar, json)) as m from ("
        f"select *, try_cast(raw as json) as j from ({records})))",
        {"bad": bad_lines},
    )
    con.execute("drop table src_text")
    con.execute(
        f"insert into {MALFORMED_TABLE} select _row_number, _line, 'source.{kind}.' || problem, "
        "coalesce('line ' || _line, 'record ' || _row_number) || ': ' || case problem "
        "when 'invalid_encoding' then 'bytes that are not valid ' || $encoding || ' (read as U+FFFD)' "
        "when 'invalid_json' then 'not valid JSON (cut off or malformed)' "
        "when 'not_an_object' then 'a JSON ' || case json_type(j) when 'ARRAY' then 'array' when 'VARCHAR' then "
        "'string' when 'BOOLEAN' then 'boolean' when 'NULL' then 'null' else 'number' end || ', not an object' "
        "else 'an object that names a key more than once' end, raw "
        "from src_json where problem is not null order by _row_number",
        {"encoding": spec.encoding},
    )
    # the columns: every key of the records, in the order they first appear
    keys = [
        r[0]
        for r in con.execute(
            "select key from (select _row_number, unnest(map_keys(m)) as key, "
            "generate_subscripts(map_keys(m), 1) as pos "
            "from src_json where problem is null) "
            "qualify row_number() over (partition by key order by _row_number, pos) = 1 order by _row_number, pos"
        ).fetchall()
    ]
    params = {f"k{i}": key for i, key in enumerate(keys)}
    values = "".join(
        f", case when json_type(m[$k{i}]) = 'VARCHAR' then m[$k{i}] ->> '$' else m[$k{i}]::varchar end "
        f"as {quote_ident(key or f'column{i}')}"  # an empty key is named like an empty CSV header
        for i, key in enumerate(keys)
    )
    con.execute(
        f"create or replace temp table {SOURCE_TABLE} as select _row_number, _line{values} "
        "from src_json where problem is null order by _row_number",
        params,
    )
    malformed = con.execute("select count(*) from src_json where problem is not null").fetchone()[0]
    con.execute("drop table src_json")
    return SourceRead(_columns(con), malformed)


def _columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute(f"describe {SOURCE_TABLE}").fetchall() if r[0] not in ("_row_number", "_line")]


def _header(path: Path, spec: SourceSpec) -> list[str]:
    """The column names: the first record, read with the mapping's dialect (one record, not the file)."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        first = next(csv.reader(f, delimiter=spec.delimiter, quotechar=spec.quote), None)
    if first is None:
        raise MappingError(f"{path}: the file is empty")
    if not spec.header:
        return [f"column{i}" for i in range(len(first))]
    names = [name if name != "" else f"column{i}" for i, name in enumerate(first)]
    seen: set[str] = set()
    duplicated = sorted({n for n in names if n in seen or seen.add(n)})
    if duplicated:
        raise MappingError(
            f"{path}: line 1: the header names columns more than once: " + ", ".join(repr(n) for n in duplicated)
        )
    return names


def _load_csv(con: duckdb.DuckDBPyConnection, spec: SourceSpec, path: Path, csv_path: Path) -> SourceRead:
    names = _header(csv_path, spec)
    columns = {n: "VARCHAR" for n in names}
    try:
        con.execute(
            f"create temp table {SOURCE_TABLE}_read as select * from read_csv("
            "$path, auto_detect = false, columns = $columns, header = $header, delim = $delim, quote = $quote, "
            "escape = $quote, store_rejects = true, rejects_table = 'src_rejects', rejects_scan = 'src_scans')",
            {
                "path": str(csv_path),
                "columns": columns,
                "header": spec.header,
                "delim": spec.delimiter,
                "quote": spec.quote,
            },
        )
        rejects = con.execute(
            "select line_byte_position, first(error_type::varchar order by byte_position), "
            "string_agg(distinct error_message, '; '), first(csv_line order by byte_position) "
            "from src_rejects group by line_byte_position order by line_byte_position"
        ).fetchall()
    except duckdb.Error as e:
        raise MappingError(f"{path}: cannot read as CSV: {e}") from e
    good = con.execute(f"select count(*) from {SOURCE_TABLE}_read").fetchall()[0][0]
    record_lines, line_of_byte = _record_lines(csv_path, spec)
    if spec.header and len(record_lines):
        record_lines = record_lines[1:]
    bad_lines = line_of_byte(np.array([r[0] for r in rejects], dtype=np.int64), record_lines)
    is_bad = np.isin(record_lines, bad_lines)
    note = None
    if len(record_lines) == good + len(rejects) and int(is_bad.sum()) == len(rejects):
        numbers = np.arange(1, len(record_lines) + 1, dtype=np.int64)
        good_numbers, good_lines = numbers[~is_bad], record_lines[~is_bad]
        bad_numbers = numbers[is_bad]  # both in file order
    else:
        # quote characters inside unquoted values: the records cannot be told apart from the bytes alone
        note = (
            f"{path}: physical line numbers are not known for this file (it has quote characters outside "
            "quoted values); row numbers count the records read"
        )
        good_numbers = np.arange(1, good + 1, dtype=np.int64)
        good_lines = np.full(good, -1, dtype=np.int64)
        bad_numbers = np.arange(good + 1, good + len(rejects) + 1, dtype=np.int64)
    con.register(
        "src_line_numbers",
        pa.table(
            {
                "_i": pa.array(np.arange(good, dtype=np.int64)),
                "_row_number": pa.array(good_numbers),
                "_line": pa.array(good_lines),
            }
        ),
    )
    con.execute(
        f"create or replace temp table {SOURCE_TABLE} as "
        f"select n._row_number, nullif(n._line, -1) as _line, r.* exclude (_i) "
        f"from (select rowid as _i, * from {SOURCE_TABLE}_read) as r join src_line_numbers as n using (_i) "
        "order by n._row_number"
    )
    con.unregister("src_line_numbers")
    con.execute(f"drop table {SOURCE_TABLE}_read")
    if rejects:
        con.executemany(
            f"insert into {MALFORMED_TABLE} values (?, ?, ?, ?, ?)",
            [
                (
                    int(n),
                    int(line) if note is None else None,
                    CSV_RULES.get(kind, "source.csv.malformed"),
                    f"line {int(line)}: {message}" if note is None else message,
                    (raw or "").strip("\r\n"),
                )
                for n, line, (_, kind, message, raw) in zip(bad_numbers, bad_lines, rejects, strict=True)
            ],
        )
    con.execute("drop table if exists src_rejects; drop table if exists src_scans")
    return SourceRead(_columns(con), len(rejects), note)


def _record_lines(path: Path, spec: SourceSpec):
    """(physical lines, 1-based, where a record starts; a function byte offsets -> record start lines)."""
    data = np.fromfile(path, dtype=np.uint8)
    newlines = np.flatnonzero(data == 10)
    starts = np.concatenate(([0], newlines + 1)).astype(np.int64)
    starts = starts[starts < len(data)]
    ends = np.append(newlines, len(data))[: len(starts)]
    length = ends - starts
    blank = (length == 0) | ((length == 1) & (data[np.minimum(starts, max(len(data) - 1, 0))] == 13))
    quotes = np.flatnonzero(data == ord(spec.quote))
    even = np.searchsorted(quotes, starts) % 2 == 0
    lines = np.flatnonzero(even & ~blank).astype(np.int64) + 1

    def line_of_byte(offsets: np.ndarray, records: np.ndarray) -> np.ndarray:
        """The record starting at or after each offset (DuckDB's position of a bad record can be the line
        break before it, e.g. after a blank line)."""
        record_starts = starts[records - 1]
        i = np.minimum(np.searchsorted(record_starts, offsets, side="left"), max(len(records) - 1, 0))
        return records[i] if len(records) else np.zeros(len(offsets), dtype=np.int64)

    return lines, line_of_byte


_UNDECODED = re.compile("[\udc80-\udcff]+")  # bytes kept by errors='surrogateescape'


def _utf8_copy(path: Path, encoding: str, work_dir: Path) -> tuple[Path, list[int]]:
    """A UTF-8 copy of a text file, and the physical lines that hold bytes not valid in `encoding` (each run of
    them becomes U+FFFD in the copy). Streamed in chunks; only the bad byte runs are visited one by one."""
    work_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"{path.stem}.", suffix=f".utf8{path.suffix}", dir=work_dir)
    bad: list[int] = []
    line = 1
    try:
        with (
            open(path, encoding=encoding, errors="surrogateescape", newline="") as src,
            open(fd, "w", encoding="utf-8", newline="") as dst,
        ):
            while chunk := src.read(1 << 20):
                at = 0
                for m in _UNDECODED.finditer(chunk):
                    line += chunk.count("\n", at, m.start())
                    at = m.start()
                    bad.append(line)
                line += chunk.count("\n", at)
                dst.write(_UNDECODED.sub("\ufffd", chunk))
    except UnicodeDecodeError as e:  # a bad byte below 0x80 cannot be kept: the file is refused, by name
        raise MappingError(f"{path}: cannot read as {encoding} (source.encoding): {e}") from e
    return Path(name), sorted(set(bad))


def _transcode(path: Path, encoding: str, work_dir: Path) -> Path:
    work_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"{path.stem}.", suffix=".utf8.csv", dir=work_dir)
    with open(path, encoding=encoding, newline="") as src, open(fd, "w", encoding="utf-8", newline="") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return Path(name)


def _load_excel(con: duckdb.DuckDBPyConnection, path: Path, sheet: str | None, header: bool) -> None:
    import pandas as pd

    try:
        frame = pd.read_excel(
            path,
            sheet_name=sheet if sheet is not None else 0,
            dtype=str,
            engine="openpyxl",
            header=0 if header else None,
        )
    except (ValueError, KeyError, OSError) as e:
        raise MappingError(f"{path}: cannot read the Excel sheet {sheet or '(first)'}: {e}") from e
    # without a header row the columns are named by position, as in a CSV file without one
    frame.columns = [str(c) for c in frame.columns] if header else [f"column{i}" for i in range(frame.shape[1])]
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.cast(pa.schema([pa.field(n, pa.string()) for n in table.column_names]))
    con.register("excel_arrow", table)
    con.execute(f"create temp table {SOURCE_TABLE}_read as select * from excel_arrow")
    con.unregister("excel_arrow")
