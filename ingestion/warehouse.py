"""The warehouse file: connecting (one writer, a clear error when another process holds it or the file is
broken) and quoting identifiers and literals for the SQL the loader compiles."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import duckdb

from ingestion.load_results import FeedLoadError, WarehouseCorruptError, WarehouseLockedError
from ingestion.organisation import organisation_timezone
from ingestion.paths import DataDir, duckdb_settings


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def warehouse_timezone(warehouse: Path) -> str:
    """The organisation's zone of the data folder that holds the warehouse file (ingestion.organisation)."""
    return organisation_timezone(DataDir(warehouse.resolve().parent))


@contextlib.contextmanager
def connect(
    warehouse: Path,
    timezone: str | None = None,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived writer connection; DuckDB allows one writer process, so never keep it open.
    Memory and threads: ingestion.paths.duckdb_settings (the pipeline's limits)."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(warehouse), config=duckdb_settings(memory_limit, threads))
    except duckdb.Error as exc:
        raise connect_error(warehouse, exc) from exc
    try:
        con.execute(f"set TimeZone = {quote_literal(timezone or warehouse_timezone(warehouse))}")
        yield con
    finally:
        con.close()


def _lock_holder(path: Path) -> tuple[str, int] | None:
    """('read'|'write', pid) of a POSIX lock another process holds on the file (DuckDB locks it with fcntl)."""
    import fcntl
    import struct

    fmt = "hhqqi4x"  # struct flock on Linux: l_type, l_whence, l_start, l_len, l_pid
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        got = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(fmt, fcntl.F_WRLCK, 0, 0, 0, 0))
        l_type, _w, _s, _l, pid = struct.unpack(fmt, got)
    except OSError:
        return None
    finally:
        os.close(fd)
    if l_type == fcntl.F_UNLCK:
        return None
    return ("read" if l_type == fcntl.F_RDLCK else "write"), pid


def connect_error(warehouse: Path, exc: duckdb.Error) -> FeedLoadError:
    """Tell a warehouse held by another process (retried) from one that is not a DuckDB database (not retried)."""
    first = str(exc).splitlines()[0]
    if isinstance(exc, duckdb.IOException) and "lock" in first.lower():
        holder = _lock_holder(warehouse)
        pid = f" (PID {holder[1]})" if holder else ""
        if (holder and holder[0] == "read") or (holder is None and "read-only mode" in str(exc)):
            return WarehouseLockedError(
                f"{warehouse}: the warehouse is held open by a reader{pid}, e.g. a BI tool or a duckdb shell "
                f"connected to the build warehouse (readers should open serving.duckdb); trying again later: {first}"
            )
        return WarehouseLockedError(
            f"{warehouse}: the warehouse is locked by another writer{pid} (another run is writing it): {first}"
        )
    return WarehouseCorruptError(
        f"{warehouse}: the warehouse file cannot be opened as a DuckDB database ({first}); not retried: restore "
        f"it from a backup, or move it away to rebuild it from the landing folder (rule: warehouse_readable)"
    )
