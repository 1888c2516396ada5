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
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ingestion.contracts import FEEDS
from ingestion.load_results import FeedLoadError
from ingestion.loader import load_feed
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
    Case(
        "truncated file: unterminated quote on the last line",
        "tickets",
        "2026-05-01_truncated.csv",
        csv_bytes(TICKET_HEADER, ticket(ticket_id="A1"), ticket(ticket_id="A2")[:60] + ',"never closed', final=False),
        2,
        1,
        ("malformed_line",),
    ),
    Case(
        "wrong encoding: GB18030 export",
        "tickets",
        "2026-05-02_gb18030.csv",
        csv_bytes(TICKET_HEADER, ticket(ticket_id="工单B1"), encoding="gb18030"),
        1,
        1,
    ),
    Case(
        "wrong encoding: neither UTF-8 nor GB18030",
        "tickets",
        "2026-05-03_undecodable.csv",
        TICKET_HEADER.encode() + b"\n\xff\xfe\xfa\xfb,\x80\x81\n",
        1,
        None,
        error="encoding is neither UTF-8 nor GB18030 (rule: csv_encoding)",
    ),
    Case(
        "unexpected extra columns",
        "tickets",
        "2026-05-04_extra.csv",
        csv_bytes(TICKET_HEADER + ",note,internal_flag", ticket(ticket_id="D1") + ",hello,1"),
        1,
        1,
    ),
    Case(
        "missing required column",
        "tickets",
        "2026-05-05_missing.csv",
        csv_bytes(TICKET_HEADER.replace(",priority", ""), ticket(ticket_id="E1").replace(",P2", "")),
        1,
        None,
        error="missing required column(s) priority for feed tickets (rule: required_columns",
    ),
    Case("empty file", "tickets", "2026-05-06_empty.csv", b"", 0, 0),
    Case("header only", "tickets", "2026-05-07_header.csv", csv_bytes(TICKET_HEADER), 0, 0),
    Case(
        "duplicated keys within one file",
        "tickets",
        "2026-05-08_dupes.csv",
        csv_bytes(TICKET_HEADER, ticket(ticket_id="H1"), ticket(ticket_id="H1", channel="web")),
        2,
        1,
        ("duplicate_key",),
    ),
    Case(
        "timestamps in several formats in one column",
        "tickets",
        "2026-05-09_formats.csv",
        csv_bytes(
            TICKET_HEADER,
            ticket(ticket_id="I1", created_at="2026-05-01 09:00:00"),
            ticket(ticket_id="I2", created_at="2026-05-01T01:00:00+00:00"),
            ticket(ticket_id="I3", created_at="2026/05/01 09:00"),
            ticket(ticket_id="I4", created_at="01.05.2026 09:00"),
        ),
        4,
        3,
        ("type:created_at",),
    ),
    Case(
        "future dates",
        "tickets",
        "2026-05-10_future.csv",
        csv_bytes(
            TICKET_HEADER,
            ticket(
                ticket_id="J1",
                created_at="2099-01-01 09:00:00",
                first_response_at="",
                resolved_at="",
                updated_at="2099-01-01 09:00:00",
                status="open",
            ),
        ),
        1,
        0,
        ("future:created_at",),
    ),
    Case(
        "negative durations",
        "tickets",
        "2026-05-11_negative.csv",
        csv_bytes(
            TICKET_HEADER,
            ticket(ticket_id="L1", first_response_at="2026-05-01 08:00:00"),
            ticket(ticket_id="L2", resolved_at="2026-04-30 12:00:00"),
            ticket(ticket_id="L3", onsite_visits="-1"),
        ),
        3,
        0,
        ("rule:response_after_created", "rule:resolved_after_created", "range:onsite_visits"),
    ),
    Case(
        "scores out of range",
        "surveys",
        "2026-05-12_scores.csv",
        csv_bytes(
            SURVEY_HEADER, survey("S1"), survey("S2", overall="7"), survey("S3", nps="11"), survey("S4", overall="-1")
        ),
        4,
        1,
        ("range:overall_score", "range:nps", "range:overall_score"),
    ),
    Case(
        "Excel .xlsx export",
        "tickets",
        "2026-05-13_export.xlsx",
        xlsx_bytes([ticket(ticket_id="X1"), ticket(ticket_id="X2", technician_id="T404")]),
        2,
        1,
        ("reference:technician_id",),
    ),
    Case(
        "corrupt .xlsx (not a workbook)",
        "tickets",
        "2026-05-14_corrupt.xlsx",
        b"PK\x03\x04 not really",
        0,
        None,
        error="cannot read the Excel workbook",
    ),
    Case(
        "corrupt Parquet",
        "tickets",
        "2026-05-15_corrupt.parquet",
        b"PAR1 garbage",
        0,
        None,
        error="cannot read the Parquet file (Invalid Input Error: No magic bytes found at end of file",
    ),
    Case(
        "wrong delimiter (semicolons)",
        "tickets",
        "2026-05-16_semicolon.csv",
        csv_bytes(TICKET_HEADER.replace(",", ";"), GOOD_TICKET.replace(",", ";").replace("K1", "M1")),
        1,
        None,
        error="missing required column(s) ticket_id",
    ),
    Case(
        "duplicated column in the header",
        "tickets",
        "2026-05-17_dupcol.csv",
        csv_bytes(TICKET_HEADER + ",status", ticket(ticket_id="N1") + ",open"),
        1,
        None,
        error="duplicated column(s) status in the header (rule: header_unique)",
    ),
    Case(
        "JSON lines that are not objects, and broken JSON",
        "tickets",
        "2026-05-18_lines.jsonl",
        b'[1, 2]\n"text"\n{"ticket_id": "O1"\n',
        3,
        0,
        ("required:ticket_id", "required:ticket_id", "malformed_line"),
    ),
    Case(
        "CRLF line endings with a byte-order mark",
        "tickets",
        "2026-05-19_crlf.csv",
        "\ufeff".encode() + csv_bytes(TICKET_HEADER, ticket(ticket_id="P1"), newline="\r\n"),
        1,
        1,
    ),
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
    rules = [
        r[0]
        for r in q(
            data, "select rule from raw.rejected_rows where source_file = ? order by row_number, line_number", [source]
        )
    ]
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
    totals = q(
        data,
        "select sum(rows_read), sum(rows_loaded) + sum(rows_rejected) from raw.load_log "
        "where feed in ('tickets', 'surveys')",
    )[0]
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
        ("note,internal_flag",)
    ]
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
    rows = [
        ticket(ticket_id=k, created_at=t, first_response_at="", resolved_at="", updated_at=t, status="open")
        for k, t in (("F1", soon), ("F2", later))
    ]
    path: Path = data_dir.feed_dir("tickets") / "2026-05-01.csv"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join([TICKET_HEADER, *rows]) + "\n")
    result = load_feed(data_dir.warehouse, data_dir.landing, "tickets", "r", data_dir.work)
    assert (result.rows_loaded, result.rows_rejected) == (1, 1)
    got = q(data_dir, "select record::json->>'ticket_id', rule from raw.rejected_rows")
    assert got == [("F2", "future:created_at")]


