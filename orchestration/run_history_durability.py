"""How durably Dagster's local SQLite run history is written: SQLite's own `synchronous` setting.

Dagster 1.13's SQLite run and event storage commits every event on its own, and with SQLite's default
(`synchronous=FULL`) every commit waits for an fsync: a nightly build run writes well over a thousand events
(planned and reported materializations and the checks of ~60 assets and ~400 dbt tests), so most of a small
run's time can go to waiting for the disk (docs/benchmarks.md has the figures). Dagster's instance settings
(dagster.yaml) have no option for it; SQLite has (`PRAGMA synchronous`), and SQLAlchemy, through which Dagster
opens the files, has a public hook for setting it on every new connection (`event.listen(Engine, "connect")`).

`apply(settings)` registers that hook for the connections of this process whose file lies in DAGSTER_HOME, with
the level of the operations setting `dagster_sqlite_synchronous` (orchestration/settings/operations.py):
`off` by default outside production, `full` (SQLite's default, the hook is not registered) in production.
With `off`, a killed process loses nothing (the data is in the operating system's page cache); a power cut can
cost the last events of Dagster's run history, never the warehouse or the serving file, whose writes DuckDB
makes durable itself. A deployment that needs a durable run history at speed points Dagster's storage at
PostgreSQL (dagster-postgres, `storage: postgres:` in dagster.yaml).

It is called explicitly by the command-line runs (orchestration.cli run_job) before they execute, never at
import: a Dagster process that does not call it (the webserver, the daemon) keeps SQLite's default and reads
and writes the same files.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from orchestration.settings.operations import SQLITE_SYNCHRONOUS as LEVELS

_level: str | None = None  # the level the registered hook applies, None while none is registered


def _in_dagster_home(dbapi_connection: sqlite3.Connection) -> bool:
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return False
    prefix = os.path.realpath(home) + os.sep
    try:
        rows = dbapi_connection.execute("pragma database_list").fetchall()
    except sqlite3.Error:
        return False
    return any(r[2] and os.path.realpath(r[2]).startswith(prefix) for r in rows)


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    if _level is not None and isinstance(dbapi_connection, sqlite3.Connection) and _in_dagster_home(dbapi_connection):
        dbapi_connection.execute(f"pragma synchronous = {_level}")


def apply(level: str) -> None:
    """Use SQLite `synchronous = <level>` for the Dagster-home SQLite files this process opens from now on
    ('full': SQLite's default, the hook is removed)."""
    global _level
    if level not in LEVELS:
        raise ValueError(f"dagster_sqlite_synchronous must be one of {', '.join(LEVELS)}, not {level!r}")
    _level = None if level == "full" else level
    registered = event.contains(Engine, "connect", _on_connect)
    if _level is not None and not registered:
        event.listen(Engine, "connect", _on_connect)
    elif _level is None and registered:
        event.remove(Engine, "connect", _on_connect)


def current_level() -> str:
    return _level or "full"
