from datetime import date

import duckdb
import pytest

from ingestion.work_calendar import write_work_calendar


@pytest.fixture()
def con():
    connection = duckdb.connect(":memory:")
    yield connection
    connection.close()


def _row(con, day: str):
    return con.execute(
        "select is_workday, is_holiday, holiday_name, is_makeup_workday, is_estimated "
        "from raw.work_calendar where calendar_date = ?",
        [day],
    ).fetchone()


def test_national_day_2026_and_makeup_saturday(con):
    assert write_work_calendar(con, date(2026, 9, 28), date(2026, 10, 12)) == 15
    for day in range(1, 8):
        assert _row(con, f"2026-10-0{day}") == (False, True, "National Day", False, False)
    # 2026-10-10 is a Saturday worked in lieu of the holiday
    assert _row(con, "2026-10-10") == (True, False, "National Day", True, False)
    assert _row(con, "2026-10-11") == (False, False, None, False, False)  # ordinary Sunday
    assert _row(con, "2026-10-12") == (True, False, None, False, False)  # ordinary Monday
    workdays = con.execute("select count(*) from raw.work_calendar where is_workday").fetchone()[0]
    # 28,29,30 Sep + 8,9,10,12 Oct
    assert workdays == 7


def test_column_types(con):
    write_work_calendar(con, date(2026, 1, 1), date(2026, 1, 3))
    types = dict(
        con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'raw' and table_name = 'work_calendar'"
        ).fetchall()
    )
    assert types == {
        "calendar_date": "DATE",
        "is_workday": "BOOLEAN",
        "is_holiday": "BOOLEAN",
        "holiday_name": "VARCHAR",
        "is_makeup_workday": "BOOLEAN",
        "is_estimated": "BOOLEAN",
    }


def test_outside_library_range_falls_back_to_weekdays(con):
    write_work_calendar(con, date(2027, 1, 1), date(2027, 1, 4))
    # 2027-01-01 is a Friday: estimated as a working day, not a known holiday
    assert _row(con, "2027-01-01") == (True, False, None, False, True)
    assert _row(con, "2027-01-02") == (False, False, None, False, True)
    assert _row(con, "2027-01-04") == (True, False, None, False, True)


def test_replaces_the_table(con):
    write_work_calendar(con, date(2026, 1, 1), date(2026, 12, 31))
    assert write_work_calendar(con, date(2026, 5, 1), date(2026, 5, 5)) == 5
    assert con.execute("select count(*), min(calendar_date) from raw.work_calendar").fetchone() == (
        5,
        date(2026, 5, 1),
    )


def test_end_before_start_is_an_error(con):
    with pytest.raises(ValueError, match="before start"):
        write_work_calendar(con, date(2026, 5, 5), date(2026, 5, 1))