# --- issue 16: adversarial landing files, each loaded correctly, rejected row by row, or refused and reported ----


def load_one(data: DataDir, feed: str, run_id: str = "r16"):
    return load_feed(data.warehouse, data.landing, feed, run_id, data.work)


@pytest.fixture
def roster16(data_dir: DataDir) -> DataDir:
    path = data_dir.feed_dir("technicians") / "2026-05-01.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([TECH_HEADER, *TECHS]) + "\n")
    load_one(data_dir, "technicians")
    return data_dir


def land(data: DataDir, feed: str, name: str, content: bytes) -> Path:
    path = data.feed_dir(feed) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_file_names_are_loaded_or_reported_with_their_reason(roster16: DataDir):
    """Upper-case extension, a CJK suffix and one-digit month/day load; a space, an impossible date, a hidden file,
    another extension and a sub-folder are reported (result.unread and raw.unread_files), never silent."""
    good = {"2026-05-01.CSV": "U1", "2026-05-02_报表.csv": "U2", "2026-5-6.csv": "U3"}
    for name, key in good.items():
        land(roster16, "tickets", name, csv_bytes(TICKET_HEADER, ticket(ticket_id=key)))
    for name in ("2026-05-03 copy.csv", "2026-06-31.csv", ".2026-05-04.csv", "2026-05-05.xls"):
        land(roster16, "tickets", name, csv_bytes(TICKET_HEADER, ticket(ticket_id="LOST")))
    (roster16.feed_dir("tickets") / "archive").mkdir()
    result = load_one(roster16, "tickets")
    assert [(f.source_file, f.rows_loaded) for f in result.files] == [
        ("tickets/2026-05-01.CSV", 1),
        ("tickets/2026-05-02_报表.csv", 1),
        ("tickets/2026-5-6.csv", 1),
    ]
    assert q(roster16, "select file_day::varchar from raw.load_log where source_file = 'tickets/2026-5-6.csv'") == [
        ("2026-05-06",)
    ]
    reasons = dict(result.unread)
    assert sorted(reasons) == [
        "tickets/.2026-05-04.csv",
        "tickets/2026-05-03 copy.csv",
        "tickets/2026-05-05.xls",
        "tickets/2026-06-31.csv",
        "tickets/archive",
    ]
    assert reasons["tickets/2026-06-31.csv"] == "2026-06-31 in the name is not a calendar date"
    assert reasons["tickets/2026-05-03 copy.csv"].startswith("the name contains whitespace")
    assert reasons["tickets/.2026-05-04.csv"].startswith("hidden file")
    assert reasons["tickets/2026-05-05.xls"].startswith("unsupported extension .xls")
    assert reasons["tickets/archive"].startswith("a folder")
    assert result.ignored[0] == f"{result.unread[0][0]}: {result.unread[0][1]}"
    rows = q(
        roster16,
        "select source_file, file_hash is not null, reason, run_id from raw.unread_files "
        "where feed = 'tickets' order by source_file",
    )
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("tickets/.2026-05-04.csv", True, "r16"),
        ("tickets/2026-05-03 copy.csv", True, "r16"),
        ("tickets/2026-05-05.xls", True, "r16"),
        ("tickets/2026-06-31.csv", True, "r16"),
        ("tickets/archive", False, "r16"),
    ]
    assert [r[2] for r in rows] == [reasons[r[0]] for r in rows]
    # one row per file and run: a second run reports them again, and loads nothing twice
    again = load_one(roster16, "tickets", "r16-again")
    assert again.files_skipped == 3 and len(again.unread) == 5
    assert q(roster16, "select run_id, count(*) from raw.unread_files group by all order by 1") == [
        ("r16", 5),
        ("r16-again", 5),
    ]
    assert q(roster16, "select count(*) from raw.tickets where ticket_id = 'LOST'") == [(0,)]


