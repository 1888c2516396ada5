"""Issue 16, trust on real exports: late references recovered, any date loaded, runs that are not OK say so.

Hand-made files written by each test; every expected count is worked out below the data.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from ingestion.loader import load_feed
from ingestion.paths import DataDir

ROSTER_HEADER = ("technician_id,name,team_id,team_name,region,level,hire_date,leave_date,manager_id,valid_from,"
                 "updated_at\n")
T1 = "T1,张三,TA,华东维修一组,华东,senior,2025-01-01,,M1,2025-01-01,2026-05-01 00:00:00\n"
T9 = "T9,王五,TA,华东维修一组,华东,junior,2025-01-01,,M1,2025-01-01,2026-05-02 00:00:00\n"
TICKET_HEADER = ("ticket_id,created_at,first_response_at,resolved_at,closed_at,updated_at,status,service_type,"
                 "priority,channel,technician_id,customer_id,product_id,onsite_visits,first_time_fix,reopened_count\n")


def ticket(tid: str, tech: str, day: str = "2026-05-11", service_type: str = "repair") -> str:
    return (f"{tid},{day} 09:00:00,{day} 09:30:00,{day} 13:00:00,,{day} 13:00:00,resolved,{service_type},P2,"
            f"phone,{tech},C1,P1,1,true,0\n")


def write(paths: DataDir, feed: str, name: str, text: str) -> Path:
    f = paths.landing / feed / name
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(text, encoding="utf-8")
    return f


def q(paths: DataDir, sql: str) -> list[tuple]:
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def load(paths: DataDir, feed: str, run_id: str):
    return load_feed(paths.warehouse, paths.landing, feed, run_id, paths.work)


# --- observation 2: rows rejected for an unknown reference come back when the reference arrives ---------------

def test_rows_rejected_for_an_unknown_technician_are_loaded_once_the_roster_brings_them(data_dir):
    write(data_dir, "technicians", "2026-05-01.csv", ROSTER_HEADER + T1)
    # K1 by T1 loads; K2 and K3 by T9 (not in the roster yet) are rejected; K4 by T9 also has a bad service type,
    # so it stays rejected whatever the roster says
    write(data_dir, "tickets", "2026-05-31.csv", TICKET_HEADER + ticket("K1", "T1") + ticket("K2", "T9")
          + ticket("K3", "T9", "2026-04-20") + ticket("K4", "T9", service_type="teleport"))
    load(data_dir, "technicians", "r1")
    first = load(data_dir, "tickets", "r1")
    assert (first.rows_loaded, first.rows_rejected, first.rows_recovered) == (1, 3, 0)
    assert q(data_dir, "select row_number, rule from raw.rejected_rows order by row_number") == [
        (2, "reference:technician_id"), (3, "reference:technician_id"), (4, "enum:service_type")]

    # the roster is fixed; the ticket file is unchanged (same hash: skipped), its rows are re-evaluated
    write(data_dir, "technicians", "2026-05-02.csv", ROSTER_HEADER + T1 + T9)
    load(data_dir, "technicians", "r2")
    second = load(data_dir, "tickets", "r2")
    assert (second.files_read, second.files_skipped) == (0, 1)
    assert (second.rows_loaded, second.rows_rejected, second.rows_recovered) == (0, 0, 2)
    # K2 counts for May, K3 for April (created and resolved in April)
    assert second.months_touched == ["2026-04-01", "2026-05-01"]
    assert q(data_dir, "select ticket_id, technician_id, _row_number, _run_id, _source_file from raw.tickets "
                       "order by ticket_id") == [
        ("K1", "T1", 1, "r1", "tickets/2026-05-31.csv"), ("K2", "T9", 2, "r2", "tickets/2026-05-31.csv"),
        ("K3", "T9", 3, "r2", "tickets/2026-05-31.csv")]
    assert q(data_dir, "select row_number, rule, recovered_run_id, recovered_at is not null from raw.rejected_rows "
                       "order by row_number") == [
        (2, "reference:technician_id", "r2", True), (3, "reference:technician_id", "r2", True),
        (4, "enum:service_type", None, False)]

    # nothing is loaded twice
    third = load(data_dir, "tickets", "r3")
    assert third.rows_recovered == 0
    assert q(data_dir, "select count(*) from raw.tickets") == [(3,)]


def test_a_recovered_row_still_meets_every_other_rule(data_dir):
    """A row rejected for its reference AND a duplicated key in its file stays rejected."""
    write(data_dir, "technicians", "2026-05-01.csv", ROSTER_HEADER + T1)
    write(data_dir, "tickets", "2026-05-31.csv", TICKET_HEADER + ticket("K2", "T9") + ticket("K2", "T9"))
    load(data_dir, "technicians", "r1")
    assert load(data_dir, "tickets", "r1").rows_rejected == 2
    write(data_dir, "technicians", "2026-05-02.csv", ROSTER_HEADER + T1 + T9)
    load(data_dir, "technicians", "r2")
    assert load(data_dir, "tickets", "r2").rows_recovered == 1  # the first K2; the second repeats its key
    assert q(data_dir, "select _row_number from raw.tickets") == [(1,)]
    assert q(data_dir, "select row_number, recovered_at is not null from raw.rejected_rows order by 1") == [
        (1, True), (2, False)]
