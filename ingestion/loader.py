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

The parts: the contract compiled to SQL (feed_sql.py), DuckDB's readers over the files (readers.py), the
warehouse connection and quoting (warehouse.py), what a load gives and its errors (load_results.py), and the
months newly loaded rows touch (months_touched.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb

from ingestion.contracts import FEEDS, LOAD_METADATA_COLUMNS, Feed
from ingestion.faults import fault_point
from ingestion.feed_sql import compile_feed
from ingestion.landing import (
    LandingFile,
    file_hash,
    list_files,
)
from ingestion.load_results import FeedLoadError, FeedLoadResult, FileLoad
from ingestion.months_touched import months_touched
from ingestion.readers import (
    FILES_DDL,
    LINEMAP_DDL,
    PendingFile,
    batch_source,
    linemap_sql,
    parquet_schemas,
    prepare_file,
)
from ingestion.recovery import recover_late_references
from ingestion.warehouse import connect, quote_ident, warehouse_timezone

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
        schemas = parquet_schemas(con, [lf.path for lf, _d, _r in new if lf.format == "parquet"])
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
