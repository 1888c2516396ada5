"""Ingestion: every landed row is loaded or rejected with its rule; bad files fail naming file and column."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from ingestion.contracts import FEEDS
from ingestion.load_results import FeedLoadError
from ingestion.loader import load_feed
from ingestion.paths import DataDir

TECH_HEADER = "technician_id,name,team_id,team_name,region,level,hire_date,leave_date,manager_id,valid_from,updated_at"
TECHS = [
    "T001,张伟,TM1,华东维修一组,华东,senior,2020-01-01,,M1,2020-01-01,2026-05-01 00:00:00",
    "T002,李娜,TM1,华东维修一组,华东,junior,2025-01-01,,M1,2025-01-01,2026-05-01 00:00:00",
]
TICKET_HEADER = ",".join(FEEDS["tickets"].column_names)
GOOD_TICKET = (
    "K1,2026-05-01 09:00:00,2026-05-01 09:30:00,2026-05-01 12:00:00,,2026-05-01 12:00:00,"
    "resolved,repair,P2,phone,T001,C1,P1,1,true,0,"
)  # sla_due_at empty


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def load(data: DataDir, feed: str):
    return load_feed(data.warehouse, data.landing, feed, "test-run", data.work)


def query(data: DataDir, sql: str, params: list | None = None):
    con = duckdb.connect(str(data.warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@pytest.fixture
def roster(data_dir: DataDir) -> DataDir:
    write(data_dir.feed_dir("technicians") / "2026-05-01.csv", "\n".join([TECH_HEADER, *TECHS]) + "\n")
    load(data_dir, "technicians")
    return data_dir


def ticket(**overrides: str) -> str:
    values = dict(zip(FEEDS["tickets"].column_names, GOOD_TICKET.split(","), strict=True))
    values.update(overrides)
    return ",".join(values[c] for c in FEEDS["tickets"].column_names)


BAD_TICKETS = [
    (
        "unparseable timestamp",
        ticket(ticket_id="B1", created_at="2026-13-45 25:61"),
        "type:created_at",
        "cannot read '2026-13-45 25:61' as timestamp",
    ),
    (
        "resolved before created",
        ticket(ticket_id="B2", resolved_at="2026-04-30 12:00:00"),
        "rule:resolved_after_created",
        "resolved_at is before created_at",
    ),
    (
        "unknown technician",
        ticket(ticket_id="B3", technician_id="T9999"),
        "reference:technician_id",
        "unknown T9999 (not in technicians)",
    ),
    ("bad enum", ticket(ticket_id="B4", priority="P9"), "enum:priority", "'P9' is not one of P1, P2, P3, P4"),
    ("missing required", ticket(ticket_id=""), "required:ticket_id", "required value is missing"),
    (
        "future date",
        ticket(
            ticket_id="B6",
            created_at="2099-01-01 09:00:00",
            first_response_at="",
            resolved_at="",
            updated_at="2099-01-01 09:00:00",
            status="open",
        ),
        "future:created_at",
        "is in the future",
    ),
    ("negative count", ticket(ticket_id="B7", onsite_visits="-1"), "range:onsite_visits", "below the minimum 0"),
    ("not a number", ticket(ticket_id="B8", reopened_count="two"), "type:reopened_count", "as int"),
    ("not a boolean", ticket(ticket_id="B9", first_time_fix="maybe"), "type:first_time_fix", "as bool"),
    (
        "negative duration",
        ticket(ticket_id="B10", first_response_at="2026-05-01 08:00:00"),
        "rule:response_after_created",
        "first_response_at is before created_at",
    ),
]


@pytest.mark.parametrize(("case", "row", "rule", "reason"), BAD_TICKETS, ids=[c[0] for c in BAD_TICKETS])
def test_each_bad_ticket_is_rejected_with_its_rule(roster: DataDir, case: str, row: str, rule: str, reason: str):
    write(roster.feed_dir("tickets") / "2026-05-02.csv", "\n".join([TICKET_HEADER, GOOD_TICKET, row]) + "\n")
    result = load(roster, "tickets")
    assert (result.rows_loaded, result.rows_rejected) == (1, 1)
    rejected = query(roster, "select row_number, rule, reason, source_file, record from raw.rejected_rows")
    assert len(rejected) == 1
    row_number, got_rule, got_reason, source_file, record = rejected[0]
    assert row_number == 2
    assert got_rule == rule
    assert reason in got_reason
    assert source_file == "tickets/2026-05-02.csv"
    assert json.loads(record)["ticket_id"] == (row.split(",")[0] or None)


def test_survey_score_out_of_range(roster: DataDir):
    header = ",".join(FEEDS["surveys"].column_names)
    rows = [
        "S1,K1,T001,C1,2026-05-01 12:00:00,2026-05-02 10:00:00,5,5,4,4,10,很好",
        "S2,K2,T001,C1,2026-05-01 12:00:00,2026-05-02 10:00:00,7,5,4,4,10,out of range",
        "S3,K3,T002,C1,2026-05-01 12:00:00,2026-05-02 10:00:00,4,5,4,4,11,nps out of range",
    ]
    write(roster.feed_dir("surveys") / "2026-05-02.csv", "\n".join([header, *rows]) + "\n")
    result = load(roster, "surveys")
    assert (result.rows_loaded, result.rows_rejected) == (1, 2)
    got = query(roster, "select row_number, rule, reason from raw.rejected_rows order by row_number")
    assert got == [
        (2, "range:overall_score", "overall_score: 7 is above the maximum 5"),
        (3, "range:nps", "nps: 11 is above the maximum 10"),
    ]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_encodings_load_the_same_names(data_dir: DataDir, encoding: str):
    write(data_dir.feed_dir("technicians") / "2026-05-01.csv", "\n".join([TECH_HEADER, *TECHS]) + "\n", encoding)
    result = load(data_dir, "technicians")
    assert result.files[0].encoding == encoding
    assert query(data_dir, "select name, team_name from raw.technicians order by technician_id") == [
        ("张伟", "华东维修一组"),
        ("李娜", "华东维修一组"),
    ]


def test_undecodable_file_fails_naming_the_file(data_dir: DataDir):
    path = data_dir.feed_dir("technicians") / "2026-05-01.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes(TECH_HEADER.encode() + b"\n\xff\xfe\xfa\xfb,\x80\x81\n")
    with pytest.raises(FeedLoadError, match=r"2026-05-01\.csv: encoding is neither UTF-8 nor GB18030"):
        load(data_dir, "technicians")


def test_missing_required_column_fails_and_keeps_earlier_rows(roster: DataDir):
    write(roster.feed_dir("tickets") / "2026-05-01.csv", "\n".join([TICKET_HEADER, GOOD_TICKET]) + "\n")
    assert load(roster, "tickets").rows_loaded == 1
    header = TICKET_HEADER.replace(",priority", "")
    row = GOOD_TICKET.replace(",P2", "").replace("K1", "K2")
    write(roster.feed_dir("tickets") / "2026-05-02.csv", "\n".join([header, row]) + "\n")
    with pytest.raises(FeedLoadError) as err:
        load(roster, "tickets")
    assert "tickets/2026-05-02.csv: missing required column(s) priority" in str(err.value)
    assert query(roster, "select ticket_id from raw.tickets") == [("K1",)]
    assert query(roster, "select count(*) from raw.load_log where feed = 'tickets'") == [(1,)]


def test_same_file_twice_changes_nothing_and_newer_version_is_added(roster: DataDir):
    write(roster.feed_dir("tickets") / "2026-05-01.csv", "\n".join([TICKET_HEADER, GOOD_TICKET]) + "\n")
    load(roster, "tickets")
    again = load(roster, "tickets")
    assert again.files_skipped == 1 and again.rows_loaded == 0
    newer = ticket(status="closed", closed_at="2026-05-02 10:00:00", updated_at="2026-05-02 10:00:00")
    write(roster.feed_dir("tickets") / "2026-05-02.csv", "\n".join([TICKET_HEADER, newer]) + "\n")
    assert load(roster, "tickets").rows_loaded == 1
    assert query(roster, "select status from raw.tickets order by updated_at") == [("resolved",), ("closed",)]


def test_truncated_file_and_wrong_field_counts_are_rejected_lines(roster: DataDir):
    text = (
        "\n".join(
            [
                TICKET_HEADER,
                GOOD_TICKET,
                GOOD_TICKET.replace("K1", "K2") + ",extra-field",
                ticket(ticket_id="K3") + ',"unterminated',
            ]
        )
        + "\n"
    )
    write(roster.feed_dir("tickets") / "2026-05-01.csv", text)
    result = load(roster, "tickets")
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (3, 1, 2)
    got = query(roster, "select line_number, rule from raw.rejected_rows order by line_number")
    assert got == [(3, "malformed_line"), (4, "malformed_line")]


def test_empty_file_header_only_extra_columns_and_duplicates(roster: DataDir):
    write(roster.feed_dir("tickets") / "2026-05-01.csv", "")
    write(roster.feed_dir("tickets") / "2026-05-02.csv", TICKET_HEADER + "\n")
    write(
        roster.feed_dir("tickets") / "2026-05-03.csv",
        "\n".join([TICKET_HEADER + ",note", GOOD_TICKET + ",x", GOOD_TICKET + ",dup"]) + "\n",
    )
    result = load(roster, "tickets")
    by_file = {f.source_file: f for f in result.files}
    assert by_file["tickets/2026-05-01.csv"].rows_read == 0
    assert by_file["tickets/2026-05-02.csv"].rows_read == 0
    third = by_file["tickets/2026-05-03.csv"]
    assert (third.rows_loaded, third.rows_rejected, third.extra_columns) == (1, 1, ["note"])
    assert query(roster, "select rule, row_number from raw.rejected_rows") == [("duplicate_key", 2)]


def test_several_timestamp_formats_in_one_column(roster: DataDir):
    rows = [
        ticket(ticket_id="F1", created_at="2026-05-01 09:00:00"),
        ticket(ticket_id="F2", created_at="2026-05-01T01:00:00+00:00"),
        ticket(ticket_id="F3", created_at="2026/05/01 09:00"),
        ticket(ticket_id="F4", created_at="01.05.2026 09:00"),
    ]
    write(roster.feed_dir("tickets") / "2026-05-01.csv", "\n".join([TICKET_HEADER, *rows]) + "\n")
    result = load(roster, "tickets")
    assert (result.rows_loaded, result.rows_rejected) == (3, 1)
    # naive times are Asia/Shanghai: all three are the same instant, 01:00 UTC
    got = query(roster, "select distinct epoch(created_at) from raw.tickets")
    assert got == [(1777597200.0,)]
    assert query(roster, "select rule from raw.rejected_rows") == [("type:created_at",)]


def test_jsonl_parquet_and_xlsx(roster: DataDir):
    import pandas as pd

    names = FEEDS["tickets"].column_names
    rec = dict(zip(names, GOOD_TICKET.split(","), strict=True))
    lines = [json.dumps(rec), "{not json", json.dumps({**rec, "ticket_id": "J2", "priority": "P7"})]
    write(roster.feed_dir("tickets") / "2026-05-01.jsonl", "\n".join(lines) + "\n")
    frame = pd.DataFrame([{**rec, "ticket_id": "X1"}, {**rec, "ticket_id": "X2", "technician_id": "T404"}])
    frame.to_excel(roster.feed_dir("tickets") / "2026-05-02.xlsx", index=False)
    frame.assign(ticket_id=["P1", "P2"]).to_parquet(roster.feed_dir("tickets") / "2026-05-03.parquet")
    result = load(roster, "tickets")
    assert [(f.rows_loaded, f.rows_rejected) for f in result.files] == [(1, 2), (1, 1), (1, 1)]
    assert query(roster, "select rule from raw.rejected_rows order by source_file, row_number") == [
        ("malformed_line",),
        ("enum:priority",),
        ("reference:technician_id",),
        ("reference:technician_id",),
    ]


def test_every_landed_row_is_loaded_or_rejected(roster: DataDir):
    rows = [GOOD_TICKET] + [r for _, r, _, _ in BAD_TICKETS] + [ticket(ticket_id="K2"), ticket(ticket_id="K3")]
    write(roster.feed_dir("tickets") / "2026-05-01.csv", "\n".join([TICKET_HEADER, *rows, 'K9,broken"']) + "\n")
    load(roster, "tickets")
    landed = len(rows) + 1
    loaded = query(roster, "select count(*) from raw.tickets")[0][0]
    rejected = query(roster, "select count(*) from raw.rejected_rows where feed = 'tickets'")[0][0]
    assert (loaded, rejected) == (3, len(BAD_TICKETS) + 1)
    assert loaded + rejected == landed
    assert query(roster, "select rows_read, rows_loaded, rows_rejected from raw.load_log where feed = 'tickets'") == [
        (landed, 3, len(BAD_TICKETS) + 1)
    ]


def test_file_names_outside_the_landing_folder_are_refused(data_dir: DataDir, tmp_path: Path):
    outside = write(tmp_path / "secret.csv", TECH_HEADER + "\n")
    link = data_dir.feed_dir("technicians") / "2026-05-01.csv"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    write(data_dir.feed_dir("technicians") / "notes.txt", "not a feed file")
    from ingestion.landing import LandingError

    with pytest.raises(LandingError, match="resolves outside the landing folder"):
        load(data_dir, "technicians")
    with pytest.raises(LandingError, match="unknown feed"):
        load_feed(data_dir.warehouse, data_dir.landing, "../etc", "r", data_dir.work)


# --- months touched: the months whose KPIs a load can change (what the publish sensor rebuilds) ---------------


def load_tickets(data: DataDir, day: str, *rows: str) -> list[str]:
    write(data.feed_dir("tickets") / f"{day}.csv", "\n".join([TICKET_HEADER, *rows]) + "\n")
    result = load(data, "tickets")
    assert result.rows_rejected == 0 and result.rows_loaded == len(rows)
    return result.months_touched


OPEN_MARCH = ticket(
    ticket_id="A1",
    created_at="2026-03-10 09:00:00",
    first_response_at="",
    resolved_at="",
    updated_at="2026-03-10 09:00:00",
    status="open",
)
RESOLVED_APRIL = ticket(
    ticket_id="C1",
    created_at="2026-03-28 09:00:00",
    first_response_at="2026-03-28 10:00:00",
    resolved_at="2026-04-02 12:00:00",
    updated_at="2026-04-02 12:00:00",
)


@pytest.fixture
def old_tickets(roster: DataDir) -> DataDir:
    assert load_tickets(roster, "2026-04-02", OPEN_MARCH, RESOLVED_APRIL) == ["2026-03-01", "2026-04-01"]
    return roster


def test_resolving_an_old_ticket_touches_the_resolved_month_only(old_tickets: DataDir):
    resolved = ticket(
        ticket_id="A1",
        created_at="2026-03-10 09:00:00",
        first_response_at="",
        resolved_at="2026-06-01 10:00:00",
        updated_at="2026-06-01 10:00:00",
        status="resolved",
    )
    assert load_tickets(old_tickets, "2026-06-01", resolved) == ["2026-06-01"]


def test_a_first_response_touches_the_created_month(old_tickets: DataDir):
    responded = ticket(
        ticket_id="A1",
        created_at="2026-03-10 09:00:00",
        first_response_at="2026-03-10 10:00:00",
        resolved_at="",
        updated_at="2026-06-01 10:00:00",
        status="in_progress",
    )
    assert load_tickets(old_tickets, "2026-06-01", responded) == ["2026-03-01"]


def test_a_new_ticket_touches_its_created_and_resolved_months(old_tickets: DataDir):
    new = ticket(
        ticket_id="N1",
        created_at="2026-05-30 09:00:00",
        first_response_at="2026-05-30 10:00:00",
        resolved_at="2026-06-02 10:00:00",
        updated_at="2026-06-02 10:00:00",
    )
    assert load_tickets(old_tickets, "2026-06-02", new) == ["2026-05-01", "2026-06-01"]


def test_a_ticket_moved_to_another_resolved_month_touches_both(old_tickets: DataDir):
    moved = RESOLVED_APRIL.replace("2026-04-02 12:00:00", "2026-05-03 12:00:00")
    assert load_tickets(old_tickets, "2026-05-03", moved) == ["2026-04-01", "2026-05-01"]


def test_changes_no_indicator_reads_and_stale_versions_touch_nothing(old_tickets: DataDir):
    new_customer = RESOLVED_APRIL.replace(",C1,", ",C9,").replace(
        "2026-04-02 12:00:00,resolved", "2026-04-05 12:00:00,resolved"
    )
    assert load_tickets(old_tickets, "2026-04-05", new_customer) == []
    stale = ticket(
        ticket_id="A1",
        created_at="2026-03-10 09:00:00",
        first_response_at="2026-03-10 09:30:00",
        resolved_at="",
        updated_at="2026-03-09 09:00:00",
        status="open",
    )  # older than the loaded one
    assert load_tickets(old_tickets, "2026-04-06", stale) == []


def test_reassigning_a_ticket_touches_both_of_its_months(old_tickets: DataDir):
    """The technician counts for first_response_time (created month) and the resolution indicators."""
    reassigned = RESOLVED_APRIL.replace(",T001,", ",T002,").replace(
        "2026-04-02 12:00:00,resolved", "2026-04-03 12:00:00,resolved"
    )
    assert load_tickets(old_tickets, "2026-04-03", reassigned) == ["2026-03-01", "2026-04-01"]


def test_period_inputs_are_valid_sql_over_the_raw_columns(data_dir: DataDir):
    from ingestion.loader import ensure_raw_schema
    from ingestion.months_touched import months_touched
    from ingestion.warehouse import connect

    with connect(data_dir.warehouse) as con:
        ensure_raw_schema(con)
        for feed in FEEDS.values():
            assert {name for name, _ in feed.period_inputs} <= set(feed.period_columns), feed.name
            assert months_touched(con, feed, ["no such hash"], "Asia/Shanghai") == []  # binds every expression


def test_closing_a_resolved_ticket_touches_nothing(old_tickets: DataDir):
    closed = RESOLVED_APRIL.replace(
        "2026-04-02 12:00:00,,2026-04-02 12:00:00,resolved",
        "2026-04-02 12:00:00,2026-04-03 12:00:00,2026-04-03 12:00:00,closed",
    )
    assert closed != RESOLVED_APRIL
    assert load_tickets(old_tickets, "2026-04-03", closed) == []


def test_a_batch_of_files_keeps_file_order_and_counts_per_file(roster: DataDir):
    """Files of one format load in one statement; a later file still wins a tie on updated_at (later _loaded_at)."""
    first = ticket(ticket_id="K1", channel="phone")
    second = ticket(ticket_id="K1", channel="web")
    for day, rows in (
        ("2026-05-01", [first, ticket(ticket_id="K2")]),
        ("2026-05-02", [second]),
        ("2026-05-03", [ticket(ticket_id="K3"), ticket(ticket_id="K3"), ticket(ticket_id="K4")]),
    ):
        write(roster.feed_dir("tickets") / f"{day}.csv", "\n".join([TICKET_HEADER, *rows]) + "\n")
    result = load(roster, "tickets")
    assert [(f.source_file, f.rows_loaded, f.rows_rejected) for f in result.files] == [
        ("tickets/2026-05-01.csv", 2, 0),
        ("tickets/2026-05-02.csv", 1, 0),
        ("tickets/2026-05-03.csv", 2, 1),
    ]
    newest = query(
        roster,
        "select channel from raw.tickets where ticket_id = 'K1' "
        "order by updated_at desc, _loaded_at desc, _row_number desc limit 1",
    )
    assert newest == [("web",)]
    assert query(roster, "select source_file, row_number, rule from raw.rejected_rows") == [
        ("tickets/2026-05-03.csv", 2, "duplicate_key")
    ]
    assert query(roster, "select _source_file, _row_number from raw.tickets where ticket_id = 'K4'") == [
        ("tickets/2026-05-03.csv", 3)
    ]


def test_survey_months_follow_the_scores_not_the_comment(roster: DataDir):
    """Surveys have no version column: the later load wins, and only the columns the indicators read count."""
    header = ",".join(FEEDS["surveys"].column_names)

    def load_surveys(day: str, *rows: str) -> list[str]:
        write(roster.feed_dir("surveys") / f"{day}.csv", "\n".join([header, *rows]) + "\n")
        result = load(roster, "surveys")
        assert (result.rows_loaded, result.rows_rejected) == (len(rows), 0)
        return result.months_touched

    row = "S1,K1,T001,C1,2026-03-01 12:00:00,2026-03-02 10:00:00,5,5,4,4,10,{comment}"
    assert load_surveys("2026-03-02", row.format(comment="good")) == ["2026-03-01"]
    assert load_surveys("2026-06-01", row.format(comment="edited")) == []
    assert load_surveys("2026-06-02", row.replace(",5,5,", ",3,5,").format(comment="x")) == ["2026-03-01"]


def test_an_unterminated_quote_in_a_batch_of_csv_files_is_a_rejected_line(roster: DataDir):
    """DuckDB 2.0's multi-file read_csv([...]) of 3+ files loses such a line; the loader reads each CSV on its own
    inside the batch statement, so the line is still a rejected row naming its file and line."""
    for day, rows in (
        ("2026-05-01", [ticket(ticket_id="Q1")]),
        ("2026-05-02", [ticket(ticket_id="Q2"), ticket(ticket_id="Q3")[:40] + ',"never closed']),
        ("2026-05-03", [ticket(ticket_id="Q4")]),
        ("2026-05-04", [ticket(ticket_id="Q5")]),
    ):
        write(roster.feed_dir("tickets") / f"{day}.csv", "\n".join([TICKET_HEADER, *rows]) + "\n")
    result = load(roster, "tickets")
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (5, 4, 1)
    assert query(roster, "select source_file, line_number, rule from raw.rejected_rows") == [
        ("tickets/2026-05-02.csv", 3, "malformed_line")
    ]


def test_typed_parquet_rows_breaking_the_contract_are_rejected_with_their_rule(roster: DataDir):
    """A Parquet file whose types already match the contract: 3 good rows load, a repeated key and a count above
    its maximum are rejected with their rule, row number and reason; load_log counts 5 read, 3 loaded, 2 rejected."""
    path = roster.feed_dir("tickets") / "2026-05-04.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [("G1", 1), ("G2", 1), ("G1", 2), ("R1", 101), ("G3", 3)]  # (ticket_id, onsite_visits)
    values = ", ".join(f"('{t}', {n})" for t, n in rows)
    con = duckdb.connect()
    con.execute(f"""copy (
        select ticket_id, timestamp '2026-05-01 09:00:00' as created_at, timestamp '2026-05-01 09:30:00'
            as first_response_at, timestamp '2026-05-01 12:00:00' as resolved_at, null::timestamp as closed_at,
            timestamp '2026-05-01 12:00:00' as updated_at, 'resolved' as status, 'repair' as service_type,
            'P2' as priority, 'phone' as channel, 'T001' as technician_id, 'C1' as customer_id, 'P1' as product_id,
            onsite_visits::bigint as onsite_visits, true as first_time_fix, 0::bigint as reopened_count
        from (values {values}) as v(ticket_id, onsite_visits)
    ) to '{path}' (format parquet)""")
    con.close()
    result = load(roster, "tickets")
    assert [(f.rows_read, f.rows_loaded, f.rows_rejected) for f in result.files] == [(5, 3, 2)]
    assert query(roster, "select ticket_id, onsite_visits, _row_number from raw.tickets order by _row_number") == [
        ("G1", 1, 1),
        ("G2", 1, 2),
        ("G3", 3, 5),
    ]
    assert query(roster, "select row_number, rule, reason from raw.rejected_rows order by row_number") == [
        (3, "duplicate_key", "same key and updated_at as an earlier row of this file"),
        (4, "range:onsite_visits", "onsite_visits: 101 is above the maximum 100"),
    ]
    record = json.loads(query(roster, "select record from raw.rejected_rows where row_number = 4")[0][0])
    assert (record["ticket_id"], record["onsite_visits"]) == ("R1", 101)
    assert query(roster, "select rows_read, rows_loaded, rows_rejected from raw.load_log where feed = 'tickets'") == [
        (5, 3, 2)
    ]
