"""Dagster's local SQLite run/event storage, made affordable for partition ranges and big dbt steps.

Two costs of Dagster 1.13's SQLite storage, paid per event (a nightly build run writes ~1 500 events: planned
and reported materializations and asset checks of ~60 assets and ~400 dbt tests; a full run over a year of day
partitions several thousand):

* **fsync.** With SQLite's default `synchronous=FULL` every commit costs an fsync, about 80 ms on these disks.
  We turn it off for SQLite connections whose file lies in DAGSTER_HOME. A killed process loses nothing (the
  data is in the OS page cache); only a power loss could cost the last events of Dagster's run history, never
  the warehouse or the serving file. A deployment that needs more points Dagster's storage at PostgreSQL.
* **An SQLAlchemy engine per statement.** `SqliteEventLogStorage._connect` and `SqliteRunStorage.connect`
  build a new engine for every read and write and dispose of it afterwards, so each event pays the engine's
  construction and compiles its INSERT again (the statement cache lives in the engine). Measured on the tier-L
  nightly's build run: creating the run (459 planned events) took 3.7-4.8 s, 2.3 s with the engines reused.
  We keep one engine per SQLite file (per shard: a run's event file, the index, the run database), still
  with `NullPool`: every use opens and closes its own connection exactly as before, so locking, transactions
  and what other processes (the webserver, the daemon) see are unchanged; only the engine object is reused.
  At most `MAX_CACHED_ENGINES` engines per storage object are kept (least recently used dropped), so a
  long-lived process that touches many runs does not accumulate them.

Both are installed by `install()` when the ServiceScore definitions are loaded, i.e. in every process that
executes ServiceScore runs; processes that do not import them (a plain `dagster-webserver`) keep Dagster's
behaviour and read and write the same files. The engine reuse replaces two methods private to Dagster: it is
applied only when they have the shape of the pinned Dagster (1.13.x, pyproject.toml), otherwise skipped with a
warning (Dagster's own code then runs, correct and slower); tests/test_instance_storage.py checks both.
"""

from __future__ import annotations

import inspect
import logging
import os
import sqlite3
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

MAX_CACHED_ENGINES = 16

_installed = False
_engine_reuse_installed = False


@lru_cache(maxsize=4096)
def _in_home(path: str, home: str) -> bool:
    return os.path.realpath(path).startswith(os.path.realpath(home) + os.sep)


def _is_dagster_home_db(dbapi_connection: sqlite3.Connection) -> bool:
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return False
    try:
        rows = dbapi_connection.execute("pragma database_list").fetchall()
    except sqlite3.Error:
        return False
    return any(r[2] and _in_home(r[2], home) for r in rows)


class _EngineCache:
    """Engines by connection string, least recently used first; evicted engines are disposed."""

    def __init__(self, size: int = MAX_CACHED_ENGINES) -> None:
        self.size = size
        self._engines: OrderedDict[str, Engine] = OrderedDict()

    def get(self, conn_string: str, **kwargs: Any) -> tuple[Engine, bool]:
        engine = self._engines.get(conn_string)
        if engine is not None:
            self._engines.move_to_end(conn_string)
            return engine, False
        engine = create_engine(conn_string, poolclass=NullPool, **kwargs)
        self._engines[conn_string] = engine
        while len(self._engines) > self.size:
            _, old = self._engines.popitem(last=False)
            old.dispose()
        return engine, True

    def __len__(self) -> int:
        return len(self._engines)


def engine_cache(storage: Any) -> _EngineCache:
    """The engine cache of one Dagster storage object (created on first use)."""
    cache = storage.__dict__.get("_servicescore_engines")
    if cache is None:
        cache = _EngineCache()
        storage.__dict__["_servicescore_engines"] = cache
    return cache


# Dagster's methods the engine reuse replaces: (class, method, parameters, names its source must use)
def _expected_shapes() -> tuple:
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
    from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage

    return (
        (
            SqliteEventLogStorage,
            "_connect",
            ["self", "shard"],
            ("create_engine", "_initdb", "_initialized_dbs", "_db_lock"),
        ),
        (SqliteRunStorage, "connect", ["self"], ("create_engine", "_conn_string")),
    )


def has_expected_shape(method: Any, params: list[str], names: tuple[str, ...]) -> bool:
    """`method` (a context manager function) has Dagster 1.13's parameters and builds its engine as 1.13 does."""
    inner = getattr(method, "__wrapped__", None)
    try:
        source = inspect.getsource(inner) if inner else ""
        signature = list(inspect.signature(inner).parameters) if inner else []
    except (OSError, TypeError, ValueError):
        return False
    return signature == params and all(n in source for n in names)


# the replaced methods, by (class name, method name)
DAGSTER_ORIGINALS: dict[tuple[str, str], Any] = {}


def _install_engine_reuse() -> bool:
    """Replace SqliteEventLogStorage._connect and SqliteRunStorage.connect by versions that reuse one engine per
    SQLite file. Returns False (and changes nothing) when Dagster's methods do not look like the pinned ones."""
    try:
        from dagster._core.storage.event_log.sqlite import sqlite_event_log

        shapes = _expected_shapes()
    except ImportError as exc:  # pragma: no cover - a Dagster without these modules
        log.warning("Dagster SQLite storage engines are not reused: %s", exc)
        return False
    for cls, name, params, names in shapes:
        if not has_expected_shape(getattr(cls, name, None), params, names):
            log.warning(
                "Dagster SQLite storage engines are not reused: %s.%s is not the method of Dagster 1.13",
                cls.__name__,
                name,
            )
            return False
    (event_storage, *_), (run_storage, *_) = shapes
    timeout = sqlite_event_log.SQLITE_BUSY_TIMEOUT_SECONDS

    @contextmanager
    def _connect(self: Any, shard: str) -> Iterator[Any]:
        with self._db_lock:
            engine, _ = engine_cache(self).get(self.conn_string_for_shard(shard), connect_args={"timeout": timeout})
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    @contextmanager
    def connect(self: Any) -> Iterator[Any]:
        engine, _ = engine_cache(self).get(self._conn_string)
        with engine.connect() as conn, conn.begin():
            yield conn

    DAGSTER_ORIGINALS[("SqliteEventLogStorage", "_connect")] = event_storage._connect
    DAGSTER_ORIGINALS[("SqliteRunStorage", "connect")] = run_storage.connect
    event_storage._connect = _connect
    run_storage.connect = connect
    return True


def engine_reuse_installed() -> bool:
    return _engine_reuse_installed


def install() -> None:
    global _installed, _engine_reuse_installed
    if _installed:
        return

    @event.listens_for(Engine, "connect")
    def _no_fsync(dbapi_connection, _record) -> None:  # noqa: ANN001
        if isinstance(dbapi_connection, sqlite3.Connection) and _is_dagster_home_db(dbapi_connection):
            dbapi_connection.execute("pragma synchronous = off")

    _engine_reuse_installed = _install_engine_reuse()
    _installed = True
