"""The organisation's clock as a setting (ingestion/organisation.py): defaults, the operations file, environment
overrides, messages naming the key; the working calendar of another country and other weekdays; the nightly tick
in another zone. The whole pipeline in a second zone: tests/test_pipeline_clock.py."""

from __future__ import annotations

import datetime as dt
from datetime import date

import duckdb
import pytest

from ingestion.organisation import (
    OrganisationSettings,
    OrganisationSettingsError,
    load_organisation,
)
from ingestion.paths import DataDir
from ingestion.work_calendar import write_work_calendar

BERLIN = """\
closing_day: 5
organisation:
  timezone: Europe/Berlin
  workday_start: "08:00"
  workday_end: "16:00"
  holiday_country: de
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch):
    for name in (
        "SERVICESCORE_TIMEZONE",
        "SERVICESCORE_WORKDAY_START",
        "SERVICESCORE_WORKDAY_END",
        "SERVICESCORE_WORKING_WEEKDAYS",
        "SERVICESCORE_HOLIDAY_COUNTRY",
        "SERVICESCORE_HOLIDAY_SUBDIVISION",
        "SERVICESCORE_OPERATIONS_CONFIG",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_todays_clock(data_dir: DataDir):
    org = load_organisation(data_dir)
    assert org == OrganisationSettings(
        "Asia/Shanghai", "09:00", "18:00", ("mon", "tue", "wed", "thu", "fri"), "CN", None
    )
    assert org.dbt_env() == {
        "SERVICESCORE_DBT_TIMEZONE": "Asia/Shanghai",
        "SERVICESCORE_DBT_WORKDAY_START": "09:00",
        "SERVICESCORE_DBT_WORKDAY_END": "18:00",
    }


def test_operations_file_then_environment(data_dir: DataDir, monkeypatch: pytest.MonkeyPatch):
    (data_dir.root / "operations.yaml").write_text(BERLIN)
    assert load_organisation(data_dir) == OrganisationSettings(
        "Europe/Berlin", "08:00", "16:00", ("mon", "tue", "wed", "thu", "fri"), "DE", None
    )
    monkeypatch.setenv("SERVICESCORE_WORKING_WEEKDAYS", "sat,mon,tue")
    monkeypatch.setenv("SERVICESCORE_HOLIDAY_SUBDIVISION", "by")
    org = load_organisation(data_dir)
    assert (org.working_weekdays, org.working_isoweekdays, org.holiday_subdivision) == (
        ("mon", "tue", "sat"),
        frozenset({1, 2, 6}),
        "BY",
    )


@pytest.mark.parametrize(
    ("section", "env", "message"),
    [
        (
            "timezone: Mars/Olympus",
            {},
            "operations.yaml: organisation.timezone: unknown time zone 'Mars/Olympus' "
            "(use an IANA name such as Asia/Shanghai or Europe/Berlin)",
        ),
        (
            "workday_start: 8:00",
            {},
            "operations.yaml: organisation.workday_start: 480 is a number; write the time as a "
            'quoted "HH:MM" (YAML reads an unquoted 8:00 as 480)',
        ),
        (
            "workday_end: '25:00'",
            {},
            "operations.yaml: organisation.workday_end: expected a time \"HH:MM\" (00:00-23:59), got '25:00'",
        ),
        ("workday_start: '18:00'", {}, "default workday_end: the working day must end after it starts (18:00 - 18:00)"),
        (
            "working_weekdays: [mon, funday]",
            {},
            "operations.yaml: organisation.working_weekdays: unknown weekday(s) "
            "'funday'; use mon, tue, wed, thu, fri, sat, sun",
        ),
        ("working_weekdays: []", {}, "operations.yaml: organisation.working_weekdays: expected a non-empty list"),
        (
            "holiday_country: XX",
            {},
            "operations.yaml: organisation.holiday_country: 'XX' is not a country of the holidays package",
        ),
        (
            "holiday_subdivision: BY",
            {},
            "operations.yaml: organisation.holiday_subdivision: the Chinese calendar "
            "(chinese_calendar) has no subdivisions, got 'BY'",
        ),
        ("zone: UTC", {}, "operations.yaml: organisation: unknown key(s) zone; known: timezone, workday_start"),
        (
            "timezone: UTC",
            {"SERVICESCORE_TIMEZONE": "Nowhere/City"},
            "SERVICESCORE_TIMEZONE: unknown time zone 'Nowhere/City'",
        ),
        (
            "holiday_country: DE",
            {"SERVICESCORE_HOLIDAY_SUBDIVISION": "QQ"},
            "SERVICESCORE_HOLIDAY_SUBDIVISION: 'QQ' is not a subdivision of DE in the holidays package; known: BB, BE",
        ),
    ],
)
def test_bad_settings_name_the_file_and_key(data_dir: DataDir, monkeypatch: pytest.MonkeyPatch, section, env, message):
    (data_dir.root / "operations.yaml").write_text(f"organisation:\n  {section}\n")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(OrganisationSettingsError) as exc:
        load_organisation(data_dir)
    text = str(exc.value).replace(str(data_dir.root) + "/", "")
    assert text.startswith(message), text


def _days(con, first: str, last: str):
    return con.execute(
        "select calendar_date, is_workday, is_holiday, holiday_name, is_makeup_workday, "
        "is_estimated from raw.work_calendar where calendar_date between ? and ? order by 1",
        [first, last],
    ).fetchall()


def test_german_calendar_from_the_holidays_package():
    con = duckdb.connect()
    de = OrganisationSettings("Europe/Berlin", "08:00", "16:00", holiday_country="DE")
    assert write_work_calendar(con, date(2026, 5, 22), date(2026, 5, 26), de) == 5
    d = date.fromisoformat
    assert _days(con, "2026-05-22", "2026-05-26") == [
        (d("2026-05-22"), True, False, None, False, False),  # Friday
        (d("2026-05-23"), False, False, None, False, False),
        (d("2026-05-24"), False, False, None, False, False),
        (d("2026-05-25"), False, True, "Pentecost Monday", False, False),  # Pfingstmontag, a national holiday
        (d("2026-05-26"), True, False, None, False, False),
    ]
    # Corpus Christi (Thu 4 June 2026) is a holiday in Bavaria, not nationally
    write_work_calendar(con, date(2026, 6, 4), date(2026, 6, 4), de)
    assert _days(con, "2026-06-04", "2026-06-04")[0][1:3] == (True, False)
    write_work_calendar(
        con,
        date(2026, 6, 4),
        date(2026, 6, 4),
        OrganisationSettings("Europe/Berlin", holiday_country="DE", holiday_subdivision="BY"),
    )
    assert _days(con, "2026-06-04", "2026-06-04")[0][1:4] == (False, True, "Corpus Christi")


def test_working_weekdays_and_chinese_makeup_days():
    con = duckdb.connect()
    # Sunday to Thursday: Friday 2026-10-16 and Saturday 17 are the weekend, Sunday 18 is worked
    week = OrganisationSettings(working_weekdays=("sun", "mon", "tue", "wed", "thu"))
    write_work_calendar(con, date(2026, 10, 9), date(2026, 10, 18), week)
    workdays = [r[0].isoformat() for r in _days(con, "2026-10-09", "2026-10-18") if r[1]]
    # the Chinese make-up Saturday 2026-10-10 is worked whatever the weekdays; Friday 9 is not a working weekday
    assert workdays == [
        "2026-10-10",
        "2026-10-11",
        "2026-10-12",
        "2026-10-13",
        "2026-10-14",
        "2026-10-15",
        "2026-10-18",
    ]


def test_calendar_follows_the_warehouse_folders_settings(data_dir: DataDir):
    """The work_calendar asset passes no settings: the warehouse's data folder says which calendar."""
    (data_dir.root / "operations.yaml").write_text(BERLIN)
    with duckdb.connect(str(data_dir.warehouse)) as con:
        write_work_calendar(con, date(2026, 10, 1), date(2026, 10, 3))
        # 1 October is a Chinese holiday, not a German one; 3 October is German Unity Day (a Saturday)
        assert [r[1:4] for r in _days(con, "2026-10-01", "2026-10-03")] == [
            (True, False, None),
            (True, False, None),
            (False, True, "German Unity Day"),
        ]


