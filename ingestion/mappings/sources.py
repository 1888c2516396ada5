"""Read a source file of another system into DuckDB as text, one table, with its data row numbers.

Every value is read as text (the mapping decides what it means); `_row_number` is the 1-based
number of the data row (for a CSV with a header, file line = row number + 1). CSV is read by
DuckDB itself; encodings DuckDB does not read natively (GB18030/GBK, ...) are transcoded to UTF-8
first, as a stream. Excel workbooks are read with pandas/openpyxl into Arrow and registered.
"""

from __future__ import annotations

import codecs
import shutil
import tempfile
from pathlib import Path

import duckdb

from ingestion.mappings.spec import Mapping, MappingError, SourceSpec

SOURCE_TABLE = "src"
NATIVE_ENCODINGS = {"utf-8", "utf-8-sig", "utf8", "utf_8", "utf_8_sig"}


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


def load_source(con: duckdb.DuckDBPyConnection, mapping: Mapping, path: Path, work_dir: Path) -> list[str]:
    """Create table `src` (all VARCHAR + _row_number); return the source's column names."""
    if not path.is_file():
        raise MappingError(f"{path}: source file not found")
    spec = mapping.source
    fmt = source_format(spec, path)
    con.execute(f"drop table if exists {SOURCE_TABLE}_read")
    if fmt == "csv":
        csv_path = path
        if codecs.lookup(spec.encoding).name not in {codecs.lookup(e).name for e in NATIVE_ENCODINGS}:
            csv_path = _transcode(path, spec.encoding, work_dir)
        try:
            con.execute(
                f"create temp table {SOURCE_TABLE}_read as select * from read_csv("
                "$path, header = $header, all_varchar = true, delim = $delim, quote = $quote, escape = $quote)",
                {"path": str(csv_path), "header": spec.header, "delim": spec.delimiter, "quote": spec.quote},
            )
        except duckdb.Error as e:
            raise MappingError(f"{path}: cannot read as CSV: {e}") from e
    elif fmt == "xlsx":
        _load_excel(con, path, spec.sheet)
    else:
        json_format = "newline_delimited" if fmt == "jsonl" else "auto"
        try:
            con.execute(
                f"create temp table {SOURCE_TABLE}_typed as select * from read_json("
                "$path, format = $fmt, records = true)",
                {"path": str(path), "fmt": json_format},
            )
        except duckdb.Error as e:
            raise MappingError(f"{path}: cannot read as JSON records: {e}") from e
        described = con.execute(f"describe {SOURCE_TABLE}_typed").fetchall()
        casts = ", ".join(
            # nested objects and lists arrive as JSON text; scalars as their text
            f"to_json({quote_ident(c)})::varchar as {quote_ident(c)}"
            if t.startswith(("STRUCT", "MAP", "JSON")) or t.endswith("]")
            else f"cast({quote_ident(c)} as varchar) as {quote_ident(c)}"
            for c, t, *_ in described
        )
        con.execute(f"create temp table {SOURCE_TABLE}_read as select {casts} from {SOURCE_TABLE}_typed")
        con.execute(f"drop table {SOURCE_TABLE}_typed")
    # insertion order is the file order (DuckDB preserves it), so rowid numbers the data rows
    con.execute(
        f"create or replace temp table {SOURCE_TABLE} as "
        f"select rowid + 1 as _row_number, * from {SOURCE_TABLE}_read"
    )
    con.execute(f"drop table {SOURCE_TABLE}_read")
    return [r[0] for r in con.execute(f"describe {SOURCE_TABLE}").fetchall() if r[0] != "_row_number"]


def _transcode(path: Path, encoding: str, work_dir: Path) -> Path:
    work_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"{path.stem}.", suffix=".utf8.csv", dir=work_dir)
    with open(path, encoding=encoding, newline="") as src, open(fd, "w", encoding="utf-8", newline="") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return Path(name)


def _load_excel(con: duckdb.DuckDBPyConnection, path: Path, sheet: str | None) -> None:
    import pandas as pd
    import pyarrow as pa

    try:
        frame = pd.read_excel(path, sheet_name=sheet if sheet is not None else 0, dtype=str, engine="openpyxl")
    except (ValueError, KeyError, OSError) as e:
        raise MappingError(f"{path}: cannot read the Excel sheet {sheet or '(first)'}: {e}") from e
    frame.columns = [str(c) for c in frame.columns]
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.cast(pa.schema([pa.field(n, pa.string()) for n in table.column_names]))
    con.register("excel_arrow", table)
    con.execute(f"create temp table {SOURCE_TABLE}_read as select * from excel_arrow")
    con.unregister("excel_arrow")
