"""Shared fixtures: every test gets its own data folder (warehouse, serving file, landing, Dagster home)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestion.paths import DataDir


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DataDir:
    root = tmp_path / "data"
    monkeypatch.setenv("SERVICESCORE_DATA_DIR", str(root))
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
    return DataDir(root).ensure()