def test_a_refused_file_is_recorded_as_unread_and_the_error_carries_the_result(roster16: DataDir):
    land(roster16, "tickets", "2026-05-01.csv", csv_bytes(TICKET_HEADER, ticket(ticket_id="R1")))
    land(
        roster16,
        "tickets",
        "2026-05-02.csv",
        csv_bytes(TICKET_HEADER.replace(",priority", ""), ticket(ticket_id="R2").replace(",P2", "")),
    )
    land(roster16, "tickets", "2026-13-01.csv", b"")
    with pytest.raises(FeedLoadError) as err:
        load_one(roster16, "tickets")
    assert err.value.result.rows_loaded == 1
    assert err.value.result.unread == [("tickets/2026-13-01.csv", "2026-13-01 in the name is not a calendar date")]
    rows = q(roster16, "select source_file, reason from raw.unread_files order by source_file")
    assert rows[0][0] == "tickets/2026-05-02.csv"
    assert rows[0][1].startswith(
        "file refused: missing required column(s) priority for feed tickets (rule: required_columns"
    )
    assert rows[1] == ("tickets/2026-13-01.csv", "2026-13-01 in the name is not a calendar date")


def test_the_second_sheet_of_a_workbook_is_reported_not_lost(roster16: DataDir):
    names = FEEDS["tickets"].column_names
    first = pd.DataFrame([dict(zip(names, ticket(ticket_id="W1").split(","), strict=True))])
    second = pd.DataFrame([dict(zip(names, ticket(ticket_id="W2").split(","), strict=True))])
    path = roster16.feed_dir("tickets") / "2026-05-01.xlsx"
    path.parent.mkdir(parents=True, exist_ok=True)
    with pd.ExcelWriter(path) as writer:
        first.to_excel(writer, sheet_name="May", index=False)
        second.to_excel(writer, sheet_name="more", index=False)
        pd.DataFrame().to_excel(writer, sheet_name="empty", index=False)
    result = load_one(roster16, "tickets")
    assert (result.rows_loaded, result.rows_rejected) == (1, 0)
    assert result.unread == [
        (
            "tickets/2026-05-01.xlsx",
            "sheet(s) 'more' not read: only the first sheet of a workbook ('May') is read; move "
            "the rows to it or land each sheet as its own file",
        )
    ]
    assert q(roster16, "select source_file, file_hash is not null from raw.unread_files") == [
        ("tickets/2026-05-01.xlsx", True)
    ]


