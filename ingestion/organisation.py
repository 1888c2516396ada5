"""The organisation's clock: time zone, working hours and holiday calendar. The one home of these settings.

Everything that cuts days and months or counts business hours reads them from here: the loader (naive landing
times, months touched), the dbt models (passed to every dbt invocation as environment, `dbt_env`), the working
calendar raw.work_calendar (holidays, make-up days and working weekdays), the business-hours macros (working
day start and end), the freshness check, the nightly schedule and the mappings pipeline.

Defaults are today's behaviour: Asia/Shanghai, 09:00-18:00, Monday to Friday, the Chinese calendar with its
make-up working days (调休, from `chinese_calendar`). Set them in the `organisation` section of the operations
settings file (`$SERVICESCORE_OPERATIONS_CONFIG`, else `<data dir>/operations.yaml`); single environment
variables override the file:

    organisation:
      timezone: Europe/Berlin          # SERVICESCORE_TIMEZONE: IANA zone of naive times, days and months
      workday_start: "08:00"           # SERVICESCORE_WORKDAY_START (quote it: YAML reads 8:00 as a number)
      workday_end: "16:00"             # SERVICESCORE_WORKDAY_END
      working_weekdays: [mon, tue, wed, thu, fri]   # SERVICESCORE_WORKING_WEEKDAYS=mon,tue,wed,thu,fri
      holiday_country: DE              # SERVICESCORE_HOLIDAY_COUNTRY: CN (chinese_calendar) or any country of
      holiday_subdivision: null        # the `holidays` package; SERVICESCORE_HOLIDAY_SUBDIVISION (e.g. BY)

The settings are read when a step, schedule tick or check runs, never when the code location loads. Changing
the zone or the working hours of a data folder that already holds a build changes every local time: rebuild
with `--full-refresh`.

`python -m ingestion.organisation CMD ...` runs CMD (e.g. `dbt build`) with the dbt environment of the
settings in force (what the orchestration passes to its own dbt invocations).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from ingestion.paths import DataDir

DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_WORKDAY_START = "09:00"
DEFAULT_WORKDAY_END = "18:00"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_WORKING_WEEKDAYS = WEEKDAYS[:5]
DEFAULT_HOLIDAY_COUNTRY = "CN"
SECTION = "organisation"

# user overrides of single settings
ENV = {
    "timezone": "SERVICESCORE_TIMEZONE",
    "workday_start": "SERVICESCORE_WORKDAY_START",
    "workday_end": "SERVICESCORE_WORKDAY_END",
    "working_weekdays": "SERVICESCORE_WORKING_WEEKDAYS",
    "holiday_country": "SERVICESCORE_HOLIDAY_COUNTRY",
    "holiday_subdivision": "SERVICESCORE_HOLIDAY_SUBDIVISION",
}
# what dbt reads (dbt_project.yml vars, profiles.yml): set by every invocation from the settings in force
DBT_ENV = {
    "timezone": "SERVICESCORE_DBT_TIMEZONE",
    "workday_start": "SERVICESCORE_DBT_WORKDAY_START",
    "workday_end": "SERVICESCORE_DBT_WORKDAY_END",
}

_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


class OrganisationSettingsError(ValueError):
    """A bad organisation setting; the message names the file or variable and the key."""


@dataclass(frozen=True)
class OrganisationSettings:
    timezone: str = DEFAULT_TIMEZONE
    workday_start: str = DEFAULT_WORKDAY_START
    workday_end: str = DEFAULT_WORKDAY_END
    working_weekdays: tuple[str, ...] = DEFAULT_WORKING_WEEKDAYS
    holiday_country: str = DEFAULT_HOLIDAY_COUNTRY
    holiday_subdivision: str | None = None

    @property
    def working_isoweekdays(self) -> frozenset[int]:
        """1 = Monday .. 7 = Sunday."""
        return frozenset(WEEKDAYS.index(d) + 1 for d in self.working_weekdays)

    def dbt_env(self) -> dict[str, str]:
        return {
            DBT_ENV["timezone"]: self.timezone,
            DBT_ENV["workday_start"]: self.workday_start,
            DBT_ENV["workday_end"]: self.workday_end,
        }


def config_path(paths: DataDir | None = None) -> Path:
    """The operations settings file (orchestration.settings.operations reads its other sections)."""
    explicit = os.environ.get("SERVICESCORE_OPERATIONS_CONFIG")
    if explicit:
        return Path(explicit)
    return (paths or DataDir.from_env()).root / "operations.yaml"


def _zone(value: object, where: str) -> str:
    if not isinstance(value, str) or not value or value != value.strip():
        raise OrganisationSettingsError(
            f"{where}: expected an IANA time zone name such as Europe/Berlin, got {value!r}"
        )
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise OrganisationSettingsError(
            f"{where}: unknown time zone {value!r} (use an IANA name such as Asia/Shanghai or Europe/Berlin)"
        ) from exc
    return value


def _hhmm(value: object, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        raise OrganisationSettingsError(
            f'{where}: {value!r} is a number; write the time as a quoted "HH:MM" (YAML reads an unquoted 8:00 as 480)'
        )
    if not isinstance(value, str) or not _HHMM.match(value):
        raise OrganisationSettingsError(f'{where}: expected a time "HH:MM" (00:00-23:59), got {value!r}')
    return value


def _weekdays(value: object, where: str) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise OrganisationSettingsError(
            f"{where}: expected a non-empty list of weekdays from {', '.join(WEEKDAYS)}, got {value!r}"
        )
    days = [str(d).strip().lower() for d in items]
    unknown = [d for d in days if d not in WEEKDAYS]
    if unknown:
        raise OrganisationSettingsError(
            f"{where}: unknown weekday(s) {', '.join(map(repr, unknown))}; use {', '.join(WEEKDAYS)}"
        )
    if len(set(days)) != len(days):
        raise OrganisationSettingsError(f"{where}: a weekday is listed twice in {value!r}")
    return tuple(d for d in WEEKDAYS if d in days)


def _country(value: object, subdivision: object, where: str, where_sub: str) -> tuple[str, str | None]:
    if not isinstance(value, str) or not value.strip():
        raise OrganisationSettingsError(f"{where}: expected a country code such as CN or DE, got {value!r}")
    country = value.strip().upper()
    sub = None if subdivision in (None, "") else str(subdivision).strip().upper()
    if country == DEFAULT_HOLIDAY_COUNTRY:
        if sub is not None:
            raise OrganisationSettingsError(
                f"{where_sub}: the Chinese calendar (chinese_calendar) has no subdivisions, got {sub!r}"
            )
        return country, None
    import holidays

    supported = holidays.list_supported_countries()
    if country not in supported:
        raise OrganisationSettingsError(
            f"{where}: {country!r} is not a country of the holidays package "
            f"{holidays.__version__} (ISO 3166-1 alpha-2 codes such as DE, FR, US)"
        )
    if sub is not None and sub not in supported[country]:
        raise OrganisationSettingsError(
            f"{where_sub}: {sub!r} is not a subdivision of {country} in the holidays "
            f"package; known: {', '.join(supported[country])}"
        )
    return country, sub


def read_operations_file(paths: DataDir | None = None) -> tuple[Path, dict]:
    """(path, top-level mapping) of the operations settings file, {} when there is none: the one reader of the
    file; each section is checked by its owner (this module: `organisation`; orchestration.settings.operations:
    the rest)."""
    path = config_path(paths)
    if not path.exists():
        return path, {}
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise OrganisationSettingsError(f"{path}: expected a mapping at the top level")
    return path, raw


def load_organisation(paths: DataDir | None = None) -> OrganisationSettings:
    """The settings in force: defaults, then the `organisation` section of the operations file, then the
    environment. Raises OrganisationSettingsError naming the file or variable and the key."""
    path, raw = read_operations_file(paths)
    section: dict = {}
    if raw:
        section = raw.get(SECTION) or {}
        if not isinstance(section, dict):
            raise OrganisationSettingsError(f"{path}: {SECTION}: expected a mapping")
        unknown = sorted(set(section) - set(ENV))
        if unknown:
            raise OrganisationSettingsError(
                f"{path}: {SECTION}: unknown key(s) {', '.join(unknown)}; known: {', '.join(ENV)}"
            )
    defaults = OrganisationSettings()
    values: dict[str, object] = {}
    where: dict[str, str] = {}
    for key, env in ENV.items():
        if os.environ.get(env) not in (None, ""):
            values[key], where[key] = os.environ[env], env
        elif key in section:
            values[key], where[key] = section[key], f"{path}: {SECTION}.{key}"
        else:
            values[key], where[key] = getattr(defaults, key), f"default {key}"
    start = _hhmm(values["workday_start"], where["workday_start"])
    end = _hhmm(values["workday_end"], where["workday_end"])
    if end <= start:
        raise OrganisationSettingsError(
            f"{where['workday_end']}: the working day must end after it starts ({start} - {end})"
        )
    country, sub = _country(
        values["holiday_country"], values["holiday_subdivision"], where["holiday_country"], where["holiday_subdivision"]
    )
    return OrganisationSettings(
        timezone=_zone(values["timezone"], where["timezone"]),
        workday_start=start,
        workday_end=end,
        working_weekdays=_weekdays(values["working_weekdays"], where["working_weekdays"]),
        holiday_country=country,
        holiday_subdivision=sub,
    )


def organisation_timezone(paths: DataDir | None = None) -> str:
    return load_organisation(paths).timezone


def main(argv: list[str] | None = None) -> int:
    """Run a command with the dbt environment of the settings in force (e.g. `dbt build` by hand)."""
    argv = sys.argv[1:] if argv is None else argv
    settings = load_organisation()
    if not argv:
        for name, value in settings.dbt_env().items():
            print(f"{name}={value}")
        return 0
    env = {**os.environ, **settings.dbt_env()}
    os.execvpe(argv[0], argv, env)
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
