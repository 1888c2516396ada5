"""Dagster's SQLite storage as ServiceScore configures it (orchestration/instance_storage.py): fsync off for files
in DAGSTER_HOME, and one SQLAlchemy engine per SQLite file instead of one per statement. Real Dagster instances
and runs, no mocks: the events must land where Dagster's own code reads them."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path

from dagster import AssetCheckResult, AssetKey, DagsterInstance, Definitions, asset, asset_check

from ingestion.paths import DataDir
from orchestration import instance_storage
from orchestration.cli import prepare_home


@asset
def tiny() -> int:
    return 1


@asset_check(asset=tiny)
def tiny_is_positive() -> AssetCheckResult:
    return AssetCheckResult(passed=True)


def test_engines_are_reused_per_sqlite_file_and_events_land_where_dagster_reads_them(data_dir: DataDir) -> None:
    instance_storage.install()
    assert instance_storage.engine_reuse_installed(), "the pinned Dagster's storage methods changed shape"
    prepare_home(data_dir)
    job = Definitions(assets=[tiny], asset_checks=[tiny_is_positive]).resolve_implicit_global_asset_job_def()
    with DagsterInstance.get() as instance:
        results = [job.execute_in_process(instance=instance) for _ in range(2)]
        assert all(r.success for r in results)
        events = instance.event_log_storage
        # per-run shards and the cross-run index: both read back through Dagster's own queries
        for r in results:
            assert any(
                e.dagster_event and e.dagster_event.event_type_value == "ASSET_MATERIALIZATION"
                for e in instance.all_logs(r.run_id)
            )
        latest = instance.get_latest_materialization_event(AssetKey("tiny"))
        assert latest is not None and latest.run_id == results[1].run_id
        check = instance.event_log_storage.get_latest_asset_check_execution_by_key([tiny_is_positive.check_key])[
            tiny_is_positive.check_key
        ]
        assert check.run_id == results[1].run_id and check.status.value == "SUCCEEDED"
        assert {r.run_id for r in instance.get_runs()} == {r.run_id for r in results}
        # one engine per file: the index and each run's shard (event log), the run database (run storage)
        cache = instance_storage.engine_cache(events)
        assert len(cache) == 3
        shard = events.conn_string_for_shard(results[1].run_id)
        engine, created = cache.get(shard)
        assert not created
        with events.run_connection(results[1].run_id) as conn:
            assert conn.engine is engine
        assert len(instance_storage.engine_cache(instance.run_storage)) == 1


def test_dagster_home_files_are_written_without_fsync(data_dir: DataDir) -> None:
    instance_storage.install()
    prepare_home(data_dir)
    with DagsterInstance.get() as instance:
        assert instance.get_runs() == []
        events = instance.event_log_storage
        with events.index_connection() as conn:
            assert conn.exec_driver_sql("pragma synchronous").scalar() == 0
    outside = sqlite3.connect(data_dir.root.parent / "elsewhere.db")
    try:
        assert outside.execute("pragma synchronous").fetchone()[0] == 2  # FULL: not in DAGSTER_HOME
    finally:
        outside.close()


def test_engine_cache_keeps_the_most_recently_used_engines(tmp_path: Path) -> None:
    cache = instance_storage._EngineCache(size=2)
    urls = [f"sqlite:///{tmp_path / name}.db" for name in ("a", "b", "c")]
    a, _ = cache.get(urls[0])
    b, _ = cache.get(urls[1])
    assert cache.get(urls[0]) == (a, False)  # a is now the most recent
    c, created = cache.get(urls[2])  # evicts b
    assert created and len(cache) == 2
    assert cache.get(urls[0]) == (a, False) and cache.get(urls[2]) == (c, False)
    b2, created = cache.get(urls[1])
    assert created and b2 is not b


def test_engine_reuse_applies_only_to_dagster_113_shaped_methods() -> None:
    instance_storage.install()
    assert instance_storage.engine_reuse_installed()
    (event_cls, event_name, event_params, event_names), (run_cls, run_name, run_params, run_names) = (
        instance_storage._expected_shapes()
    )
    # Dagster's own methods (kept when replaced) have the expected shape ...
    assert instance_storage.has_expected_shape(
        instance_storage.DAGSTER_ORIGINALS[("SqliteEventLogStorage", "_connect")], event_params, event_names
    )
    assert instance_storage.has_expected_shape(
        instance_storage.DAGSTER_ORIGINALS[("SqliteRunStorage", "connect")], run_params, run_names
    )
    # ... ours (installed) and a method with another signature or body do not: installing again changes nothing
    assert not instance_storage.has_expected_shape(getattr(event_cls, event_name), event_params, event_names)

    @contextmanager
    def other_signature(self, timeout):  # noqa: ANN001, ANN202 - the body builds an engine, the signature differs
        yield self._conn_string, timeout, "create_engine"

    @contextmanager
    def other_body(self):  # noqa: ANN001, ANN202 - Dagster 1.13's signature, no engine built
        yield self._conn_string

    assert not instance_storage.has_expected_shape(other_signature, run_params, run_names)
    assert not instance_storage.has_expected_shape(other_body, run_params, run_names)
    installed = (getattr(event_cls, event_name), getattr(run_cls, run_name))
    assert instance_storage._install_engine_reuse() is False
    assert (getattr(event_cls, event_name), getattr(run_cls, run_name)) == installed
