"""The months (local time) whose KPI values newly loaded rows can change, as one query over raw.<feed>."""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from ingestion.contracts import Feed
from ingestion.warehouse import quote_ident, quote_literal


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
