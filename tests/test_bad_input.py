"""Bad input, tried on purpose, all in ONE landing folder loaded together (as a night with bad exports would be):
each file gets its documented outcome — rows rejected with their rule, or a feed-level error naming the file
and the rule while the other files of the feed still load — and the row-conservation count holds for every
file: rows landed = rows loaded + rows rejected, in load_log and in the tables.

tests/test_ingestion.py tries most cases one at a time; this adds the ones it has not (corrupt workbook, corrupt
Parquet, wrong delimiter, duplicated header, JSON lines that are not objects, CRLF + BOM) and the count over
the whole matrix. docs/faults.md lists every case with its outcome and test.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ingestion.contracts import FEEDS
from ingestion.loader import FeedLoadError, load_feed
from ingestion.paths import DataDir
from tests.test_ingestion import GOOD_TICKET, TECH_HEADER, TECHS, TICKET_HEADER, ticket

SURVEY_HEADER = ",".join(FEEDS["surveys"].column_names)


def survey(sid: str, overall: str = "5", nps: str = "10") -> str:
    return f"{sid},K1,T001,C1,2026-05-01 12:00:00,2026-05-02 10:00:00,{overall},5,4,4,{nps},ok"


def csv_bytes(*lines: str, encoding: str = "utf-8", newline: str = "\n", final: bool = True) -> bytes:
    return (newline.join(lines) + (newline if final else "")).encode(encoding)


def xlsx_bytes(rows: list[str]) -> bytes:
    names = FEEDS["tickets"].column_names
    frame = pd.DataFrame([dict(zip(names, r.split(","), strict=True)) for r in rows])
    buf = io.BytesIO()
    frame.to_excel(buf, index=False)
    return buf.getvalue()


@dataclass(frozen=True)
class Case:
    name: str
    feed: str
    file: str
    content: bytes
    landed: int  # data rows in the file, counted by hand
    loaded: int | None = None  # None: the whole file is refused with a feed-level error
    rules: tuple[str, ...] = ()  # the rule of each rejected row, in row order
    error: str = ""  # for a refused file: the text the feed error must contain


CASES = [
    Case("truncated file: unterminated quote on the last line", "tickets", "2026-05-01_truncated.csv",
         csv_bytes(TICKET_HEADER, ticket(ticket_id="A1"), ticket(ticket_id="A2")[:60] + ',"never closed',
                   final=False), 2, 1, ("malformed_line",)),
    Case("wrong encoding: GB18030 export", "tickets", "2026-05-02_gb18030.csv",
         csv_bytes(TICKET_HEADER, ticket(ticket_id="工单B1"), encoding="gb18030"), 1, 1),
    Case("wrong encoding: neither UTF-8 nor GB18030", "tickets", "2026-05-03_undecodable.csv",
         TICKET_HEADER.encode() + b"\n\xff\xfe\xfa\xfb,\x80\x81\n", 1, None,
         error="encoding is neither UTF-8 nor GB18030 (rule: csv_encoding)"),
    Case("unexpected extra columns", "tickets", "2026-05-04_extra.csv",
         csv_bytes(TICKET_HEADER + ",note,internal_flag", ticket(ticket_id="D1") + ",hello,1"), 1, 1),
    Case("missing required column", "tickets", "2026-05-05_missing.csv",
         csv_bytes(TICKET_HEADER.replace(",priority", ""), ticket(ticket_id="E1").replace(",P2", "")), 1, None,
         error="missing required column(s) priority for feed tickets (rule: required_columns"),
    Case("empty file", "tickets", "2026-05-06_empty.csv", b"", 0, 0),
    Case("header only", "tickets", "2026-05-07_header.csv", csv_bytes(TICKET_HEADER), 0, 0),
    Case("duplicated keys within one file", "tickets", "2026-05-08_dupes.csv",
         csv_bytes(TICKET_HEADER, ticket(ticket_id="H1"), ticket(ticket_id="H1", channel="web")), 2, 1,
         ("duplicate_key",)),
    Case("timestamps in several formats in one column", "tickets", "2026-05-09_formats.csv",
         csv_bytes(TICKET_HEADER, ticket(ticket_id="I1", created_at="2026-05-01 09:00:00"),
                   ticket(ticket_id="I2", created_at="2026-05-01T01:00:00+00:00"),
                   ticket(ticket_id="I3", created_at="2026/05/01 09:00"),
                   ticket(ticket_id="I4", created_at="01.05.2026 09:00")), 4, 3, ("type:created_at",)),
    Case("future dates", "tickets", "2026-05-10_future.csv",
         csv_bytes(TICKET_HEADER, ticket(ticket_id="J1", created_at="2099-01-01 09:00:00", first_response_at="",
                                         resolved_at="", updated_at="2099-01-01 09:00:00", status="open")),
         1, 0, ("future:created_at",)),
    Case("negative durations", "tickets", "2026-05-11_negative.csv",
         csv_bytes(TICKET_HEADER, ticket(ticket_id="L1", first_response_at="2026-05-01 08:00:00"),
                   ticket(ticket_id="L2", resolved_at="2026-04-30 12:00:00"),
                   ticket(ticket_id="L3", onsite_visits="-1")), 3, 0,
         ("rule:response_after_created", "rule:resolved_after_created", "range:onsite_visits")),
    Case("scores out of range", "surveys", "2026-05-12_scores.csv",
         csv_bytes(SURVEY_HEADER, survey("S1"), survey("S2", overall="7"), survey("S3", nps="11"),
                   survey("S4", overall="-1")), 4, 1, ("range:overall_score", "range:nps", "range:overall_score")),
    Case("Excel .xlsx export", "tickets", "2026-05-13_export.xlsx",
         xlsx_bytes([ticket(ticket_id="X1"), ticket(ticket_id="X2", technician_id="T404")]), 2, 1,
         ("reference:technician_id",)),
    Case("corrupt .xlsx (not a workbook)", "tickets", "2026-05-14_corrupt.xlsx", b"PK\x03\x04 not really", 0, None,
         error="cannot read the Excel workbook"),
    Case("corrupt Parquet", "tickets", "2026-05-15_corrupt.parquet", b"PAR1 garbage", 0, None,
         error="cannot read the Parquet file (Invalid Input Error: No magic bytes found at end of file"),
    Case("wrong delimiter (semicolons)", "tickets", "2026-05-16_semicolon.csv",
         csv_bytes(TICKET_HEADER.replace(",", ";"), GOOD_TICKET.replace(",", ";").replace("K1", "M1")), 1, None,
         error="missing required column(s) ticket_id"),
    Case("duplicated column in the header", "tickets", "2026-05-17_dupcol.csv",
         csv_bytes(TICKET_HEADER + ",status", ticket(ticket_id="N1") + ",open"), 1, None,
         error="duplicated column(s) status in the header (rule: header_unique)"),
    Case("JSON lines that are not objects, and broken JSON", "tickets", "2026-05-18_lines.jsonl",
         b'[1, 2]\n"text"\n{"ticket_id": "O1"\n', 3, 0,
         ("required:ticket_id", "required:ticket_id", "malformed_line")),
    Case("CRLF line endings with a byte-order mark", "tickets", "2026-05-19_crlf.csv",
         "\ufeff".encode() + csv_bytes(TICKET_HEADER, ticket(ticket_id="P1"), newline="\r\n"), 1, 1),
]


def q(data: DataDir, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(data.warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> tuple[DataDir, dict[str, str]]:
    data = DataDir(tmp_path_factory.mktemp("bad_input") / "data").ensure()
    (data.feed_dir("technicians")).mkdir(parents=True)
    (data.feed_dir("technicians") / "2026-05-01.csv").write_text("\n".join([TECH_HEADER, *TECHS]) + "\n")
    for case in CASES:
        path = data.feed_dir(case.feed) / case.file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(case.content)
    errors: dict[str, str] = {}
    for feed in ("technicians", "tickets", "surveys"):
        try:
            load_feed(data.warehouse, data.landing, feed, "bad-input", data.work)
        except FeedLoadError as exc:
            errors[feed] = str(exc)
    return data, errors


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_bad_input_gets_its_documented_outcome(matrix, case: Case):
    data, errors = matrix
    source = f"{case.feed}/{case.file}"
    logged = q(data, "select rows_read, rows_loaded, rows_rejected from raw.load_log where source_file = ?", [source])
    rules = [r[0] for r in q(data, "select rule from raw.rejected_rows where source_file = ? "
                                   "order by row_number, line_number", [source])]
    if case.loaded is None:
        assert case.file in errors.get(case.feed, "") and case.error in errors[case.feed], errors
        assert logged == [] and rules == []  # refused whole: nothing of it anywhere
        assert q(data, f"select count(*) from raw.{case.feed} where _source_file = ?", [source]) == [(0,)]
    else:
        assert case.file not in errors.get(case.feed, "")
        assert logged == [(case.landed, case.loaded, case.landed - case.loaded)]
        assert rules == list(case.rules)


def test_rows_are_conserved_for_every_file(matrix):
    """landed = loaded + rejected for every file, and the tables hold exactly what load_log says."""
    data, _ = matrix
    for case in [c for c in CASES if c.loaded is not None]:
        source = f"{case.feed}/{case.file}"
        raw = q(data, f"select count(*) from raw.{case.feed} where _source_file = ?", [source])[0][0]
        rejected = q(data, "select count(*) from raw.rejected_rows where source_file = ?", [source])[0][0]
        assert (raw, rejected) == (case.loaded, case.landed - case.loaded), case.name
        assert raw + rejected == case.landed, case.name
    totals = q(data, "select sum(rows_read), sum(rows_loaded) + sum(rows_rejected) from raw.load_log "
                     "where feed in ('tickets', 'surveys')")[0]
    landed = sum(c.landed for c in CASES if c.loaded is not None)
    assert totals == (landed, landed)


def test_refused_files_are_listed_in_one_feed_error_and_the_rest_loaded(matrix):
    data, errors = matrix
    refused = [c.file for c in CASES if c.feed == "tickets" and c.loaded is None]
    assert errors["tickets"].startswith(f"feed tickets: {len(refused)} file(s) could not be loaded:")
    assert all(name in errors["tickets"] for name in refused)
    assert "surveys" not in errors and "technicians" not in errors
    loaded_files = {r[0] for r in q(data, "select source_file from raw.load_log where feed = 'tickets'")}
    assert loaded_files == {f"tickets/{c.file}" for c in CASES if c.feed == "tickets" and c.loaded is not None}


def test_extra_columns_are_recorded_and_not_loaded(matrix):
    data, _ = matrix
    assert q(data, "select extra_columns from raw.load_log where source_file = 'tickets/2026-05-04_extra.csv'") == [
        ("note,internal_flag",)]
    assert q(data, "select encoding from raw.load_log where source_file like 'tickets/2026-05-02%'") == [("gb18030",)]


def test_a_second_load_of_the_same_folder_changes_nothing(matrix):
    """Fixing nothing and loading again: good files are skipped (already loaded), refused files refused again."""
    data, errors = matrix
    before = q(data, "select count(*) from raw.tickets union all select count(*) from raw.rejected_rows")
    with pytest.raises(FeedLoadError) as again:
        load_feed(data.warehouse, data.landing, "tickets", "bad-input-again", data.work)
    assert str(again.value) == errors["tickets"]
    assert q(data, "select count(*) from raw.tickets union all select count(*) from raw.rejected_rows") == before


def test_future_tolerance_is_one_day(data_dir: DataDir):
    """'future' means later than now + 1 day: a clock a few hours ahead in a branch office is not bad data."""
    import datetime as dt

    tz = dt.timezone(dt.timedelta(hours=8))
    soon = (dt.datetime.now(tz) + dt.timedelta(hours=6)).strftime("%Y-%m-%d %H:%M:%S")
    later = (dt.datetime.now(tz) + dt.timedelta(days=2)).strftime("%Y-%m-%d %H:%M:%S")
    data_dir.feed_dir("technicians").mkdir(parents=True)
    (data_dir.feed_dir("technicians") / "2026-05-01.csv").write_text("\n".join([TECH_HEADER, *TECHS]) + "\n")
    load_feed(data_dir.warehouse, data_dir.landing, "technicians", "r", data_dir.work)
    rows = [ticket(ticket_id=k, created_at=t, first_response_at="", resolved_at="", updated_at=t, status="open")
            for k, t in (("F1", soon), ("F2", later))]
    path: Path = data_dir.feed_dir("tickets") / "2026-05-01.csv"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join([TICKET_HEADER, *rows]) + "\n")
    result = load_feed(data_dir.warehouse, data_dir.landing, "tickets", "r", data_dir.work)
    assert (result.rows_loaded, result.rows_rejected) == (1, 1)
    got = q(data_dir, "select record::json->>'ticket_id', rule from raw.rejected_rows")
    assert got == [("F2", "future:created_at")]