def test_a_formula_cell_without_a_calculated_value_is_rejected(roster16: DataDir):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    names = FEEDS["tickets"].column_names
    ws.append(list(names))
    ws.append(ticket(ticket_id="F1").split(","))
    row = ticket(ticket_id="F2").split(",")
    row[names.index("onsite_visits")] = "=1+1"  # openpyxl stores the formula without a cached value
    ws.append(row)
    path = roster16.feed_dir("tickets") / "2026-05-01.xlsx"
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    result = load_one(roster16, "tickets")
    assert (result.rows_loaded, result.rows_rejected) == (1, 1)
    assert q(roster16, "select row_number, line_number, rule, reason from raw.rejected_rows") == [
        (
            2,
            3,
            "formula_not_calculated",
            "formula cell(s) without a calculated value in column(s) onsite_visits "
            "(the workbook was saved without calculating them; open it in Excel and save it again)",
        )
    ]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_mixed_crlf_and_lf_line_endings_load_row_by_row(roster16: DataDir, fmt: str):
    if fmt == "csv":
        content = (
            TICKET_HEADER
            + "\r\n"
            + ticket(ticket_id="M1")
            + "\r\n"
            + ticket(ticket_id="M2")
            + "\n"
            + ticket(ticket_id="M3", priority="P9")
            + "\r\n"
        ).encode()
        header = 1
    else:
        names = FEEDS["tickets"].column_names
        recs = [
            dict(zip(names, ticket(ticket_id=k, priority=p).split(","), strict=True))
            for k, p in (("M1", "P2"), ("M2", "P2"), ("M3", "P9"))
        ]
        content = (json.dumps(recs[0]) + "\r\n" + json.dumps(recs[1]) + "\n" + json.dumps(recs[2]) + "\r\n").encode()
        header = 0
    land(roster16, "tickets", f"2026-05-01.{fmt}", content)
    result = load_one(roster16, "tickets")
    assert (result.rows_loaded, result.rows_rejected) == (2, 1)
    assert q(roster16, "select ticket_id, status from raw.tickets order by ticket_id") == [
        ("M1", "resolved"),
        ("M2", "resolved"),
    ]  # no stray \r in the last column
    assert q(roster16, "select row_number, line_number, rule from raw.rejected_rows") == [
        (3, 3 + header, "enum:priority")
    ]


def test_jsonl_with_a_control_byte_blank_lines_and_gb18030(roster16: DataDir):
    names = FEEDS["tickets"].column_names
    rec = dict(zip(names, ticket(ticket_id="J1").split(","), strict=True))
    lines = [
        json.dumps(rec, ensure_ascii=False),
        json.dumps({**rec, "ticket_id": "J2"}).replace('"J2"', '"J\x1f2"'),  # a raw 0x1F: not valid JSON
        "",
        json.dumps({**rec, "ticket_id": "工单J3"}, ensure_ascii=False),
        json.dumps({**rec, "ticket_id": {"id": "J4"}}),
        json.dumps({**rec, "ticket_id": "J5", "channel": ["phone"]}),
    ]
    land(roster16, "tickets", "2026-05-01.jsonl", ("\n".join(lines) + "\n").encode("gb18030"))
    result = load_one(roster16, "tickets")
    assert result.files[0].encoding == "gb18030"
    assert q(roster16, "select ticket_id, _row_number from raw.tickets order by _row_number") == [
        ("J1", 1),
        ("工单J3", 3),
    ]
    got = q(roster16, "select row_number, line_number, rule, reason from raw.rejected_rows order by row_number")
    assert [g[:3] for g in got] == [(2, 2, "malformed_line"), (4, 5, "type:ticket_id"), (5, 6, "type:channel")]
    assert got[1][3].startswith("""ticket_id: {"id":"J4"} is not a plain value""")


