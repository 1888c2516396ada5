"""Dagster's local SQLite run/event storage, made affordable for partition ranges.

A run over a range of day partitions writes two events per partition and asset (planned, materialized);
with SQLite's default `synchronous=FULL` each costs an fsync, about 80 ms on these disks. We turn off the
fsync for SQLite connections whose file lies in DAGSTER_HOME. A killed process loses nothing (the data is
in the OS page cache); only a power loss could cost the last events of Dagster's run history, never the
warehouse or the serving file. A deployment that needs more points Dagster's storage at PostgreSQL.
"""

import os
import sqlite3

from sqlalchemy import event
from sqlalchemy.engine import Engine

_installed = False


def _is_dagster_home_db(dbapi_connection: sqlite3.Connection) -> bool:
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return False
    try:
        rows = dbapi_connection.execute("pragma database_list").fetchall()
    except sqlite3.Error:
        return False
    home = os.path.realpath(home)
    return any(r[2] and os.path.realpath(r[2]).startswith(home + os.sep) for r in rows)


def install() -> None:
    global _installed
    if _installed:
        return

    @event.listens_for(Engine, "connect")
    def _no_fsync(dbapi_connection, _record) -> None:  # noqa: ANN001
        if isinstance(dbapi_connection, sqlite3.Connection) and _is_dagster_home_db(dbapi_connection):
            dbapi_connection.execute("pragma synchronous = off")

    _installed = True
