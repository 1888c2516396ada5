"""Faults leave nothing half-done: a real `cli run` process is SIGKILLed (with the dbt subprocess, as a power cut
would) during ingestion, during the dbt build and during publication, then run again; the warehouse and the
serving file end up identical in content to an uninterrupted run on the same landing files.

One data folder goes through the three kills in turn (each rerun is the recovery of the previous kill and the
victim of the next), then a last run to completion; the uninterrupted baseline runs in another folder.
The kill moments:
  ingestion  SERVICESCORE_FAULT_PAUSE=load:tickets/* pauses inside the transaction of the first tickets file
             (rows inserted, not committed; ingestion/faults.py) and the process is killed there;
  dbt build  killed as soon as dbt reports marts.fct_service_tickets built (dbt is a quarter through its DAG);
  publish    killed as soon as serving.duckdb.publishing.wal exists (the new serving file is being written).
Plus a kill of a publication over an existing serving file, which must stay byte-for-byte as it was.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ingestion.paths import DataDir
from tests.cli_runs import (
    CliProcess,
    baseline,
    copy_with_changed_may,
    differences,
    fingerprint,
    load_conservation,
    new_data_dir,
    publish_process,
    q,
    sha256,
)

pytestmark = pytest.mark.slow

WAREHOUSE_SCHEMAS = {"raw", "staging", "intermediate", "marts", "reference"}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> DataDir:
    paths, code, out = baseline(tmp_path_factory.getbasetemp())
    assert code == 0, out[-6000:]
    return paths


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory, base: DataDir) -> dict[str, object]:
    """The kill chain in one data folder; what was found after each kill is recorded for the tests."""
    paths = new_data_dir(tmp_path_factory.mktemp("killed") / "data", key_from=base)
    seen: dict[str, object] = {"paths": paths}

    # 1. ingestion: paused inside the open transaction of the first tickets file, then killed
    run = CliProcess(paths, SERVICESCORE_FAULT_PAUSE="load:tickets/*")
    seen["ingest_line"] = run.wait_for_line(r"fault point load:tickets/\S+ reached")
    run.kill()
    seen["ingest_conservation"] = load_conservation(paths.warehouse)
    seen["ingest_tickets"] = q(paths.warehouse, "select count(*) from raw.tickets")[0][0]
    seen["ingest_logged"] = q(paths.warehouse, "select feed, count(*) from raw.load_log group by feed order by feed")
    seen["ingest_serving"] = paths.serving.exists()

    # 2. dbt build: the rerun finishes ingestion, and is killed while dbt builds the marts
    run = CliProcess(paths)
    run.wait_for_line(r"OK created sql \w+ model marts\.fct_service_tickets")
    run.kill()
    seen["dbt_output"] = run.output
    seen["dbt_conservation"] = load_conservation(paths.warehouse)
    seen["dbt_files"] = q(paths.warehouse, "select count(*), count(distinct (feed, file_hash)) from raw.load_log")[0]
    seen["dbt_marts"] = {
        r[0] for r in q(paths.warehouse, "select table_name from duckdb_tables() where schema_name = 'marts'")
    }
    seen["dbt_serving"] = paths.serving.exists()

    # 3. publish: killed while the new serving file is being written next to where serving.duckdb will be
    run = CliProcess(paths)
    run.wait_for_path(paths.root / "serving.duckdb.publishing.wal", timeout=600)
    run.kill()
    seen["publish_output"] = run.output
    seen["publish_serving"] = paths.serving.exists()
    seen["publish_leftovers"] = sorted(p.name for p in paths.root.glob("serving.duckdb.publishing*"))

    # 4. run again to completion
    run = CliProcess(paths)
    seen["final_code"] = run.wait()
    seen["final_output"] = run.output
    seen["final_leftovers"] = sorted(p.name for p in paths.root.glob("serving.duckdb.publishing*"))
    return seen


def test_kill_inside_a_file_transaction_loads_nothing_of_that_file(killed):
    assert "load:tickets/" in killed["ingest_line"]
    assert killed["ingest_conservation"] == []  # every listed file complete, no row of an unlisted file
    assert killed["ingest_tickets"] == 0  # the inserted, uncommitted rows of the tickets file are gone
    logged = dict(killed["ingest_logged"])
    assert "tickets" not in logged and logged.get("technicians") == 1  # earlier feeds stay loaded
    assert not killed["ingest_serving"]


def test_rerun_after_ingestion_kill_loads_each_file_once(killed, base: DataDir):
    assert killed["dbt_conservation"] == []
    files, distinct = killed["dbt_files"]
    assert files == distinct == q(base.warehouse, "select count(*) from raw.load_log")[0][0]


def test_kill_during_dbt_build_publishes_nothing(killed):
    assert "servicescore_dbt - STEP_START" in killed["dbt_output"]
    assert "serving__publication - STEP_START" not in killed["dbt_output"]
    assert "appraisal_scores" not in killed["dbt_marts"]  # killed a quarter through the dbt DAG
    assert not killed["dbt_serving"]


def test_kill_during_publish_leaves_no_serving_file(killed):
    assert "serving__publication - STEP_START" in killed["publish_output"]
    assert not killed["publish_serving"]  # never a half-written serving.duckdb
    assert "serving.duckdb.publishing" in killed["publish_leftovers"]  # the abandoned temporary file


def test_run_after_the_kills_succeeds_and_cleans_up(killed):
    assert killed["final_code"] == 0, killed["final_output"][-6000:]
    assert killed["final_leftovers"] == []


def test_warehouse_after_kills_equals_uninterrupted_run(killed, base: DataDir):
    paths: DataDir = killed["paths"]
    got = fingerprint(paths.warehouse, WAREHOUSE_SCHEMAS)
    want = fingerprint(base.warehouse, WAREHOUSE_SCHEMAS)
    assert len(want) > 40 and want["marts.appraisal_scores"][0] > 0
    assert differences(got, want) == {}
    assert load_conservation(paths.warehouse) == []


def test_serving_after_kills_equals_uninterrupted_run(killed, base: DataDir):
    paths: DataDir = killed["paths"]
    got, want = fingerprint(paths.serving), fingerprint(base.serving)
    assert "main.kpi_technician_monthly" in want and "history.appraisal_scores" in want
    assert differences(got, want) == {}
    assert q(paths.serving, "select publication_id from publications") == [(1,)]


def test_kill_during_publish_over_an_existing_file_leaves_it_byte_for_byte(base: DataDir, tmp_path: Path):
    paths = copy_with_changed_may(base, tmp_path / "pub")
    before = sha256(paths.serving)
    proc = publish_process(paths, "killed-publish")
    wal = paths.root / "serving.duckdb.publishing.wal"
    deadline = time.monotonic() + 120
    while not wal.exists():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline
        time.sleep(0.001)
    import os
    import signal

    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert sha256(paths.serving) == before
    assert q(paths.serving, "select max(publication_id) from publications") == [(1,)]
    # publishing again after the kill: the leftover is discarded, May gets version 2 as a restatement
    proc = publish_process(paths, "publish-again")
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out
    assert q(
        paths.serving, "select period_label, version, is_restatement from publication_periods where publication_id = 2"
    ) == [("2026-05", 2, True)]
    assert not list(paths.root.glob("serving.duckdb.publishing*"))