def test_a_gb18030_roster_that_also_decodes_as_utf8_is_read_as_gb18030(data_dir: DataDir, monkeypatch):
    """卢梅 and 莫平 in GB18030 are valid UTF-8 bytes too ('¬÷', 'Īƽ'); the GB18030 reading is plain Chinese."""
    rows = [
        TECH_HEADER,
        "T001,卢梅,TM1,,,senior,2020-01-01,,M1,2020-01-01,2026-05-01 00:00:00",
        "T002,莫平,TM1,,,junior,2025-01-01,,M1,2025-01-01,2026-05-01 00:00:00",
    ]
    content = csv_bytes(*rows, encoding="gb18030")
    content.decode("utf-8")  # the trap: valid UTF-8
    land(data_dir, "technicians", "2026-05-01.csv", content)
    result = load_one(data_dir, "technicians")
    assert result.files[0].encoding == "gb18030"
    assert q(data_dir, "select name from raw.technicians order by technician_id") == [("卢梅",), ("莫平",)]


def test_utf8_latin_names_stay_utf8_and_a_declared_encoding_wins(data_dir: DataDir, monkeypatch):
    rows = [TECH_HEADER, "T001,José Müller,TM1,,,senior,2020-01-01,,M1,2020-01-01,2026-05-01 00:00:00"]
    land(data_dir, "technicians", "2026-05-01.csv", csv_bytes(*rows))
    assert load_one(data_dir, "technicians").files[0].encoding == "utf-8"
    assert q(data_dir, "select name from raw.technicians") == [("José Müller",)]
    # a declared encoding is taken as is: these bytes are then read as GB18030
    monkeypatch.setenv("SERVICESCORE_LANDING_ENCODING", "technicians=gb18030")
    rows[1] = rows[1].replace("T001", "T002")
    land(data_dir, "technicians", "2026-05-02.csv", csv_bytes(*rows))
    assert [f.encoding for f in load_one(data_dir, "technicians").files] == ["", "gb18030"]  # first: skipped
    monkeypatch.setenv("SERVICESCORE_LANDING_ENCODING", "technicians=latin-1")
    land(data_dir, "technicians", "2026-05-03.csv", csv_bytes(*rows[:1]))
    with pytest.raises(Exception, match="is not one of utf-8, gb18030"):
        load_one(data_dir, "technicians")


def _parquet(path: Path, select: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"copy ({select}) to '{path}' (format parquet)")
    con.close()


PARQUET_TICKET = (
    "timestamp '2026-05-01 09:00:00' as created_at, timestamp '2026-05-01 12:00:00' as updated_at, "
    "'resolved' as status, 'repair' as service_type, 'P2' as priority, 'T001' as technician_id, "
    "timestamp '2026-05-01 12:00:00' as resolved_at"
)


def test_parquet_columns_equal_after_trim_and_lower_case_are_refused(roster16: DataDir):
    path = roster16.feed_dir("tickets") / "2026-05-01.parquet"
    _parquet(path, f"select 'P1' as ticket_id, 'x' as \" Ticket_ID\", {PARQUET_TICKET}")
    with pytest.raises(FeedLoadError) as err:
        load_one(roster16, "tickets")
    assert f"{path}: duplicated column(s) ticket_id in the header (rule: header_unique)" in str(err.value)
    assert q(roster16, "select count(*) from raw.load_log where feed = 'tickets'") == [(0,)]


def test_parquet_values_are_converted_only_when_lossless(roster16: DataDir):
    """A double 0.4 or 99.6 is not an int (no rounding), -1 is not a boolean, NaN is not a count, a struct is not
    an id; 2.0 and 1 are."""
    rows = [("Q1", "2.0", "1"), ("Q2", "0.4", "1"), ("Q3", "99.6", "0"), ("Q4", "'NaN'", "1"), ("Q5", "1", "-1")]
    values = ", ".join(f"('{k}', {v}::double, {b}::integer)" for k, v, b in rows)
    _parquet(
        roster16.feed_dir("tickets") / "2026-05-01.parquet",
        f"select ticket_id, onsite_visits, first_time_fix, {PARQUET_TICKET} "
        f"from (values {values}) as v(ticket_id, onsite_visits, first_time_fix)",
    )
    _parquet(
        roster16.feed_dir("tickets") / "2026-05-02.parquet", f"select {{'id': 'S1'}} as ticket_id, {PARQUET_TICKET}"
    )
    result = load_one(roster16, "tickets")
    assert q(roster16, "select ticket_id, onsite_visits, first_time_fix from raw.tickets") == [("Q1", 2, True)]
    assert q(
        roster16,
        "select source_file, row_number, line_number, rule from raw.rejected_rows order by source_file, row_number",
    ) == [
        ("tickets/2026-05-01.parquet", 2, None, "type:onsite_visits"),
        ("tickets/2026-05-01.parquet", 3, None, "type:onsite_visits"),
        ("tickets/2026-05-01.parquet", 4, None, "type:onsite_visits"),
        ("tickets/2026-05-01.parquet", 5, None, "type:first_time_fix"),
        ("tickets/2026-05-02.parquet", 1, None, "type:ticket_id"),
    ]
    assert result.rows_rejected == 5


