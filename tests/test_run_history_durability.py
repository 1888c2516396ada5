"""The durability of Dagster's local run history is a setting (operations.yaml `dagster_sqlite_synchronous`),
applied through SQLAlchemy's public connect hook to the SQLite files in DAGSTER_HOME only, when a run starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from ingestion.paths import DataDir
from orchestration import run_history_durability
from orchestration.settings.operations import load_settings


def _synchronous(path: Path) -> int:
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as con:
            return con.execute(text("pragma synchronous")).scalar_one()
    finally:
        engine.dispose()


@pytest.fixture
def restore():
    yield
    run_history_durability.apply("full")


def test_off_applies_to_dagster_home_files_only(data_dir: DataDir, tmp_path: Path, restore):
    home = data_dir.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_history_durability.apply("full")  # a pipeline run earlier in this process may have set another level
    assert _synchronous(home / "runs.db") == 2  # SQLite's default: FULL
    run_history_durability.apply("off")
    assert run_history_durability.current_level() == "off"
    assert _synchronous(home / "runs.db") == 0
    assert _synchronous(home / "index.db") == 0
    assert _synchronous(elsewhere / "other.db") == 2  # not Dagster's: untouched
    run_history_durability.apply("normal")
    assert _synchronous(home / "runs.db") == 1
    run_history_durability.apply("full")
    assert _synchronous(home / "runs.db") == 2  # the hook is gone


def test_the_setting_defaults_to_off_and_to_full_in_production(data_dir: DataDir, monkeypatch):
    assert load_settings(data_dir).dagster_sqlite_synchronous == "off"
    (data_dir.root / "operations.yaml").write_text("deployment: production\n", encoding="utf-8")
    assert load_settings(data_dir).dagster_sqlite_synchronous == "full"
    monkeypatch.setenv("SERVICESCORE_DAGSTER_SQLITE_SYNCHRONOUS", "normal")
    assert load_settings(data_dir).dagster_sqlite_synchronous == "normal"
    monkeypatch.setenv("SERVICESCORE_DAGSTER_SQLITE_SYNCHRONOUS", "none")
    with pytest.raises(ValueError, match="dagster_sqlite_synchronous must be one of off, normal, full, got 'none'"):
        load_settings(data_dir)


def test_an_unknown_level_is_refused(restore):
    with pytest.raises(ValueError, match="must be one of off, normal, full"):
        run_history_durability.apply("fast")
