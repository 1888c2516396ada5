"""How Great Expectations reaches the DuckDB warehouse: the fix for "every expectation fails with IndexError".

The failure (GE 1.24 + SQLAlchemy 2.1 + duckdb-engine 0.17 + DuckDB 2.0; duckdb-engine issue 1087,
great_expectations issues 10738 / 11579)
--------------------------------------------------------------------------------------------------------
GE's ``SqlAlchemyExecutionEngine.execute_query`` runs a query inside ``with engine.connect() as c:`` and
*returns the un-fetched result after the block has closed the connection*; callers then ``fetchall()``.
Closing a SQLAlchemy 2.x connection ends its autobegun transaction (``dialect.do_rollback``) and the pool
resets the DBAPI connection on return (another rollback). That is harmless for psycopg2 or sqlite3, whose
cursors are independent objects that keep their own rows. duckdb-engine's DBAPI ``cursor()`` however is
only a thin wrapper around *the connection itself* (DuckDB keeps one pending result per connection), so the
ROLLBACK executed on return replaces the pending result: the caller gets ``[]`` (or "No open result set")
and ``resolve_metric_bundle`` dies on ``res[0]`` with ``IndexError``. Reproduced here with plain
SQLAlchemy: ``with eng.connect() as c: r = c.execute(text("select 1"))`` then ``r.fetchall()`` gives ``[]``.

Ideas that do NOT fix it (tried): ``poolclass=NullPool`` (the connection is closed -> "No open result
set"); ``StaticPool`` / ``SingletonThreadPool`` (same connection, but the rollback still runs -> ``[]``);
a read-only connection (reads still go through the shared cursor); duckdb-engine connect args or
``preload_extensions`` (they only run at connect time).

The fix: give every DBAPI cursor its own DuckDB connection
--------------------------------------------------------------------------------------------------------
DuckDB's ``DuckDBPyConnection.cursor()`` opens another connection to the *same* database instance (no new
file open, microseconds). Our DBAPI wrapper (``_IsolatedCursorConnection``) returns such a child per
``cursor()`` call, so a query's pending result lives on the child, and the BEGIN / ROLLBACK that SQLAlchemy
and the pool issue on the parent connection can no longer touch it. This restores exactly the DB-API
property SQLAlchemy and GE rely on (a cursor's rows stay readable after its connection is released), while:

* results still stream from DuckDB: GE's ``fetchmany(200)`` of an unexpected-rows query reads 200 rows, not
  the whole result (a "fetch everything on execute" buffering hook would pull every failing row of a 10M-row
  table into Python), and two open results never interfere;
* all work stays pushed down: every metric is one SQL aggregate DuckDB computes over the table.

Why dropping the shared transaction is correct here: each child cursor runs its statement in DuckDB's own
auto-commit transaction instead of the parent's. That would be wrong for writes, so the validation
connection is opened ``read_only=True``: GE cannot write, and DuckDB's file lock guarantees no other
process writes the warehouse while the gate holds it, so every query of a suite sees the same data.
Child cursors are closed when SQLAlchemy closes the cursor and, at the latest, when the parent connection
closes (``engine.dispose()``), so no handle on warehouse.duckdb survives a suite (dbt runs next, in a
subprocess, and needs the write lock; a read-only instance left in this process would also make a later
read-write ``duckdb.connect`` fail with "different configuration").

Second, smaller incompatibility: duckdb-engine's ``Inspector.get_columns`` queries ``pg_catalog.pg_collation``
which DuckDB 2.0 no longer has, so GE falls back to ``SELECT * FROM <table> LIMIT 1`` *without the schema*.
Each child sets ``search_path`` to the validated table's schema, so that fallback resolves to the right
table; every statement GE builds for the table asset is schema-qualified anyway, and the SQL rules in
``expectations.suites`` always qualify their tables.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import duckdb_engine

from ingestion.paths import duckdb_settings


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class _ClosingCursor(duckdb_engine.CursorWrapper):
    """duckdb-engine's cursor over a child connection; closing the cursor closes the child."""

    def __init__(self, child: duckdb.DuckDBPyConnection, parent: _IsolatedCursorConnection) -> None:
        super().__init__(child, parent)
        self._child = child

    def close(self) -> None:
        self._child.close()


class _IsolatedCursorConnection(duckdb_engine.ConnectionWrapper):
    """duckdb-engine's DBAPI connection, except that every cursor gets its own DuckDB connection."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, search_path: str | None) -> None:
        super().__init__(connection)
        self._duck = connection
        self._search_path = search_path
        self._children: weakref.WeakSet[duckdb.DuckDBPyConnection] = weakref.WeakSet()

    def cursor(self) -> _ClosingCursor:
        child = self._duck.cursor()
        self._children.add(child)
        if self._search_path:
            child.execute(f"set search_path = {_sql_string(self._search_path)}")
        return _ClosingCursor(child, self)

    def close(self) -> None:
        for child in list(self._children):
            child.close()
        super().close()


def validation_connection_factory(
    warehouse: Path,
    search_path: str | None = None,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> Callable[[], Any]:
    """A SQLAlchemy ``creator``: read-only DuckDB connections whose cursors are isolated (see module doc)."""

    config = duckdb_settings(memory_limit, threads)  # the pipeline's limits, as every warehouse connection

    def creator() -> _IsolatedCursorConnection:
        connection = duckdb.connect(str(warehouse), read_only=True, config=config)
        return _IsolatedCursorConnection(connection, search_path)

    return creator
