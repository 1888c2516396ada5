"""Pipeline runs for tests: real `python -m orchestration.cli run` processes on copies of the hand-made landing
folder (test_faults, test_concurrency, test_security; the uninterrupted baseline run is made once per pytest
session), the whole pipeline in process on a data folder of its own (pipeline_in_process: test_pipeline,
test_pipeline_clock, test_trust), queries, and an order-independent fingerprint of a DuckDB file's content."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from ingestion.contracts import FEEDS
from ingestion.paths import DataDir
from ingestion.privacy import PseudonymKey, generated_key_path
from ingestion.warehouse import quote_ident

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "handmade" / "landing"
RUN_TIMEOUT = 900

# columns that say when or by which run a row was written, not what it says
RUN_SPECIFIC_COLUMNS = {
    "_loaded_at",
    "_run_id",
    "loaded_at",
    "run_id",
    "load_run_id",
    "check_run_id",
    "published_at",
    "validated_at",
    "audit",
    "_built_at",
    "_created_built_at",
    "built_at",
}
# tables that log every attempt (a killed run's validations are history, not content)
RUN_SPECIFIC_TABLES = {
    ("quality", "validation_results"),
    ("main", "quality_validation_results"),
    ("audit", "change_windows"),
    ("intermediate", "int_change_window"),
}


# the pseudonym key of tests that load raw without the Dagster asset (tests/test_dbt_core, test_incremental):
# not a secret, 32 bytes like a generated one
TEST_PSEUDONYM_KEY = PseudonymKey(b"servicescore tests, not a secret", "tests")


def copy_fixture_landing(paths: DataDir) -> None:
    shutil.copytree(FIXTURE, paths.landing, dirs_exist_ok=True)


def new_data_dir(root: Path, key_from: DataDir | None = None) -> DataDir:
    """A data folder holding the hand-made landing files; with `key_from`, also that folder's generated pseudonym
    key (restored as from a backup), so that its pseudonyms, and so its content, can be compared with it."""
    paths = DataDir(root).ensure()
    copy_fixture_landing(paths)
    if key_from is not None:
        key = generated_key_path(paths)
        key.parent.mkdir(mode=0o700)
        shutil.copy2(generated_key_path(key_from), key)
    return paths


@contextlib.contextmanager
def pipeline_in_process(
    root: Path, write_landing: Callable[[DataDir], None] = copy_fixture_landing, unset_env: tuple[str, ...] = ()
) -> Iterator[tuple[DataDir, list, str, bool]]:
    """The whole pipeline (orchestration.cli.run_pipeline: ingestion, dbt, checks, publication) in this process on
    a new data folder at `root`, whose landing folder `write_landing` fills (default: the hand-made fixture).
    SERVICESCORE_DATA_DIR and DAGSTER_HOME point at it (the Dagster resources read them at run time) and the
    variables `unset_env` are removed, until the block ends. Yields (paths, run results, summary text, ok)."""
    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("SERVICESCORE_DATA_DIR", str(root))
        mp.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        for name in unset_env:
            mp.delenv(name, raising=False)
        paths = DataDir(root).ensure()
        write_landing(paths)
        from orchestration.cli import prepare_home, run_pipeline, summarize

        prepare_home(paths)
        results = run_pipeline(paths)
        text, ok = summarize(results, paths)
        yield paths, results, text, ok
    finally:
        mp.undo()


def cli_env(paths: DataDir, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SERVICESCORE_FAULT_PAUSE"}
    env.update(
        SERVICESCORE_DATA_DIR=str(paths.root),
        DAGSTER_HOME=str(paths.dagster_home),
        PYTHONUNBUFFERED="1",
        DO_NOT_TRACK="1",
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    env.update(extra)
    return env


class CliProcess:
    """`cli run --no-demo` in its own process group (so SIGKILL reaches dbt too), output collected by a thread."""

    def __init__(self, paths: DataDir, *args: str, **env: str) -> None:
        self.paths = paths
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "orchestration.cli", "run", "--no-demo", *args],
            cwd=REPO,
            env=cli_env(paths, **env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float = 300) -> str:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    if rx.search(line):
                        return line
                seen = len(self.lines)
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise AssertionError(
                        f"run ended (exit {self.proc.returncode}) before /{pattern}/:\n" + "\n".join(self.lines[-40:])
                    )
                if time.monotonic() > deadline:
                    raise AssertionError(f"no /{pattern}/ within {timeout} s:\n" + "\n".join(self.lines[-40:]))
                self._cond.wait(0.5)

    def wait_for_path(self, path: Path, timeout: float = 300) -> None:
        """Poll every millisecond: a first publish keeps its temporary file for well under a second."""
        deadline = time.monotonic() + timeout
        while not path.exists():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"run ended (exit {self.proc.returncode}) before {path} appeared:\n" + self.output[-4000:]
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"{path} did not appear within {timeout} s")
            time.sleep(0.001)

    def kill(self) -> None:
        """SIGKILL the whole process group (the CLI and the dbt subprocess), as a power cut would."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)
        self._reader.join(timeout=10)
        deadline = time.monotonic() + 30
        while _group_alive(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def wait(self, timeout: float = RUN_TIMEOUT) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self._reader.join(timeout=30)
        return code


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def run_cli(paths: DataDir, *args: str, **env: str) -> tuple[int, str]:
    run = CliProcess(paths, *args, **env)
    code = run.wait()
    return code, run.output


_BASELINE: dict[str, object] = {}


def baseline(tmp_root: Path) -> tuple[DataDir, int, str]:
    """One uninterrupted `cli run` over the hand-made landing, shared by every test of the session.
    Tests must not write into it (copy the files first)."""
    if "paths" not in _BASELINE:
        paths = new_data_dir(tmp_root / "baseline" / "data")
        code, out = run_cli(paths)
        _BASELINE.update(paths=paths, code=code, out=out)
    return _BASELINE["paths"], _BASELINE["code"], _BASELINE["out"]  # type: ignore[return-value]


# --- content fingerprints -----------------------------------------------------------------------------------


def relations(con: duckdb.DuckDBPyConnection, schemas: set[str] | None = None) -> list[tuple[str, str]]:
    rows = con.execute(
        "select schema_name, table_name from duckdb_tables() where database_name = current_database() "
        "union all select schema_name, view_name from duckdb_views() "
        "where database_name = current_database() and not internal order by 1, 2"
    ).fetchall()
    return [(s, t) for s, t in rows if schemas is None or s in schemas]


def fingerprint(db: Path, schemas: set[str] | None = None) -> dict[str, tuple[int, str, tuple[str, ...]]]:
    """schema.table -> (rows, order-independent content hash, columns compared), run-specific columns and
    tables left out; doubles rounded to 9 decimals so float noise is no difference."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        out: dict[str, tuple[int, str, tuple[str, ...]]] = {}
        for schema, table in relations(con, schemas):
            if (schema, table) in RUN_SPECIFIC_TABLES:
                continue
            rel = f"{quote_ident(schema)}.{quote_ident(table)}"
            cols = [
                (n, t)
                for n, t, *_ in con.execute(f"describe select * from {rel}").fetchall()
                if n not in RUN_SPECIFIC_COLUMNS
            ]
            exprs = [
                f"round({quote_ident(n)}, 9)" if t in ("DOUBLE", "FLOAT") or t.startswith("DECIMAL") else quote_ident(n)
                for n, t in cols
            ]
            row = con.execute(
                f"select count(*), coalesce(sum(hash(row({', '.join(exprs)}))::hugeint), 0) from {rel}"
            ).fetchall()[0]
            out[f"{schema}.{table}"] = (int(row[0]), str(row[1]), tuple(n for n, _ in cols))
        return out
    finally:
        con.close()


def differences(a: dict, b: dict) -> dict[str, tuple]:
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


# --- queries and a publication on its own ---------------------------------------------------------------------


def q(db: DataDir | Path, sql: str, params: list | None = None) -> list[tuple]:
    """Rows of `sql` on a DuckDB file, read-only (a data folder: its warehouse)."""
    con = duckdb.connect(str(db.warehouse if isinstance(db, DataDir) else db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_conservation(db: Path) -> list[tuple]:
    """Files whose rows are not all accounted for: raw rows + rejected rows must equal the rows read, and no
    raw or rejected row may belong to a file that load_log does not list (a half-loaded file)."""
    parts = [f"select '{f}' as feed, _file_hash as h, count(*) as n from raw.{f} group by _file_hash" for f in FEEDS]
    return q(
        db,
        f"""
        with written as ({" union all ".join(parts)}
            union all select feed, file_hash, count(*) from raw.rejected_rows group by feed, file_hash),
        per_file as (select feed, h, sum(n) as n from written group by feed, h)
        select coalesce(l.feed, w.feed), coalesce(l.file_hash, w.h), l.rows_read, w.n
        from raw.load_log as l full outer join per_file as w on l.feed = w.feed and l.file_hash = w.h
        where l.rows_read is distinct from coalesce(w.n, 0) or l.feed is null
    """,
    )


PUBLISH = """
import sys
from pathlib import Path
from orchestration.publish import published_marts
from orchestration.publication.engine import publish
r = publish(Path(sys.argv[1]), Path(sys.argv[2]), list(published_marts()), sys.argv[3])
print("published", r.publication_id, r.new_versions, r.restatements, flush=True)
"""


def publish_process(paths: DataDir, run_id: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", PUBLISH, str(paths.warehouse), str(paths.serving), run_id],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def copy_with_changed_may(base: DataDir, root: Path) -> DataDir:
    """A copy of the baseline warehouse and serving file where May's KPIs changed: a restatement to publish.
    Like a run, the change is recorded in the change-window audit (the publication compares only the periods of
    the months rebuilt since the one it replaces)."""
    paths = DataDir(root).ensure()
    for name in ("warehouse.duckdb", "serving.duckdb"):
        shutil.copy2(base.root / name, paths.root / name)
    con = duckdb.connect(str(paths.warehouse))
    con.execute("update marts.kpi_technician_monthly set csat = csat / 2 where period_label = '2026-05'")
    con.execute("insert into audit.change_windows values ('edit', now(), null, false, date '2026-05-01', false, now())")
    con.close()
    return paths