PURCHASE_HEADER = ",".join(FEEDS["purchases"].column_names)


def purchase(
    pid: str, purchased_at: str = "2026-05-01 10:00:00", warranty: str = "2028-05-01", amount: str = "100.5"
) -> str:
    return f"{pid},C1,P1,{purchased_at},{warranty},{amount},2026-05-01 10:00:00"


def test_numbers_that_are_not_plain_finite_numbers_are_rejected(data_dir: DataDir):
    land(
        data_dir,
        "purchases",
        "2026-05-01.csv",
        csv_bytes(
            PURCHASE_HEADER,
            purchase("A1"),
            purchase("A2", amount="NaN"),
            purchase("A3", amount="Infinity"),
            purchase("A4", amount="1_0"),
            purchase("A5", amount="-inf"),
            purchase("A6", amount="1e3"),
        ),
    )
    result = load_one(data_dir, "purchases")
    assert q(data_dir, "select purchase_id, amount from raw.purchases order by 1") == [("A1", 100.5), ("A6", 1000.0)]
    assert q(data_dir, "select row_number, rule from raw.rejected_rows order by row_number") == [
        (2, "type:amount"),
        (3, "type:amount"),
        (4, "type:amount"),
        (5, "type:amount"),
    ]
    assert result.rows_rejected == 4


def test_one_underscore_in_an_int_is_not_a_separator(roster16: DataDir):
    land(roster16, "tickets", "2026-05-01.csv", csv_bytes(TICKET_HEADER, ticket(ticket_id="N1", onsite_visits="1_0")))
    load_one(roster16, "tickets")
    assert q(roster16, "select rule, reason from raw.rejected_rows") == [
        ("type:onsite_visits", "onsite_visits: cannot read '1_0' as int")
    ]


def test_timestamps_outside_the_plausible_window_are_rejected(roster16: DataDir):
    rows = [
        ticket(ticket_id="T1"),
        ticket(ticket_id="T2", created_at="epoch"),
        ticket(ticket_id="T3", created_at="-infinity"),
        ticket(ticket_id="T4", created_at="0001-01-01 00:00:00"),
        ticket(ticket_id="T5", resolved_at="9999-01-01 00:00:00"),
        ticket(ticket_id="T6", updated_at="infinity"),
        ticket(ticket_id="T7", sla_due_at="2030-01-01 00:00:00"),  # a due date may be in the future
        ticket(ticket_id="T8", sla_due_at="2100-01-01 00:00:00"),
    ]
    land(roster16, "tickets", "2026-05-01.csv", csv_bytes(TICKET_HEADER, *rows))
    load_one(roster16, "tickets")
    assert q(roster16, "select ticket_id from raw.tickets order by 1") == [("T1",), ("T7",)]
    got = q(roster16, "select row_number, rule, reason from raw.rejected_rows order by row_number")
    assert [g[:2] for g in got] == [
        (2, "plausible:created_at"),
        (3, "plausible:created_at"),
        (4, "plausible:created_at"),
        (5, "plausible:resolved_at"),
        (6, "plausible:updated_at"),
        (8, "plausible:sla_due_at"),
    ]
    assert got[3][2] == (
        "resolved_at: 9999-01-01 00:00:00 is outside the plausible window (from 1990-01-01, up to the run time + 1 day)"
    )


