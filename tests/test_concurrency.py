"""Concurrency: BI readers keep reading while a publication swaps serving.duckdb, and a second run started
while one is writing fails fast (exit 3, naming the lock) instead of waiting or corrupting anything.

Readers are separate processes (a BI tool is): one holds a read-only connection for the whole test and
queries in a loop, one opens a new read-only connection for every query. The publication writes
serving.duckdb.publishing and renames it over serving.duckdb, so the holder keeps reading the file it opened
(the old inode), and the re-opener sees the old file, then the new one, never a mix of both.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from ingestion.paths import DataDir
from tests.cli_runs import (
    REPO,
    CliProcess,
    baseline,
    copy_with_changed_may,
    load_conservation,
    new_data_dir,
    publish_process,
    run_cli,
)

pytestmark = pytest.mark.slow

STATE_SQL = """
select
    (select max(publication_id) from publications),
    (select count(*) from kpi_technician_monthly),
    (select round(sum(csat), 9) from kpi_technician_monthly where period_label = '2026-05'),
    (select count(*) from history.kpi_technician_monthly),
    (select count(*) from publication_periods)
"""

READER = """
import json, sys, duckdb
from pathlib import Path

serving, mode, stop, sql = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4]
held = duckdb.connect(str(serving), read_only=True) if mode == "hold" else None
reads, errors, states = 0, [], {}
print("ready", flush=True)
while not stop.exists():
    try:
        con = held or duckdb.connect(str(serving), read_only=True)
        state = json.dumps(con.execute(sql).fetchone())
        if held is None:
            con.close()
        states[state] = states.get(state, 0) + 1
        reads += 1
    except Exception as exc:  # counted, never raised: the test asserts there are none
        errors.append(repr(exc))
print(json.dumps({"reads": reads, "errors": errors[:5], "error_count": len(errors), "states": states}),
      flush=True)
"""


def state(serving: Path) -> str:
    con = duckdb.connect(str(serving), read_only=True)
    try:
        return json.dumps(con.execute(STATE_SQL).fetchone())
    finally:
        con.close()


def start_reader(serving: Path, mode: str, stop: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", READER, str(serving), mode, str(stop), STATE_SQL],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", line + proc.communicate()[0]
    return proc


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> DataDir:
    paths, code, out = baseline(tmp_path_factory.getbasetemp())
    assert code == 0, out[-6000:]
    return paths


def test_readers_never_error_nor_see_a_half_written_file_during_publish(base: DataDir, tmp_path: Path):
    paths = copy_with_changed_may(base, tmp_path / "pub")
    old = state(paths.serving)
    stop = tmp_path / "stop"
    holder = start_reader(paths.serving, "hold", stop)
    reopener = start_reader(paths.serving, "reopen", stop)
    time.sleep(1.0)
    publisher = publish_process(paths, "publish-under-readers")
    out = publisher.communicate(timeout=300)[0]
    assert publisher.returncode == 0, out
    new = state(paths.serving)
    time.sleep(1.0)
    stop.touch()
    held = json.loads(holder.communicate(timeout=60)[0].strip().splitlines()[-1])
    reopened = json.loads(reopener.communicate(timeout=60)[0].strip().splitlines()[-1])

    assert json.loads(old)[0] == 1 and json.loads(new)[0] == 2  # the publish made version 2 of May
    assert json.loads(new)[2] == pytest.approx(json.loads(old)[2] / 2)
    assert (held["error_count"], reopened["error_count"]) == (0, 0), (held["errors"], reopened["errors"])
    assert held["reads"] > 10 and reopened["reads"] > 10
    assert set(held["states"]) == {old}  # the open connection keeps reading the file it opened
    assert set(reopened["states"]) == {old, new}  # old, then new, and nothing in between
    assert not list(paths.root.glob("serving.duckdb.publishing*"))


def test_second_run_while_one_is_writing_fails_fast_naming_the_lock(tmp_path: Path):
    from orchestration.cli import warehouse_lock

    paths = new_data_dir(tmp_path / "data")
    first = CliProcess(paths, SERVICESCORE_FAULT_PAUSE="load:tickets/*")
    try:
        first.wait_for_line(r"fault point load:tickets/\S+ reached")  # writing: inside a load transaction
        before = paths.warehouse.stat().st_mtime_ns, paths.warehouse.stat().st_size
        started = time.monotonic()
        code, out = run_cli(paths)
        elapsed = time.monotonic() - started
        assert code == 3, out
        assert "another ServiceScore run is writing" in out and ".warehouse.lock" in out
        assert f"held by pid {first.proc.pid}" in out
        assert elapsed < 30  # no waiting on the lock: the time is Python starting up
        assert (paths.warehouse.stat().st_mtime_ns, paths.warehouse.stat().st_size) == before
        # DuckDB's own file lock also keeps any other writer out
        with pytest.raises(duckdb.IOException, match="lock"):
            duckdb.connect(str(paths.warehouse))
        assert first.proc.poll() is None  # the first run is unaffected
    finally:
        first.kill()
    # the killed writer's locks are gone with it, and what it had committed is whole
    with warehouse_lock(paths):
        assert load_conservation(paths.warehouse) == []
