"""Late references: rows rejected only because the technician (course, session, ...) they name was not loaded
yet are checked again on every later load of their feed, and loaded once the reference is there.

A row is rejected for an unknown reference when the referenced feed (the roster) arrives after it, or when a
mapping is re-applied with a fixed roster: the ticket files have the same content hash and are skipped as
already loaded, so without this their rows would stay rejected for good. Each candidate row's original record
(raw.rejected_rows.record, the values as read) goes through the whole contract again, compiled to SQL by the
loader exactly as for a landing file; a row that now meets every rule is inserted into raw.<feed> under its
original file, file hash and row number, and its rejected-row entry gets `recovered_at` and `recovered_run_id`.
A row that still breaks a rule stays rejected, unchanged. A recovered row is never a candidate again, so
nothing is loaded twice.

Recovered rows get the recovery time as `_loaded_at`: the incremental models pick up rows by `_loaded_at`, and
versions of one record are ordered by their version column (`updated_at`) before `_loaded_at`.

The candidates are the rejected rows whose first broken rule is a reference (the loader lists the rules of a row
in the order columns, row rules, references, duplicate key, so nothing but other references or a duplicate key
can follow); in practice a small set, read only when it is not empty.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from ingestion.contracts import Feed
from ingestion.feed_sql import compile_feed
from ingestion.warehouse import quote_ident

# a row that also repeats the key of an earlier row of its file stays rejected (the duplicate rule compares rows of
# one file, which the candidates alone cannot)
CANDIDATES = (
    "feed = ? and recovered_at is null and rule like 'reference:%' "
    "and reason not like '%as an earlier row of this file%'"
)


def _source_sql(feed: Feed) -> str:
    """The candidates' records as the reader gave them: every contract column as text (a column the file did not
    have is absent from the record, so NULL, as when it was read). `__file` is the file hash (one load per hash
    and feed), `__row` the original row number."""
    cols = ", ".join(f"json(r.record) ->> '{c}' as \"{c}\"" for c in feed.column_names)
    return (
        f"select r.file_hash as __file, r.row_number as __row, {cols} from raw.rejected_rows as r "
        f"where {CANDIDATES.replace('?', repr(feed.name))}"
    )


def recover_late_references(con: duckdb.DuckDBPyConnection, feed: Feed, run_id: str) -> tuple[int, list[str]]:
    """Load the rejected rows of `feed` whose references now exist; returns (rows recovered, file hashes of the
    files they belong to). Runs in its own transaction."""
    if not feed.references:
        return 0, []
    if not con.execute(f"select exists (select 1 from raw.rejected_rows where {CANDIDATES})", [feed.name]).fetchone()[
        0
    ]:
        return 0, []
    stamp = dt.datetime.now(dt.UTC)
    types = dict.fromkeys(feed.column_names, "VARCHAR")
    con.execute("begin transaction")
    try:
        con.execute(f"create or replace temp table _recover_src as {_source_sql(feed)}")
        compiled = compile_feed(feed, "select * from _recover_src", types, list(feed.column_names))
        con.execute(f"create or replace temp table _dups as {compiled.dups_sql}")
        con.execute(
            f"create or replace temp table _recovered as select v.* from ({compiled.checked_sql}) as v where v._ok"
        )
        cols = ", ".join(f"v.{quote_ident(c)}" for c in feed.column_names)
        recovered = con.execute(
            f"insert into raw.{quote_ident(feed.name)} select {cols}, r.source_file, r.file_hash, r.row_number, "
            f"?::timestamptz, ? from _recovered as v join raw.rejected_rows as r "
            f"on r.file_hash = v.__file and r.row_number = v._ordinal and {CANDIDATES} "
            f"order by r.loaded_at, r.row_number",
            [stamp, run_id, feed.name],
        ).fetchone()[0]
        hashes = [h for (h,) in con.execute("select distinct __file from _recovered order by 1").fetchall()]
        con.execute(
            f"update raw.rejected_rows as r set recovered_at = ?::timestamptz, recovered_run_id = ? "
            f"from _recovered as v where r.file_hash = v.__file and r.row_number = v._ordinal and {CANDIDATES}",
            [stamp, run_id, feed.name],
        )
        for t in ("_recover_src", "_dups", "_recovered"):
            con.execute(f"drop table if exists {t}")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return int(recovered), hashes
