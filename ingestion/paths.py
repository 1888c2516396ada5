"""Where ServiceScore keeps its state: one data folder, `data/` by default.

Override with SERVICESCORE_DATA_DIR. Everything the pipeline writes lives under it:
landing/<feed>/, warehouse.duckdb (the build warehouse), serving.duckdb (what BI reads),
dagster_home/, and reports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"

# DuckDB limits of every warehouse connection (loader, dbt, checks, publication): one machine of 2 cores and a
# peak-memory goal of 4 GiB for the whole process tree. SERVICESCORE_DUCKDB_MEMORY_LIMIT / _THREADS override them.
DEFAULT_MEMORY_LIMIT = "3GB"
DEFAULT_THREADS = 2


def duckdb_settings(memory_limit: str | None = None, threads: int | None = None) -> dict[str, object]:
    """The `config` of a DuckDB connection: the given limits, else the environment's, else the defaults.
    Without it DuckDB takes 80 % of RAM and every core (the peak at tier L without it: docs/benchmarks.md)."""
    return {
        "memory_limit": memory_limit or os.environ.get("SERVICESCORE_DUCKDB_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT,
        "threads": int(threads or os.environ.get("SERVICESCORE_DUCKDB_THREADS") or DEFAULT_THREADS),
    }


@dataclass(frozen=True)
class DataDir:
    root: Path

    @classmethod
    def from_env(cls) -> DataDir:
        raw = os.environ.get("SERVICESCORE_DATA_DIR")
        root = Path(raw) if raw else REPO_ROOT / "data"
        return cls(root.resolve())

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def serving(self) -> Path:
        return self.root / "serving.duckdb"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def work(self) -> Path:
        """Scratch space (transcoded files, files being written before a rename)."""
        return self.root / "work"

    def feed_dir(self, feed: str) -> Path:
        return self.landing / feed

    def ensure(self) -> DataDir:
        for p in (self.root, self.landing, self.dagster_home, self.reports, self.work):
            p.mkdir(parents=True, exist_ok=True)
        return self