def test_loader_cuts_months_in_the_folders_zone(data_dir: DataDir):
    """A naive landing time is local time of the data folder's zone: 2026-05-31 23:30 in Berlin is 21:30 UTC."""
    from ingestion.warehouse import connect

    (data_dir.root / "operations.yaml").write_text(BERLIN)
    with connect(data_dir.warehouse) as con:
        assert con.execute(
            "select current_setting('TimeZone'), "
            "cast(cast('2026-05-31 23:30:00' as timestamptz) at time zone 'UTC' as varchar)"
        ).fetchone() == ("Europe/Berlin", "2026-05-31 21:30:00")


@pytest.mark.parametrize(
    ("tick", "zone", "day"),
    [
        ("2026-07-01T18:00+00:00", "Asia/Shanghai", "2026-07-02"),
        ("2026-07-01T18:15+00:00", "Asia/Shanghai", None),
        ("2026-07-02T00:00+00:00", "Europe/Berlin", "2026-07-02"),  # 02:00 CEST
        ("2026-07-01T18:00+00:00", "Europe/Berlin", None),
        ("2026-03-29T01:00+00:00", "Europe/Berlin", "2026-03-29"),  # 02:00 does not exist: 03:00 CEST, once
        ("2026-10-25T00:00+00:00", "Europe/Berlin", "2026-10-25"),  # the first 02:00 (CEST) ...
        ("2026-10-25T01:00+00:00", "Europe/Berlin", None),  # ... not the second (CET)
        ("2026-07-01T20:30+00:00", "Asia/Kolkata", "2026-07-02"),  # UTC+05:30
    ],
)
def test_nightly_tick_starts_at_0200_in_the_organisations_zone(tick, zone, day):
    from orchestration.schedules import NIGHTLY_CRON, nightly_ingest, nightly_local_day

    assert (nightly_ingest.cron_schedule, nightly_ingest.execution_timezone) == (NIGHTLY_CRON, "UTC")
    got = nightly_local_day(dt.datetime.fromisoformat(tick), zone)
    assert got == (date.fromisoformat(day) if day else None)
