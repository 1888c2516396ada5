"""Resources shared by the domain modules: where the warehouse is and how DuckDB may use the machine."""

from dataclasses import replace
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from ingestion.organisation import OrganisationSettings, load_organisation
from ingestion.paths import DEFAULT_MEMORY_LIMIT, DEFAULT_THREADS, DataDir


class WarehouseResource(ConfigurableResource):
    """The embedded DuckDB warehouse. Defaults work with no configuration (data/ in the repo, or
    $SERVICESCORE_DATA_DIR); the memory limit and thread count bound DuckDB on small machines."""

    data_dir: str | None = Field(
        default=None,
        description="the data folder (all state lives here); unset: $SERVICESCORE_DATA_DIR, else data/ in the repo",
    )
    timezone: str | None = Field(
        default=None,
        description="zone of naive timestamps and of days/months; unset: the organisation's zone "
        "(ingestion.organisation: operations.yaml `organisation.timezone` or $SERVICESCORE_TIMEZONE), read at run time",
    )
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

    def organisation(self) -> OrganisationSettings:
        """The organisation's clock in force for this data folder, with the resource's zone if one is set."""
        settings = load_organisation(self.paths())
        return replace(settings, timezone=self.timezone) if self.timezone else settings

    def zone(self) -> str:
        return self.timezone or self.organisation().timezone

    def dbt_env(self) -> dict[str, str]:
        """Environment for the dbt subprocess, so dbt builds the same warehouse with the same limits and the
        organisation's zone and working day (dbt_project.yml vars, profiles.yml)."""
        return {
            "SERVICESCORE_DATA_DIR": str(self.paths().root),
            **self.organisation().dbt_env(),
            "SERVICESCORE_DUCKDB_MEMORY_LIMIT": self.memory_limit,
            "SERVICESCORE_DUCKDB_THREADS": str(self.threads),
        }
