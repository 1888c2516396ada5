"""The working calendar (raw.work_calendar): Chinese public holidays and make-up working days.

Built from the `chinese_calendar` library, one row per calendar day. Days outside the years the
library covers fall back to Monday-Friday working days and are flagged `is_estimated`.
dbt reads the table as a source (staging.stg_work_calendar__days) for business hours and dim_date.
"""

from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar
import duckdb
import pandas as pd

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


def calendar_frame(start: date, end: date) -> pd.DataFrame:
    """One row per day in [start, end] with the columns of raw.work_calendar."""
    if end < start:
        raise ValueError(f"calendar end {end} is before start {start}")
    first_year, last_year = _covered_years()
    holidays = chinese_calendar.holidays
    makeup = chinese_calendar.workdays
    # a loop over days (a few thousand), never over data rows
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    rows = []
    for day in days:
        weekend = day.weekday() >= 5
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


def write_work_calendar(con: duckdb.DuckDBPyConnection, start: date, end: date) -> int:
    """Replace raw.work_calendar with the days [start, end]; returns the number of rows written.

    The replacement is one `create or replace table` statement inside a transaction, so readers
    see either the old or the new calendar.
    """
    frame = calendar_frame(start, end)
    select_list = ", ".join(f"cast({name} as {sql_type}) as {name}" for name, sql_type in COLUMNS)
    con.execute("create schema if not exists raw")
    con.register("work_calendar_frame", frame)
    try:
        con.execute("begin transaction")
        con.execute(
            f"create or replace table {TABLE} as select {select_list} from work_calendar_frame "
            "order by calendar_date"
        )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        con.unregister("work_calendar_frame")
    return len(frame)
