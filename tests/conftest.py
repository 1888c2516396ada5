"""Shared fixtures: every test gets its own data folder (warehouse, serving file, landing, Dagster home)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ingestion.organisation import OrganisationSettings
from ingestion.paths import DataDir

# tests that run dbt directly get the default organisation clock, as the pipeline's dbt step passes it
# (orchestration.resources.WarehouseResource.dbt_env); a pipeline run sets its own for its dbt step
for _name, _value in OrganisationSettings().dbt_env().items():
    os.environ.setdefault(_name, _value)


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DataDir:
    root = tmp_path / "data"
    monkeypatch.setenv("SERVICESCORE_DATA_DIR", str(root))
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
    return DataDir(root).ensure()
