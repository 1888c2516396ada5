"""Partitions and the windows they hand to dbt: small pure functions that tests call directly.

The appraisal is built and published by month. Feeds are not partitioned: a load reads every landing file whose
content it has not loaded yet, whatever the date in its name (loads are idempotent by content hash, so a day
partition added nothing but one Dagster materialization per day: 3,000+ for an export of nine years, and files
dated before the first partition were never read). The month partitions start with the earliest date a record
may carry (ingestion.contracts.PLAUSIBLE_FROM: older timestamps are rejected as implausible), so every month a
loaded record can count for can be published.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from dagster import MonthlyPartitionsDefinition

PARTITIONS_START = "1990-01-01"
# Keys are the organisation's local days and months (the loader and dbt cut them in its zone, ingestion.organisation).
# The definitions are built at import, before any setting is read, so they use the earliest zone on earth
# (UTC+14): a key exists once its day has begun in any zone; keys are labels, their windows are never instants.
TIMEZONE = "Etc/GMT-14"

appraisal_months = MonthlyPartitionsDefinition(start_date=PARTITIONS_START, timezone=TIMEZONE, end_offset=1)


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def previous_month(day: dt.date) -> dt.date:
    return (day.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


def dbt_vars_for_months(first_month: dt.date, last_month: dt.date) -> dict[str, str]:
    """The dbt vars of a run over a month range: models rebuild the months [period_from, period_to)."""
    if last_month < first_month:
        raise ValueError(f"empty month range {first_month} .. {last_month}")
    return {
        "period_from": month_start(first_month).isoformat(),
        "period_to": next_month(month_start(last_month)).isoformat(),
    }


def dbt_vars_for_window(start: dt.datetime, end: dt.datetime) -> dict[str, str]:
    """The same from a Dagster partition time window [start, end) of monthly partitions."""
    return {"period_from": start.date().isoformat(), "period_to": end.date().isoformat()}


def months_to_publish(today: dt.date, closing_day: int, touched: Iterable[dt.date] = ()) -> tuple[dt.date, dt.date]:
    """The month range of a nightly run: the current month, the previous month until its closing day,
    and back to the oldest month that new (late) data touched, which is then republished as a restatement."""
    first = month_start(today)
    if today.day <= closing_day:
        first = previous_month(first)
    for day in touched:
        first = min(first, month_start(day))
    return first, month_start(today)


def is_closed(month: dt.date, today: dt.date, closing_day: int) -> bool:
    """A month is closed once the closing day of the following month has passed."""
    close = next_month(month_start(month)).replace(day=closing_day)
    return today > close