def test_the_plausible_window_is_one_setting(data_dir: DataDir, monkeypatch):
    monkeypatch.setenv("SERVICESCORE_PLAUSIBLE_WINDOW", "2026-03-01/1 day/2027-01-01")
    land(
        data_dir,
        "purchases",
        "2026-05-01.csv",
        csv_bytes(
            PURCHASE_HEADER,
            purchase("W1"),
            purchase("W2", purchased_at="2026-02-28 10:00:00"),
            purchase("W3", warranty="2026-12-31"),
            purchase("W4", warranty="2027-01-01"),
        ),
    )
    load_one(data_dir, "purchases")
    assert q(data_dir, "select purchase_id from raw.purchases order by 1") == [("W3",)]
    assert q(data_dir, "select row_number, rule from raw.rejected_rows order by 1") == [
        (1, "plausible:warranty_until"),
        (2, "plausible:purchased_at"),
        (4, "plausible:warranty_until"),
    ]
    monkeypatch.setenv("SERVICESCORE_PLAUSIBLE_WINDOW", "1990-01-01/soon/2100-01-01")
    land(data_dir, "purchases", "2026-05-02.csv", csv_bytes(PURCHASE_HEADER, purchase("W5")))
    with pytest.raises(ValueError, match="SERVICESCORE_PLAUSIBLE_WINDOW"):
        load_one(data_dir, "purchases")


def test_row_and_line_numbers_after_malformed_lines_and_quoted_newlines(roster16: DataDir):
    """Physical lines: 1 header, 2 good, 3 too many fields, 4-5 a comment spanning two lines, 6 empty, 7 bad enum,
    8 good. Records: 1 good, 2 malformed, 3 good, 4 bad enum, 5 good (no two rows claim one number)."""
    header = TICKET_HEADER + ",note"
    content = csv_bytes(
        header,
        ticket(ticket_id="L1") + ",a",
        ticket(ticket_id="L2") + ",b,extra",
        ticket(ticket_id="L3") + ',"two',
        'lines"',
        "",
        ticket(ticket_id="L4", priority="P9") + ",c",
        ticket(ticket_id="L5") + ",d",
    )
    land(roster16, "tickets", "2026-05-01.csv", content)
    result = load_one(roster16, "tickets")
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (5, 3, 2)
    assert q(roster16, "select ticket_id, _row_number from raw.tickets order by _row_number") == [
        ("L1", 1),
        ("L3", 3),
        ("L5", 5),
    ]
    assert q(roster16, "select row_number, line_number, rule from raw.rejected_rows order by row_number") == [
        (2, 3, "malformed_line"),
        (4, 7, "enum:priority"),
    ]


def test_line_numbers_with_quoted_newlines_and_no_malformed_line(roster16: DataDir):
    header = TICKET_HEADER + ",note"
    content = csv_bytes(header, ticket(ticket_id="L1") + ',"a\nb\nc"', ticket(ticket_id="L2", priority="P9") + ",x")
    land(roster16, "tickets", "2026-05-01.csv", content)
    load_one(roster16, "tickets")
    assert q(roster16, "select row_number, line_number, rule from raw.rejected_rows") == [(2, 5, "enum:priority")]


def test_a_corrupt_warehouse_is_not_reported_as_locked(data_dir: DataDir):
    from ingestion.load_results import WarehouseCorruptError, WarehouseLockedError
    from ingestion.warehouse import connect

    data_dir.warehouse.write_bytes(b"not a duckdb file" * 300)
    with pytest.raises(WarehouseCorruptError) as err, connect(data_dir.warehouse):
        pass
    assert not isinstance(err.value, WarehouseLockedError)
    assert str(err.value).startswith(
        f"{data_dir.warehouse}: the warehouse file cannot be opened as a DuckDB database (IO Error: The file "
    )
    assert "(rule: warehouse_readable)" in str(err.value) and "locked" not in str(err.value)


def test_a_reader_holding_the_warehouse_is_named_as_a_reader(data_dir: DataDir):
    import subprocess
    import sys

    from ingestion.load_results import WarehouseLockedError
    from ingestion.warehouse import connect

    duckdb.connect(str(data_dir.warehouse)).close()
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; "
            f"c = duckdb.connect({str(data_dir.warehouse)!r}, read_only=True); "
            "print('open', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "open"
        with pytest.raises(WarehouseLockedError) as err, connect(data_dir.warehouse):
            pass
        assert str(err.value).startswith(
            f"{data_dir.warehouse}: the warehouse is held open by a reader (PID {reader.pid})"
        )
    finally:
        reader.kill()
        reader.wait()
