"""Resources shared by the domain modules: where the warehouse is and how DuckDB may use the machine."""

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from ingestion.paths import DEFAULT_MEMORY_LIMIT, DEFAULT_THREADS, DataDir


class WarehouseResource(ConfigurableResource):
    """The embedded DuckDB warehouse. Defaults work with no configuration (data/ in the repo, or
    $SERVICESCORE_DATA_DIR); the memory limit and thread count bound DuckDB on small machines."""

    data_dir: str | None = Field(
        default=None,
        description="the data folder (all state lives here); unset: $SERVICESCORE_DATA_DIR, else data/ in the repo",
    )
    timezone: str = Field(default="Asia/Shanghai", description="zone of naive timestamps and of days/months")
    memory_limit: str = Field(default=DEFAULT_MEMORY_LIMIT, description="DuckDB memory_limit for every connection")
    threads: int = Field(default=DEFAULT_THREADS, description="DuckDB threads")
    closing_day: int = Field(
        default=5,
        description="day of the following month on which a month closes: later changes to it are restatements",
    )

    def paths(self) -> DataDir:
        # resolved when a step runs, not when the code location loads
        root = DataDir(Path(self.data_dir).resolve()) if self.data_dir else DataDir.from_env()
        return root.ensure()

    def dbt_env(self) -> dict[str, str]:
        """Environment for the dbt subprocess, so dbt builds the same warehouse with the same limits."""
        return {
            "SERVICESCORE_DATA_DIR": str(self.paths().root),
            "SERVICESCORE_TIMEZONE": self.timezone,
            "SERVICESCORE_DUCKDB_MEMORY_LIMIT": self.memory_limit,
            "SERVICESCORE_DUCKDB_THREADS": str(self.threads),
        }
