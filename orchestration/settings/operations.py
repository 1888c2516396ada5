"""Operational settings of the nightly schedule, the landing sensor and the freshness checks.

Defaults need no configuration. An optional YAML file, `$SERVICESCORE_OPERATIONS_CONFIG` or else
`<data dir>/operations.yaml`, overrides them; single environment variables override the file:

    closing_day: 5                  # SERVICESCORE_CLOSING_DAY: the previous month is republished until this day
    landing_settle_seconds: 10      # SERVICESCORE_LANDING_SETTLE_SECONDS: a file younger than this may still be written
    max_rejected_share: 0.5         # SERVICESCORE_MAX_REJECTED_SHARE: a feed with more rows rejected fails the run
    deployment: development         # SERVICESCORE_DEPLOYMENT: production refuses to run without a configured
                                    # pseudonym key (ingestion/privacy.py, docs/privacy.md)
    dagster_sqlite_synchronous: off # SERVICESCORE_DAGSTER_SQLITE_SYNCHRONOUS: off / normal / full (default: off,
                                    # full in production): fsync of Dagster's local run history
                                    # (orchestration/run_history_durability.py)
    freshness:                      # per feed: lag of the newest record before the check warns / fails
      tickets: {warn_after_hours: 36, fail_after_hours: 72}
      supervisor_reviews: {warn_after_hours: 1080, fail_after_hours: 1800}
    organisation: {...}             # the organisation's clock: read by ingestion.organisation, not here

Settings are read when a schedule, sensor or check runs, never when the code location loads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ingestion.acceptance import DEFAULT_MAX_REJECTED_SHARE
from ingestion.organisation import config_path as organisation_config_path
from ingestion.organisation import read_operations_file
from ingestion.paths import DataDir

DEFAULT_CLOSING_DAY = 5
DEPLOYMENTS = ("development", "production")
SQLITE_SYNCHRONOUS = ("off", "normal", "full")
DEFAULT_SETTLE_SECONDS = 10


@dataclass(frozen=True)
class FreshnessLag:
    warn_after_hours: float
    fail_after_hours: float

    def __post_init__(self) -> None:
        if not 0 < self.warn_after_hours <= self.fail_after_hours:
            raise ValueError(
                f"freshness lags must satisfy 0 < warn ({self.warn_after_hours} h) <= fail ({self.fail_after_hours} h)"
            )


# daily event feeds arrive every night for the previous day: the newest record is at most ~26 h old when all
# is well. Supervisor reviews are monthly (period = first day of the month): newest is up to ~2 months old.
DEFAULT_FRESHNESS = {
    "tickets": FreshnessLag(36, 72),
    "complaints": FreshnessLag(72, 168),
    "surveys": FreshnessLag(48, 120),
    "supervisor_reviews": FreshnessLag(24 * 65, 24 * 95),
}


@dataclass(frozen=True)
class OperationsSettings:
    closing_day: int = DEFAULT_CLOSING_DAY
    landing_settle_seconds: float = DEFAULT_SETTLE_SECONDS
    max_rejected_share: float = DEFAULT_MAX_REJECTED_SHARE
    freshness: dict[str, FreshnessLag] = field(default_factory=lambda: dict(DEFAULT_FRESHNESS))
    deployment: str = DEPLOYMENTS[0]
    # SQLite `synchronous` of Dagster's local run history (orchestration/run_history_durability.py)
    dagster_sqlite_synchronous: str = "off"

    @property
    def production(self) -> bool:
        return self.deployment == "production"


def config_path(paths: DataDir | None = None) -> Path:
    # one definition of where the file is: the organisation's clock (ingestion.organisation) lives in it too
    return organisation_config_path(paths)


def load_settings(paths: DataDir | None = None) -> OperationsSettings:
    """The settings in force: defaults, then the YAML file, then environment variables."""
    path, raw = read_operations_file(paths)
    closing_day = int(os.environ.get("SERVICESCORE_CLOSING_DAY", raw.get("closing_day", DEFAULT_CLOSING_DAY)))
    if not 1 <= closing_day <= 28:
        raise ValueError(
            f"closing_day must be between 1 and 28, got {closing_day} ({path} or SERVICESCORE_CLOSING_DAY)"
        )
    settle = float(
        os.environ.get("SERVICESCORE_LANDING_SETTLE_SECONDS", raw.get("landing_settle_seconds", DEFAULT_SETTLE_SECONDS))
    )
    max_rejected = float(
        os.environ.get("SERVICESCORE_MAX_REJECTED_SHARE", raw.get("max_rejected_share", DEFAULT_MAX_REJECTED_SHARE))
    )
    if not 0 <= max_rejected < 1:
        raise ValueError(
            f"max_rejected_share must be at least 0 and below 1, got {max_rejected} "
            f"({path} or SERVICESCORE_MAX_REJECTED_SHARE)"
        )
    deployment = str(os.environ.get("SERVICESCORE_DEPLOYMENT", raw.get("deployment", DEPLOYMENTS[0])))
    if deployment not in DEPLOYMENTS:
        raise ValueError(
            f"deployment must be one of {', '.join(DEPLOYMENTS)}, got {deployment!r} "
            f"({path} or SERVICESCORE_DEPLOYMENT)"
        )
    synchronous = str(
        os.environ.get(
            "SERVICESCORE_DAGSTER_SQLITE_SYNCHRONOUS",
            raw.get("dagster_sqlite_synchronous", "full" if deployment == "production" else "off"),
        )
    )
    if synchronous not in SQLITE_SYNCHRONOUS:
        raise ValueError(
            f"dagster_sqlite_synchronous must be one of {', '.join(SQLITE_SYNCHRONOUS)}, got {synchronous!r} "
            f"({path} or SERVICESCORE_DAGSTER_SQLITE_SYNCHRONOUS)"
        )
    freshness = dict(DEFAULT_FRESHNESS)
    for feed, lag in (raw.get("freshness") or {}).items():
        if feed not in DEFAULT_FRESHNESS:
            raise ValueError(f"{path}: freshness for unknown feed {feed!r}; known: {', '.join(DEFAULT_FRESHNESS)}")
        base = freshness[feed]
        freshness[feed] = FreshnessLag(
            float(lag.get("warn_after_hours", base.warn_after_hours)),
            float(lag.get("fail_after_hours", base.fail_after_hours)),
        )
    return OperationsSettings(
        closing_day=closing_day,
        landing_settle_seconds=settle,
        max_rejected_share=max_rejected,
        freshness=freshness,
        deployment=deployment,
        dagster_sqlite_synchronous=synchronous,
    )
