"""The hand-made data set (tests/fixtures/handmade) in a second organisation clock: Europe/Berlin, German public
holidays (the `holidays` package), a 08:00-16:00 working day — set in the data folder's operations.yaml and
read by the loader, the working calendar, the dbt models and the month windows (one pipeline run).

Two tickets are added for T3 with explicit offsets (Shanghai time, +08:00), on Sunday 31 May / Monday 1 June 2026:
  KB1 created 2026-05-31 23:30+08:00 = 17:30 in Berlin, first response 00:30+08:00 (18:30 Berlin), resolved
      2026-06-01 03:00+08:00 = 21:00 on 31 May in Berlin. Shanghai: created in May, resolved in June.
      Berlin: created and resolved in May, 3.5 h, 0 business hours (a Sunday).
  KB2 created 2026-06-01 02:00+08:00 = 20:00 on 31 May in Berlin (June in Shanghai, May in Berlin), first
      response 02:30+08:00, resolved 2026-06-01 16:00+08:00 = 10:00 on Monday 1 June in Berlin: 14 h,
      2 business hours (08:00-10:00).
The fixture's naive times are Berlin wall time. K4 (T1) opened Wed 20 May 10:00 and resolved Mon 1 June 10:00:
288 calendar hours; business hours on the 08:00-16:00 day: 6 (20 May from 10:00) + 16 (21-22) + 0 (25 May,
Whit Monday, a German holiday) + 32 (26-29) + 2 (1 June) = 56 — in the default clock (Shanghai, Chinese calendar,
09:00-18:00) the same ticket has 72 (tests/test_pipeline.py). K8 (T1, 3 June 09:00-21:00): 7 business hours.
"""

from __future__ import annotations

import pytest

from ingestion.paths import DataDir
from tests.cli_runs import FIXTURE, copy_fixture_landing, pipeline_in_process, q

pytestmark = pytest.mark.slow

HEADER = (FIXTURE / "tickets" / "2026-05-31.csv").read_text().splitlines()[0]
EXTRA = [
    "KB1,2026-05-31 23:30:00+08:00,2026-06-01 00:30:00+08:00,2026-06-01 03:00:00+08:00,,"
    "2026-06-01 03:00:00+08:00,resolved,repair,P3,phone,T3,C2,P2,1,true,0",
    "KB2,2026-06-01 02:00:00+08:00,2026-06-01 02:30:00+08:00,2026-06-01 16:00:00+08:00,,"
    "2026-06-01 16:00:00+08:00,resolved,repair,P3,phone,T3,C2,P2,1,true,0",
]
BERLIN = """\
organisation:
  timezone: Europe/Berlin
  workday_start: "08:00"
  workday_end: "16:00"
  holiday_country: DE
"""


# the clock comes from the data folder's operations.yaml alone, not from this process's environment
CLOCK_ENV = (
    "SERVICESCORE_TIMEZONE",
    "SERVICESCORE_WORKDAY_START",
    "SERVICESCORE_WORKDAY_END",
    "SERVICESCORE_WORKING_WEEKDAYS",
    "SERVICESCORE_HOLIDAY_COUNTRY",
    "SERVICESCORE_OPERATIONS_CONFIG",
)


def write_berlin(paths: DataDir) -> None:
    copy_fixture_landing(paths)
    (paths.landing / "tickets" / "2026-06-01.csv").write_text(HEADER + "\n" + "\n".join(EXTRA) + "\n")
    (paths.root / "operations.yaml").write_text(BERLIN)


@pytest.fixture(scope="module")
def berlin(tmp_path_factory: pytest.TempPathFactory):
    with pipeline_in_process(tmp_path_factory.mktemp("berlin") / "data", write_berlin, CLOCK_ENV) as run:
        yield run


def test_run_succeeds_in_berlin(berlin):
    paths, _, text, ok = berlin
    assert ok, text
    assert q(paths.warehouse, "select count(*) from raw.tickets") == [(12,)]  # 11 fixture rows - KX + KB1, KB2
    assert q(paths.warehouse, "select count(*) from raw.rejected_rows") == [(2,)]  # KX and R9, as in Shanghai


def test_naive_landing_times_are_berlin_wall_time(berlin):
    paths = berlin[0]
    # K1 created 2026-05-11 09:00 (naive) = 07:00 UTC in summer time (01:00 UTC in Shanghai)
    assert q(
        paths.warehouse,
        "select strftime(created_at at time zone 'UTC', '%Y-%m-%d %H:%M') from raw.tickets where ticket_id = 'K1'",
    ) == [("2026-05-11 07:00",)]


def test_month_cuts_in_berlin(berlin):
    paths = berlin[0]
    rows = q(
        paths.warehouse,
        "select ticket_id, strftime(created_at, '%Y-%m-%d %H:%M'), created_date, resolved_date, "
        "handling_hours, handling_business_hours from marts.fct_service_tickets "
        "where ticket_id in ('KB1', 'KB2') order by 1",
    )
    assert [(r[0], r[1], str(r[2]), str(r[3]), r[4], r[5]) for r in rows] == [
        ("KB1", "2026-05-31 17:30", "2026-05-31", "2026-05-31", 3.5, 0.0),  # Shanghai: resolved 2026-06-01
        ("KB2", "2026-05-31 20:00", "2026-05-31", "2026-06-01", 14.0, 2.0),  # Shanghai: created 2026-06-01
    ]
    # T3 in May: KB1 resolved (3.5 h); first responses of KB1 (1 h) and KB2 (0.5 h). In Shanghai T3 has no May
    # resolution and one May first response (KB1).
    assert q(
        paths.warehouse,
        "select avg_handling_time_hours, avg_handling_time_n, first_response_time_hours, "
        "first_response_time_n from marts.kpi_technician_monthly "
        "where technician_id = 'T3' and period_label = '2026-05'",
    ) == [(3.5, 1, 0.75, 2)]
    # June: K9 (6 h) and KB2 (14 h)
    assert q(
        paths.warehouse,
        "select avg_handling_time_hours, avg_handling_time_n from marts.kpi_technician_monthly "
        "where technician_id = 'T3' and period_label = '2026-06'",
    ) == [(10.0, 2)]


def test_business_hours_on_the_german_calendar_and_working_day(berlin):
    paths = berlin[0]
    assert q(
        paths.warehouse,
        "select is_workday, is_holiday, holiday_name from raw.work_calendar where calendar_date = '2026-05-25'",
    ) == [(False, True, "Pentecost Monday")]
    assert q(
        paths.warehouse,
        "select ticket_id, handling_hours, handling_business_hours "
        "from marts.fct_service_tickets where ticket_id in ('K4', 'K8') order by 1",
    ) == [("K4", 288.0, 56.0), ("K8", 12.0, 7.0)]
    assert q(
        paths.warehouse,
        "select avg_handling_time_hours, avg_handling_time_business_hours, avg_handling_time_n "
        "from marts.kpi_technician_monthly where technician_id = 'T1' and period_label = '2026-06'",
    ) == [(150.0, (56 + 7) / 2, 2)]
    # the working day is 8 h: a full working day in int_work_calendar has 28,800 working seconds
    assert q(
        paths.warehouse, "select work_seconds from intermediate.int_work_calendar where calendar_date = '2026-05-26'"
    ) == [(28800,)]
