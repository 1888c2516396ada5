"""The serving file BI tools read: versioned, immutable publications swapped in atomically.

Layout of serving.duckdb (written with an old storage version so DuckDB 1.x based BI drivers open it):
  history.<mart>          every published version of every period of a versioned mart (column _version)
  main.<mart>             a view: the current (newest) version of each period
  main.<snapshot mart>    a table replaced on every publish (dimensions, facts, non-period marts)
  main.appraisal_evidence a view: the facts behind each current monthly breakdown value, over main.fct_* and
                          main.appraisal_score_breakdown (orchestration/publication/evidence.py; serving files
                          written before it keep their history.appraisal_evidence copies)
  main.publications       one row per publish that changed something
  main.publication_periods  one row per (period, version): content hash, restatement flag, what changed
  main.publication_changes  for a restatement: each technician whose score or grade changed, and by how much

A publish copies the current serving file to a temporary file next to it (or starts an empty one), applies
the new versions there, checkpoints, fsyncs and renames it over serving.duckdb. A reader holding the old file
keeps reading the old inode; a failure at any point leaves serving.duckdb byte-for-byte as it was.
Publishing content identical to the current version of a period creates no new version.

A publish costs what changed, not what exists:
  * versioned marts: only the candidate periods are hashed and compared, i.e. the months of the change windows
    recorded since the mark of the current publication (the warehouse's audit.change_windows,
    ingestion/change_window.py) and the quarters and years containing them. Every period is compared when there
    is no mark (first publish, an older serving file), the audit is missing or was rewritten, a versioned mart
    does not recompute by the window (not incremental), the set of versioned marts changed, or a full window was
    recorded since. The mark is stored in the audit JSON of the publication (key change_window_mark), so it only
    advances with a successful swap. A mart edited outside dbt is not seen: publish(..., compare_all=True)
    compares every period.
  * snapshot marts with a _built_at column and a unique key (the incremental facts: a row's _built_at
    changes exactly when the row does): a signature (row count, max(_built_at), sum of key hashes) decides
    whether anything changed, and only the rows built after serving's max(_built_at) are applied
    (delete+insert on the key); a full replace when rows went away, the columns changed, most rows are new
    (a full refresh), or the signature does not match after the apply. Other snapshot tables (dimensions,
    training marts: small) are compared by a full content hash and replaced when different.
  * the file copy stays: even without reflinks it costs a small part of what hashing the tables cost
    (docs/benchmarks.md).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ingestion.paths import duckdb_settings
from ingestion.privacy import PersonalDataLeakError, leaks
from ingestion.warehouse import quote_ident, quote_literal
from orchestration.publication.audit import WATERMARK_KEY, previous_watermark, record_audit
from orchestration.publication.evidence import create_evidence_view
from orchestration.publication.periods import candidate_periods, changed_periods, is_period_closed, restatement_summary
from orchestration.publication.relations import (
    PERIOD_COLUMN,
    MartSpec,
    columns_of,
    content_hash_expr,
    table_exists,
    view_exists,
)

SERVING_STORAGE_VERSION = "v1.0.0"


@dataclass
class PublicationResult:
    publication_id: int | None
    serving_path: Path
    new_versions: list[tuple[str, int]] = field(default_factory=list)
    restatements: list[str] = field(default_factory=list)
    row_counts: dict[str, int] = field(default_factory=dict)
    snapshots_replaced: list[str] = field(default_factory=list)
    changed: bool = False
    # the periods whose content was hashed and compared (None: every period of the warehouse)
    candidate_periods: list[str] | None = None
    # snapshot table -> 'unchanged' | 'incremental' (rows applied by key) | 'full' (replaced)
    snapshot_modes: dict[str, str] = field(default_factory=dict)
    snapshot_rows_applied: dict[str, int] = field(default_factory=dict)
    change_window_mark: dict[str, object] | None = None
    # seconds per phase of the publication (copy, compare, history, snapshot:<mart>, ..., swap): where it goes
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[phase] = round(self.timings.get(phase, 0.0) + time.perf_counter() - start, 3)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


SERVING_DDL = [
    "create schema if not exists s.history",
    """create table if not exists s.main.publications (
        publication_id bigint, run_id varchar, published_at timestamptz, code_version varchar,
        periods varchar, restated_periods varchar, row_counts varchar, audit varchar)""",
    """create table if not exists s.main.publication_periods (
        period_label varchar, version bigint, publication_id bigint, content_hash varchar,
        is_restatement boolean, published_at timestamptz, change_summary varchar)""",
    """create table if not exists s.main.publication_inputs (
        publication_id bigint, feed varchar, source_file varchar, file_hash varchar, rows_read bigint,
        rows_loaded bigint, rows_rejected bigint, loaded_at timestamptz, load_run_id varchar)""",
    """create table if not exists s.main.publication_checks (
        publication_id bigint, check_run_id varchar, suite varchar, "table" varchar, expectations bigint,
        failed_errors bigint, failed_warnings bigint, passed boolean, validated_at timestamptz)""",
    """create table if not exists s.main.publication_changes (
        publication_id bigint, period_label varchar, version bigint, technician_id varchar,
        period_type varchar, method varchar, previous_score double, new_score double, score_change double,
        previous_grade varchar, new_grade varchar)""",
]


def publish(
    warehouse: Path,
    serving: Path,
    marts: list[MartSpec],
    run_id: str,
    audit: dict[str, object] | None = None,
    extra_tables: list[tuple[str, str]] = (),
    closing_day: int = 5,
    today: dt.date | None = None,
    compare_all: bool = False,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> PublicationResult:
    """Publish `marts` from the warehouse into a new serving file and swap it in atomically.

    A new version of a period that is already closed (its last month's closing day has passed) is a
    restatement; a new version of an open period is a routine update of the running month.
    compare_all: hash and compare every period, whatever the change-window audit says (marts edited outside dbt)."""
    tmp = serving.with_name(serving.name + ".publishing")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    result = PublicationResult(publication_id=None, serving_path=serving)
    if serving.exists():
        with result.timed("copy"):
            shutil.copyfile(serving, tmp)
    now = dt.datetime.now(dt.UTC)
    con = duckdb.connect(config=duckdb_settings(memory_limit, threads))
    try:
        con.execute(f"attach {quote_literal(str(warehouse))} as w (read_only)")
        con.execute(f"attach {quote_literal(str(tmp))} as s (storage_version {quote_literal(SERVING_STORAGE_VERSION)})")
        for ddl in SERVING_DDL:
            con.execute(ddl)
        last = con.execute("select coalesce(max(publication_id), 0) from s.main.publications").fetchall()[0]
        publication_id = int(last[0]) + 1 if last else 1
        versioned = [m for m in marts if m.mode == "versioned"]
        for m in versioned:  # every versioned mart has its history table, even before its first row
            if not table_exists(con, "s", "history", m.name):
                src = f"w.{quote_ident(m.schema)}.{quote_ident(m.name)}"
                con.execute(
                    f"create table s.history.{quote_ident(m.name)} as "
                    f"select *, cast(null as bigint) as _version from {src} limit 0"
                )
        with result.timed("compare"):
            candidates, watermark = candidate_periods(con, versioned, previous_watermark(con))
            if compare_all:
                candidates = None
            result.candidate_periods, result.change_window_mark = candidates, watermark
            changed = changed_periods(con, versioned, candidates)
        new_versions: list[tuple[str, int]] = []
        for period in sorted(changed):
            prev = con.execute(
                "select coalesce(max(version), 0) from s.main.publication_periods where period_label = ?", [period]
            ).fetchall()[0]
            new_versions.append((period, int(prev[0]) + 1 if prev else 1))
        if new_versions:
            with result.timed("history"):
                # one pass over each mart for all new versions (not one per period)
                con.execute("create or replace temp table new_versions (period_label varchar, version bigint)")
                con.executemany("insert into new_versions values (?, ?)", [list(v) for v in new_versions])
                for m in versioned:
                    src = f"w.{quote_ident(m.schema)}.{quote_ident(m.name)}"
                    con.execute(
                        f"insert into s.history.{quote_ident(m.name)} by name select src.*, nv.version as _version "
                        f"from {src} as src join new_versions as nv on src.{PERIOD_COLUMN} = nv.period_label"
                    )
                con.execute("drop table new_versions")
        for period, version in new_versions:
            summary = restatement_summary(con, publication_id, period, version) if version > 1 else None
            restated = version > 1 and is_period_closed(period, today or dt.date.today(), closing_day)
            if restated:
                result.restatements.append(period)
            con.execute(
                "insert into s.main.publication_periods values (?, ?, ?, ?, ?, ?, ?)",
                [
                    period,
                    version,
                    publication_id,
                    changed[period],
                    restated,
                    now,
                    json.dumps(summary, ensure_ascii=False) if summary is not None else None,
                ],
            )
        for m in versioned:
            # a mart that used to be a snapshot table becomes a view over its history
            if table_exists(con, "s", "main", m.name):
                con.execute(f"drop table s.main.{quote_ident(m.name)}")
            con.execute(
                f"create or replace view s.main.{quote_ident(m.name)} as select * exclude (_version) "
                f"from s.history.{quote_ident(m.name)} as h where _version = (select max(p.version) from "
                f"s.main.publication_periods as p where p.period_label = h.{PERIOD_COLUMN})"
            )
        snapshot_changed = False
        for m in [m for m in marts if m.mode == "snapshot"] + [MartSpec(t, "snapshot", s) for s, t in extra_tables]:
            with result.timed(f"snapshot:{m.name}"):
                mode = _publish_snapshot(con, m, result)
            result.snapshot_modes[m.name] = mode
            if mode != "unchanged":
                snapshot_changed = True
                result.snapshots_replaced.append(m.name)
        # the facts behind the breakdown: a view over serving's facts and current breakdown, not a copy
        snapshot_changed = create_evidence_view(con, "s") or snapshot_changed
        with result.timed("personal_data"):
            # nothing personal is published: every mart as it is about to be served (the current version of
            # each period; earlier versions were scanned when they were published). A finding stops here, so
            # the temporary file is dropped and serving.duckdb stays as it was.
            found = leaks(
                con, "s", [("main", m.name) for m in marts] + [("main", t) for _, t in extra_tables], raw_catalog="w"
            )
        if found:
            raise PersonalDataLeakError(found)
        with result.timed("counts"):
            for m in marts:
                if m.mode == "versioned":
                    # current rows = the warehouse's rows of every published period; counted on the history
                    # (one join, not the view's correlated subquery per row)
                    row = con.execute(
                        f"select count(*) from s.history.{quote_ident(m.name)} as h join (select period_label, "
                        f"max(version) as v from s.main.publication_periods group by period_label) as c "
                        f"on h.{PERIOD_COLUMN} = c.period_label and h._version = c.v"
                    ).fetchall()[0]
                else:
                    row = con.execute(f"select count(*) from s.main.{quote_ident(m.name)}").fetchall()[0]
                result.row_counts[m.name] = int(row[0]) if row else 0
        result.new_versions = new_versions
        result.changed = bool(new_versions) or snapshot_changed or not serving.exists()
        if result.changed:
            result.publication_id = publication_id
            with result.timed("audit"):
                record_audit(con, publication_id)
            recorded = dict(audit or {})
            recorded[WATERMARK_KEY] = watermark
            con.execute(
                "insert into s.main.publications values (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    publication_id,
                    run_id,
                    now,
                    str((audit or {}).get("code_version", "")),
                    json.dumps([f"{p} v{v}" for p, v in new_versions]),
                    json.dumps(result.restatements),
                    json.dumps(result.row_counts),
                    json.dumps(recorded, ensure_ascii=False, default=str),
                ],
            )
        with result.timed("checkpoint"):
            con.execute("checkpoint s")
            con.execute("detach s")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    if not result.changed:
        tmp.unlink(missing_ok=True)
        return result
    with result.timed("swap"):
        _fsync(tmp)
        os.replace(tmp, serving)
        _fsync(serving.parent)
    return result


# ---------------------------------------------------------------------------------- snapshot tables


def _snapshot_signature(con: duckdb.DuckDBPyConnection, qualified: str, key: tuple[str, ...]) -> tuple:
    """Row count, max(_built_at) and the sum of the key hashes: what an incremental fact changes."""
    keys = ", ".join(quote_ident(k) for k in key)
    row = con.execute(f"select count(*), max(_built_at), sum(hash(row({keys})))::hugeint from {qualified}").fetchall()[
        0
    ]
    return tuple(row)


def _replace_table(con: duckdb.DuckDBPyConnection, src: str, dst: str) -> str:
    con.execute(f"create or replace table {dst} as select * from {src}")
    return "full"


def _publish_snapshot(con: duckdb.DuckDBPyConnection, m: MartSpec, result: PublicationResult) -> str:
    """Bring s.main.<m> up to the warehouse's table: 'unchanged', 'incremental' (the rows built since serving's
    newest _built_at, delete+insert on the unique key) or 'full' (replaced)."""
    src = f"w.{quote_ident(m.schema)}.{quote_ident(m.name)}"
    dst = f"s.main.{quote_ident(m.name)}"
    if view_exists(con, "s", "main", m.name):  # a mart that used to be versioned
        con.execute(f"drop view {dst}")
    if not table_exists(con, "s", "main", m.name):
        return _replace_table(con, src, dst)
    cols = columns_of(con, src)
    if cols != columns_of(con, dst):  # new or changed columns: the old rows cannot be kept
        return _replace_table(con, src, dst)
    names = {n for n, _ in cols}
    if "_built_at" in names and m.unique_key and set(m.unique_key) <= names:
        source_sig = _snapshot_signature(con, src, m.unique_key)
        serving_sig = _snapshot_signature(con, dst, m.unique_key)
        if source_sig[1] is not None and source_sig == serving_sig:
            return "unchanged"
        if serving_sig[1] is None or source_sig[0] < serving_sig[0]:  # rows went away: a full refresh
            return _replace_table(con, src, dst)
        newer = f"(select * from {src} where _built_at > (select max(_built_at) from {dst}))"
        count = con.execute(f"select count(*) from {newer}").fetchall()[0][0]
        if 2 * count > source_sig[0]:  # most rows rebuilt (a full refresh): a copy is cheaper
            return _replace_table(con, src, dst)
        con.execute(f"create or replace temp table snapshot_delta as select * from {newer}")
        on = " and ".join(f"{dst}.{quote_ident(k)} = d.{quote_ident(k)}" for k in m.unique_key)
        con.execute(
            f"delete from {dst} using (select distinct {', '.join(quote_ident(k) for k in m.unique_key)} "
            f"from snapshot_delta) as d where {on}"
        )
        con.execute(f"insert into {dst} select * from snapshot_delta")
        con.execute("drop table snapshot_delta")
        if _snapshot_signature(con, dst, m.unique_key) != source_sig:  # deletes or clock skew: start over
            return _replace_table(con, src, dst)
        result.snapshot_rows_applied[m.name] = int(count)
        return "incremental"
    same = con.execute(
        f"select (select {content_hash_expr(cols)} from {src}) "
        f"is not distinct from (select {content_hash_expr(cols)} from {dst})"
    ).fetchall()[0]
    if same and same[0]:
        return "unchanged"
    return _replace_table(con, src, dst)
