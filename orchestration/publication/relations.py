"""What the publication engine knows of a relation in the warehouse or the serving file: the published marts'
specs, their columns, an order-independent content hash, whether a table or view exists."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from ingestion.warehouse import quote_ident

PERIOD_COLUMN = "period_label"


@dataclass(frozen=True)
class MartSpec:
    name: str
    mode: str  # "versioned" (by period_label) or "snapshot"
    schema: str = "marts"
    unique_key: tuple[str, ...] = ()  # the dbt model's unique_key (incremental snapshot apply), if any
    windowed: bool = False  # the model recomputes by the change window (depends on int_change_window)


def columns_of(con: duckdb.DuckDBPyConnection, qualified: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f"describe select * from {qualified}").fetchall()]


def content_hash_expr(columns: list[tuple[str, str]]) -> str:
    """Order-independent content hash of a set of rows. Doubles are rounded to 9 decimals: parallel
    aggregation sums floats in varying order (noise ~1e-15), and rounding to fewer decimals would make a
    value that sits exactly on a rounding boundary (e.g. 2.3165625 at 6 decimals) flip between runs.
    Columns whose name starts with '_' are bookkeeping, not content, and are left out."""
    parts = []
    for name, typ in columns:
        if name.startswith("_"):
            continue  # bookkeeping (e.g. _built_at of incremental models) is not content
        q = quote_ident(name)
        parts.append(f"round({q}, 9)" if typ in ("DOUBLE", "FLOAT") else q)
    return f"sum(hash(row({', '.join(parts)}))::hugeint)"


def relation_exists(con: duckdb.DuckDBPyConnection, kind: str, catalog: str, schema: str, name: str) -> bool:
    """Whether a table (kind 'table') or view (kind 'view') exists; kind is a literal of this module."""
    row = con.execute(
        f"select count(*) from duckdb_{kind}s() where database_name = ? and schema_name = ? and {kind}_name = ?",
        [catalog, schema, name],
    ).fetchall()[0]
    return bool(row[0])


def table_exists(con: duckdb.DuckDBPyConnection, catalog: str, schema: str, name: str) -> bool:
    return relation_exists(con, "table", catalog, schema, name)


def view_exists(con: duckdb.DuckDBPyConnection, catalog: str, schema: str, name: str) -> bool:
    return relation_exists(con, "view", catalog, schema, name)
