"""The working calendar (raw.work_calendar): public holidays, make-up working days and working weekdays.

One row per calendar day, for the organisation's holiday country and working weekdays (ingestion.organisation):
CN (the default) from the `chinese_calendar` library, with its make-up working days (调休); any other country
from the maintained `holidays` package (public holidays; it has no make-up days). With `chinese_calendar`, days
outside the years the library covers fall back to the working weekdays and are flagged `is_estimated`.
dbt reads the table as a source (staging.stg_work_calendar__days) for business hours and dim_date.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import chinese_calendar
import duckdb
import pandas as pd

from ingestion.organisation import DEFAULT_HOLIDAY_COUNTRY, OrganisationSettings, load_organisation
from ingestion.paths import DataDir

TABLE = "raw.work_calendar"

COLUMNS: tuple[tuple[str, str], ...] = (
    ("calendar_date", "DATE"),
    ("is_workday", "BOOLEAN"),
    ("is_holiday", "BOOLEAN"),
    ("holiday_name", "VARCHAR"),
    ("is_makeup_workday", "BOOLEAN"),
    ("is_estimated", "BOOLEAN"),
)


def _covered_years() -> tuple[int, int]:
    known = list(chinese_calendar.holidays) + list(chinese_calendar.workdays)
    return min(known).year, max(known).year


def _holiday_tables(org: OrganisationSettings, start: date, end: date) -> tuple[dict, dict, int, int]:
    """(holidays by date, make-up working days by date, first and last year known) of the organisation."""
    if org.holiday_country == DEFAULT_HOLIDAY_COUNTRY:
        first_year, last_year = _covered_years()
        return chinese_calendar.holidays, chinese_calendar.workdays, first_year, last_year
    import holidays as holidays_lib

    # the package computes every year from its rules: no year is estimated
    known = holidays_lib.country_holidays(
        org.holiday_country, subdiv=org.holiday_subdivision, years=range(start.year, end.year + 1), language="en_US"
    )
    return dict(known.items()), {}, start.year, end.year


def calendar_frame(start: date, end: date, organisation: OrganisationSettings | None = None) -> pd.DataFrame:
    """One row per day in [start, end] with the columns of raw.work_calendar, for the organisation's holiday
    country and working weekdays (default: the settings in force, ingestion.organisation)."""
    if end < start:
        raise ValueError(f"calendar end {end} is before start {start}")
    org = organisation or load_organisation()
    holidays, makeup, first_year, last_year = _holiday_tables(org, start, end)
    working = org.working_isoweekdays
    # a loop over days (a few thousand), never over data rows
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    rows = []
    for day in days:
        weekend = day.isoweekday() not in working
        if first_year <= day.year <= last_year:
            is_holiday = day in holidays
            is_makeup = day in makeup
            is_workday = is_makeup or (not weekend and not is_holiday)
            name = holidays.get(day) or makeup.get(day)
            rows.append((day, is_workday, is_holiday, name, is_makeup, False))
        else:
            rows.append((day, not weekend, False, None, False, True))
    frame = pd.DataFrame.from_records(rows, columns=[c for c, _ in COLUMNS])
    frame["calendar_date"] = pd.to_datetime(frame["calendar_date"]).dt.date
    return frame


def _settings_of(con: duckdb.DuckDBPyConnection) -> OrganisationSettings:
    """The settings of the data folder whose warehouse `con` has open (an in-memory database: the environment's)."""
    row = con.execute("select path from duckdb_databases() where database_name = current_database()").fetchone()
    return load_organisation(DataDir(Path(row[0]).resolve().parent) if row and row[0] else None)


def write_work_calendar(
    con: duckdb.DuckDBPyConnection, start: date, end: date, organisation: OrganisationSettings | None = None
) -> int:
    """Replace raw.work_calendar with the days [start, end]; returns the number of rows written.

    The replacement is one `create or replace table` statement inside a transaction, so readers
    see either the old or the new calendar.
    """
    frame = calendar_frame(start, end, organisation or _settings_of(con))
    select_list = ", ".join(f"cast({name} as {sql_type}) as {name}" for name, sql_type in COLUMNS)
    con.execute("create schema if not exists raw")
    con.register("work_calendar_frame", frame)
    try:
        con.execute("begin transaction")
        con.execute(
            f"create or replace table {TABLE} as select {select_list} from work_calendar_frame order by calendar_date"
        )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        con.unregister("work_calendar_frame")
    return len(frame)
