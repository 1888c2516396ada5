"""Feed mappings (issue 7): each feature on tiny hand-made files, exact mapped values, rejected rows
with the failing rule, and invalid mapping files with their messages."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest
import yaml

from ingestion.mappings import (
    MappingError,
    apply_mapping,
    dry_run,
    load_mapping,
    mapped_rows,
    rejected_rows,
    run_mapping,
)
from ingestion.mappings.__main__ import main as cli

UTC = dt.UTC


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def mapping_file(tmp_path: Path, doc: dict, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


TICKET_BASE = {
    "service_type": {"constant": "repair"},
    "status": {"constant": "open"},
    "priority": {"constant": "P2"},
    "technician_id": {"column": "tech"},
}


def tickets_mapping(columns: dict, **feed: object) -> dict:
    return {
        "name": "t",
        "source": {"timezone": "Asia/Shanghai", "null_tokens": ["", "?"]},
        "feeds": {"tickets": {**feed, "columns": {**TICKET_BASE, **columns}}},
    }


def run(tmp_path: Path, doc: dict, csv_text: str, feed: str = "tickets"):
    src = write(tmp_path / "src.csv", csv_text)
    r = run_mapping(load_mapping(mapping_file(tmp_path, doc)), src)
    return r, mapped_rows(r, feed), rejected_rows(r, feed)


def test_renames_constants_timestamps_with_candidate_formats_and_zone(tmp_path: Path) -> None:
    doc = tickets_mapping({
        "ticket_id": {"column": "Number"},
        "created_at": {"column": "opened", "formats": ["%d-%m-%Y %H:%M", "%d/%m/%Y %H:%M:%S"]},
        "updated_at": {"column": "opened", "formats": ["%d-%m-%Y %H:%M", "%d/%m/%Y %H:%M:%S"],
                       "timezone": "UTC"},
    })
    r, rows, rejected = run(tmp_path, doc, (
        "Number,opened,tech\r\n"
        "INC1,03-04-2021 09:30,T1\r\n"
        "INC2,03/04/2021 23:15:10,T2\r\n"
        "INC3,2021-04-03 09:30,T1\r\n"
    ))
    assert [(x["ticket_id"], x["created_at"], x["updated_at"], x["priority"], x["service_type"])
            for x in rows] == [
        ("INC1", ts("2021-04-03T01:30:00+00:00"), ts("2021-04-03T09:30:00+00:00"), "P2", "repair"),
        ("INC2", ts("2021-04-03T15:15:10+00:00"), ts("2021-04-03T23:15:10+00:00"), "P2", "repair"),
    ]
    assert len(rejected) == 1
    bad = rejected[0]
    assert bad["row_number"] == 3
    assert bad["rule"] == "feeds.tickets.columns.created_at.formats"
    assert "'2021-04-03 09:30'" not in bad["reason"] and "2021-04-03 09:30" in bad["reason"]
    assert "matches none of the formats [%d-%m-%Y %H:%M, %d/%m/%Y %H:%M:%S]" in bad["reason"]
    assert json.loads(bad["record"]) == {"Number": "INC3", "opened": "2021-04-03 09:30", "tech": "T1"}
    assert r.results["tickets"].mapped == 2 and r.results["tickets"].rejected == 1


@pytest.mark.parametrize(
    ("order", "expected"),
    [("day_first", "2021-04-03T00:00:00+08:00"), ("month_first", "2021-03-04T00:00:00+08:00")],
)
def test_date_order_is_said_explicitly(tmp_path: Path, order: str, expected: str) -> None:
    doc = tickets_mapping({
        "ticket_id": {"column": "id"},
        "created_at": {"column": "d", "date_order": order},
        "updated_at": {"column": "d", "date_order": order},
    })
    _, rows, rejected = run(tmp_path, doc, "id,d,tech\nA,03-04-2021,T\nB,03/04/2021 00:00,T\n")
    assert rejected == []
    assert [x["created_at"] for x in rows] == [ts(expected), ts(expected)]


def test_null_tokens_value_maps_booleans_and_defaults(tmp_path: Path) -> None:
    doc = tickets_mapping({
        "ticket_id": {"column": "id"},
        "created_at": {"constant": "2021-01-01T08:00:00+08:00", "formats": ["iso8601"]},
        "updated_at": {"constant": "2021-01-01 08:00", "formats": ["iso8601"]},
        "priority": {"column": "prio", "values": {"1 - Critical": "P1", "3 - Moderate": "P3"}},
        "channel": {"column": "via", "values": {"Phone": "phone"}, "default": "web"},
        "first_time_fix": {"column": "ftf", "values": {"Y": True, "N": False}},
        "customer_id": {"column": "caller"},
    })
    _, rows, rejected = run(tmp_path, doc, (
        "id,prio,via,ftf,caller,tech\n"
        "A,3 - Moderate,Phone,Y,?,T\n"
        "B,1 - Critical,Chat,N,C9,T\n"
        "C,2 - High,Phone,?,C1,T\n"
        "D,?,Phone,maybe,C2,T\n"
    ))
    assert [(x["ticket_id"], x["priority"], x["channel"], x["first_time_fix"], x["customer_id"],
             x["created_at"], x["updated_at"]) for x in rows] == [
        ("A", "P3", "phone", True, None, ts("2021-01-01T00:00:00+00:00"), ts("2021-01-01T00:00:00+00:00")),
        ("B", "P1", "web", False, "C9", ts("2021-01-01T00:00:00+00:00"), ts("2021-01-01T00:00:00+00:00")),
    ]
    by_row = {x["row_number"]: x for x in rejected}
    assert by_row[3]["rule"] == "feeds.tickets.columns.priority.values"
    assert by_row[3]["reason"].startswith("value of column 'prio' not in the value map of priority: 2 - High")
    # '?' is null: the required priority is empty (a contract rule), and 'maybe' is in no map
    assert by_row[4]["rule"] == "feeds.tickets.columns.first_time_fix.values"
    assert "contract: " not in by_row[4]["reason"]
    assert "required column priority is empty (from column 'prio')" in by_row[4]["reason"]


def test_durations_seconds_and_hmmss_added_to_a_timestamp(tmp_path: Path) -> None:
    doc = tickets_mapping({
        "ticket_id": {"column": "id"},
        "created_at": {"columns": ["day", "time"], "formats": ["%Y-%m-%d %H:%M:%S"], "timezone": "UTC"},
        "first_response_at": {"base": "created_at", "add": [{"seconds": "speed"}]},
        "resolved_at": {"base": "first_response_at", "add": [{"duration": "talk"}],
                        "when": {"column": "solved", "equals": "Y"}},
        "updated_at": {"base": "first_response_at", "add": [{"duration": "talk"}], "fallback": "created_at"},
    })
    _, rows, rejected = run(tmp_path, doc, (
        "id,day,time,speed,talk,solved,tech\n"
        "A,2021-01-01,9:12:58,109,0:02:23,Y,T\n"
        "B,2021-01-01,23:59:00,61.5,1:00:00,N,T\n"
        "C,2021-01-02,10:00:00,,,N,T\n"
        "D,2021-01-02,10:00:00,5,2 min,Y,T\n"
        "E,2021-01-02,10:00:00,five,0:00:01,Y,T\n"
    ))
    got = {x["ticket_id"]: (x["created_at"], x["first_response_at"], x["resolved_at"], x["updated_at"])
           for x in rows}
    assert got == {
        "A": (ts("2021-01-01T09:12:58+00:00"), ts("2021-01-01T09:14:47+00:00"),
              ts("2021-01-01T09:17:10+00:00"), ts("2021-01-01T09:17:10+00:00")),
        "B": (ts("2021-01-01T23:59:00+00:00"), ts("2021-01-02T00:00:01.500+00:00"), None,
              ts("2021-01-02T01:00:01.500+00:00")),
        "C": (ts("2021-01-02T10:00:00+00:00"), None, None, ts("2021-01-02T10:00:00+00:00")),
    }
    rules = {x["row_number"]: x["rule"] for x in rejected}
    assert rules == {4: "feeds.tickets.columns.resolved_at.add[0].duration",
                     5: "feeds.tickets.columns.first_response_at.add[0].seconds"}
    d = next(x for x in rejected if x["row_number"] == 4)
    assert "column 'talk' is not a duration H:MM:SS: 2 min" in d["reason"]


def test_identifier_from_several_columns(tmp_path: Path) -> None:
    doc = tickets_mapping({
        "ticket_id": {"columns": ["site", "no"], "separator": "/", "prefix": "SR-"},
        "created_at": {"constant": "2021-01-01T00:00:00Z", "formats": ["iso8601"]},
        "updated_at": {"constant": "2021-01-01T00:00:00Z", "formats": ["iso8601"]},
    })
    _, rows, rejected = run(tmp_path, doc, "site,no,tech\nBJ,7,T\nSH,7,T\n,8,T\n")
    assert [x["ticket_id"] for x in rows] == ["SR-BJ/7", "SR-SH/7"]
    assert [(x["row_number"], x["rule"]) for x in rejected] == [(3, "contract.tickets.ticket_id.required")]


def test_event_log_keeps_the_newest_version(tmp_path: Path) -> None:
    doc = tickets_mapping(
        {
            "ticket_id": {"column": "number"},
            "created_at": {"constant": "2021-01-01T00:00:00Z", "formats": ["iso8601"]},
            "updated_at": {"constant": "2021-01-01T00:00:00Z", "formats": ["iso8601"]},
            "status": {"column": "state", "values": {"New": "open", "Active": "in_progress"}},
        },
        latest={"key": ["number"], "by": "mods", "numeric": True},
    )
    r, rows, rejected = run(tmp_path, doc, (
        "number,state,mods,tech\n"
        "I1,New,0,T\n"
        "I1,Active,10,T\n"   # 10 > 9 numerically (as text '9' > '10')
        "I1,New,9,T\n"
        "I2,New,2,T\n"
        "I2,Active,2,T\n"    # tie: the later row wins
        "I3,Bogus,1,T\n"
        "I3,New,0,T\n"
    ))
    assert [(x["ticket_id"], x["status"]) for x in rows] == [("I1", "in_progress"), ("I2", "in_progress")]
    assert [(x["row_number"], x["rule"]) for x in rejected] == [(6, "feeds.tickets.columns.status.values")]
    assert r.results["tickets"].superseded == 4


def test_one_source_several_feeds_filter_and_derived_technicians(tmp_path: Path) -> None:
    doc = {
        "name": "calls",
        "source": {"timezone": "UTC"},
        "feeds": {
            "tickets": {"columns": {
                "ticket_id": {"column": "id"},
                "created_at": {"column": "at", "formats": ["%Y-%m-%d %H:%M"]},
                "updated_at": {"column": "at", "formats": ["%Y-%m-%d %H:%M"]},
                "status": {"constant": "resolved"},
                "resolved_at": {"base": "created_at"},
                "service_type": {"constant": "technical_support"},
                "priority": {"constant": "P3"},
                "technician_id": {"column": "agent"},
            }},
            "surveys": {
                "filter": [{"column": "rating", "not_null": True}, {"column": "agent", "not_in": ["Bot"]}],
                "columns": {
                    "response_id": {"column": "id"},
                    "ticket_id": {"column": "id"},
                    "technician_id": {"column": "agent"},
                    "responded_at": {"column": "at", "formats": ["%Y-%m-%d %H:%M"]},
                    "overall_score": {"column": "rating"},
                },
            },
            "technicians": {
                "derive_from": "tickets",
                "distinct_on": ["technician_id"],
                "columns": {
                    "technician_id": {"column": "agent"},
                    "name": {"column": "agent"},
                    "team_id": {"column": "grp", "pick": "mode"},
                    "team_name": {"column": "grp", "pick": "max"},
                    "hire_date": {"column": "at", "formats": ["%Y-%m-%d %H:%M"], "pick": "min"},
                    "valid_from": {"constant": "2020-01-01"},
                },
            },
        },
    }
    r, tickets, _ = run(tmp_path, doc, (
        "id,at,agent,grp,rating\n"
        "1,2021-01-05 10:00,Ann,G2,5\n"
        "2,2021-01-03 10:00,Ann,G1,\n"
        "3,2021-01-04 10:00,Ann,G1,7\n"
        "4,2021-01-02 10:00,Bob,G9,2\n"
        "5,2021-01-01 10:00,Bot,G9,4\n"
        "6,bad,Cy,G3,4\n"
    ))
    assert [x["ticket_id"] for x in tickets] == ["1", "2", "3", "4", "5"]
    surveys = mapped_rows(r, "surveys")
    assert [(x["response_id"], x["overall_score"]) for x in surveys] == [("1", 5), ("4", 2)]
    assert [(x["row_number"], x["rule"]) for x in rejected_rows(r, "surveys")] == [
        (3, "contract.surveys.overall_score.max"), (6, "feeds.surveys.columns.responded_at.formats")]
    assert r.results["surveys"].filtered_out == 2
    techs = {x["technician_id"]: (x["team_id"], x["team_name"], x["hire_date"], x["valid_from"])
             for x in mapped_rows(r, "technicians")}
    # Cy's only ticket was rejected, so Cy is no technician; Ann's team is her most frequent group
    assert techs == {
        "Ann": ("G1", "G2", dt.date(2021, 1, 3), dt.date(2020, 1, 1)),
        "Bob": ("G9", "G9", dt.date(2021, 1, 2), dt.date(2020, 1, 1)),
        "Bot": ("G9", "G9", dt.date(2021, 1, 1), dt.date(2020, 1, 1)),
    }


def test_apply_writes_contract_files_and_rejected_rows(tmp_path: Path) -> None:
    doc = tickets_mapping({
        "ticket_id": {"column": "id"},
        "created_at": {"column": "at", "formats": ["%Y-%m-%d %H:%M"]},
        "updated_at": {"column": "at", "formats": ["%Y-%m-%d %H:%M"]},
        "reopened_count": {"column": "reopens"},
    })
    doc["feeds"]["technicians"] = {
        "derive_from": "tickets", "distinct_on": ["technician_id"],
        "columns": {"technician_id": {"column": "tech"}, "name": {"column": "tech"},
                    "team_id": {"constant": "t1"}, "hire_date": {"constant": "2020-01-01"},
                    "valid_from": {"constant": "2020-01-01"}},
    }
    src = write(tmp_path / "export.csv", "id,at,tech,reopens\nA,2021-01-01 08:00,T1,0\nB,2021-01-01 08:00,T1,x\n")
    landing = tmp_path / "data" / "landing"
    result = apply_mapping(mapping_file(tmp_path, doc), src, landing, as_of=dt.date(2021, 1, 2))
    path = landing / "tickets" / "2021-01-02_t.csv"
    assert result.feeds["tickets"].path == path
    with path.open(encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["ticket_id", "created_at", "first_response_at", "resolved_at", "closed_at", "updated_at",
                       "status", "service_type", "priority", "channel", "technician_id", "customer_id",
                       "product_id", "onsite_visits", "first_time_fix", "reopened_count", "sla_due_at"]
    assert rows[1:] == [["A", "2021-01-01T00:00:00+00:00", "", "", "", "2021-01-01T00:00:00+00:00", "open",
                         "repair", "P2", "", "T1", "", "", "", "", "0", ""]]
    tech = (landing / "technicians" / "2021-01-02_t.csv").read_text(encoding="utf-8").splitlines()
    assert tech == ["technician_id,name,team_id,team_name,region,level,hire_date,leave_date,manager_id,"
                    "valid_from,updated_at", "T1,T1,t1,,,,2020-01-01,,,2020-01-01,"]
    assert result.rejected_path == tmp_path / "data" / "mapping_rejected" / "2021-01-02_t.csv"
    with result.rejected_path.open(encoding="utf-8") as f:
        rej = list(csv.DictReader(f))
    assert len(rej) == 1
    assert (rej[0]["feed"], rej[0]["row_number"], rej[0]["rule"], rej[0]["source_file"]) == (
        "tickets", "2", "feeds.tickets.columns.reopened_count.type", str(src))
    assert rej[0]["reason"] == "column 'reopens' is not an integer for reopened_count: x"
    assert json.loads(rej[0]["record"]) == {"id": "B", "at": "2021-01-01 08:00", "tech": "T1", "reopens": "x"}
    assert not list(landing.glob("*/.*.tmp"))


def test_excel_and_gb18030_sources_map_like_utf8_csv(tmp_path: Path) -> None:
    import openpyxl

    doc = tickets_mapping({
        "ticket_id": {"column": "单号"},
        "created_at": {"columns": ["日期", "时间"], "formats": ["%Y-%m-%d %H:%M:%S"]},
        "updated_at": {"columns": ["日期", "时间"], "formats": ["%Y-%m-%d %H:%M:%S"]},
        "first_response_at": {"base": "created_at", "add": [{"duration": "等待"}]},
        "onsite_visits": {"column": "上门"},
    })
    doc["feeds"]["tickets"]["columns"]["technician_id"] = {"column": "工程师"}
    text = "单号,日期,时间,等待,上门,工程师\nA,2021-01-01,9:05:00,0:01:00,2,张三\n"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "导出"
    ws.append(["单号", "日期", "时间", "等待", "上门", "工程师"])
    ws.append(["A", "2021-01-01", dt.time(9, 5), dt.time(0, 1), 2, "张三"])
    wb.save(tmp_path / "src.xlsx")
    results = []
    for src in (write(tmp_path / "u.csv", "\ufeff" + text), write(tmp_path / "g.csv", text, "gb18030"),
                tmp_path / "src.xlsx"):
        d = json.loads(json.dumps(doc))
        d["source"]["encoding"] = "gb18030" if src.name == "g.csv" else "utf-8"
        if src.suffix == ".xlsx":
            d["source"]["sheet"] = "导出"
        r = run_mapping(load_mapping(mapping_file(tmp_path, d)), src, work_dir=tmp_path / "work")
        results.append(mapped_rows(r, "tickets"))
    expected = [{
        "ticket_id": "A", "created_at": ts("2021-01-01T01:05:00+00:00"),
        "first_response_at": ts("2021-01-01T01:06:00+00:00"), "resolved_at": None, "closed_at": None,
        "updated_at": ts("2021-01-01T01:05:00+00:00"), "status": "open", "service_type": "repair",
        "priority": "P2", "channel": None, "technician_id": "张三", "customer_id": None, "product_id": None,
        "onsite_visits": 2, "first_time_fix": None, "reopened_count": None, "sla_due_at": None,
    }]
    assert results == [expected, expected, expected]


def test_literals_are_bound_not_pasted(tmp_path: Path) -> None:
    evil = "x'); drop table src; --"
    doc = tickets_mapping({
        "ticket_id": {"column": "id", "values": {"A": evil}},
        "created_at": {"constant": "2021-01-01T00:00:00Z", "formats": ["iso8601"]},
        "updated_at": {"constant": "2021-01-01T00:00:00Z", "formats": ["iso8601"]},
        "customer_id": {"constant": "O'Brien \"$p0\""},
    })
    r, rows, _ = run(tmp_path, doc, "id,tech\nA,T\n")
    assert [(x["ticket_id"], x["customer_id"]) for x in rows] == [(evil, "O'Brien \"$p0\"")]
    assert r.con.execute("select count(*) from src").fetchone()[0] == 1


def test_yes_no_keys_stay_text(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "name: t\nsource: {timezone: UTC}\nfeeds:\n  tickets:\n    columns:\n"
        "      ticket_id: {column: id}\n      created_at: {column: at, formats: ['%Y-%m-%d']}\n"
        "      updated_at: {column: at, formats: ['%Y-%m-%d']}\n      status: {constant: open}\n"
        "      service_type: {constant: repair}\n      priority: {constant: P1}\n"
        "      technician_id: {column: id}\n"
        "      first_time_fix: {column: fixed, values: {yes: true, no: false, on: true}}\n",
        encoding="utf-8",
    )
    m = load_mapping(path)
    assert m.feeds["tickets"].columns["first_time_fix"].values == {"yes": True, "no": False, "on": True}


VALID = tickets_mapping({
    "ticket_id": {"column": "id"},
    "created_at": {"column": "at", "formats": ["%Y-%m-%d"]},
    "updated_at": {"column": "at", "formats": ["%Y-%m-%d"]},
})


def _broken(change) -> dict:
    doc = json.loads(json.dumps(VALID))
    change(doc)
    return doc


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["feeds"].update(tikets=d["feeds"].pop("tickets")),
         "m.yaml: feeds.tikets: unknown feed 'tikets'; feeds are: technicians, customers"),
        (lambda d: d["feeds"]["tickets"]["columns"].update(ticket_id={"column": "a; drop table x"}),
         "m.yaml: feeds.tickets.columns.ticket_id: source column name 'a; drop table x' is not allowed"),
        (lambda d: d["feeds"]["tickets"]["columns"].update({"x; drop table y": {"constant": 1}}),
         "m.yaml: feeds.tickets.columns.x; drop table y: not a column of feed tickets"),
        (lambda d: d["feeds"]["tickets"]["columns"]["ticket_id"].update(colum="id"),
         "m.yaml: feeds.tickets.columns.ticket_id.colum: unknown key"),
        (lambda d: d.update(sorce={}), "m.yaml: sorce: unknown key"),
        (lambda d: d["feeds"]["tickets"]["columns"].pop("priority"),
         "m.yaml: feeds.tickets.columns: required column 'priority' of feed tickets has no rule"),
        (lambda d: d["feeds"]["tickets"]["columns"]["created_at"].update(formats=["%d-%m-%Y", "%m/%d/%Y"]),
         "mix day-first and month-first dates"),
        (lambda d: d["source"].update(timezone="Mars/Olympus"),
         "m.yaml: source.timezone: unknown time zone 'Mars/Olympus'"),
        (lambda d: d["source"].pop("timezone"),
         "m.yaml: feeds.tickets.columns.created_at: say the time zone of naive timestamps"),
        (lambda d: d["feeds"]["tickets"]["columns"].update(first_response_at={"base": "resolved_at"}),
         "first_response_at.base: 'resolved_at' must be a target column defined above this one"),
        (lambda d: d["feeds"]["tickets"]["columns"].update(customer_id={"column": "a", "constant": "b"}),
         "needs exactly one of: column, columns, constant, base (got column, constant)"),
        (lambda d: d["feeds"]["tickets"].update(derive_from="surveys"),
         "feeds.tickets.derive_from: 'surveys' is not a feed of this mapping"),
        (lambda d: d.update(name="../etc"), "m.yaml: name: name '../etc' must match"),
    ],
)
def test_invalid_mappings_name_file_and_key(tmp_path: Path, change, message: str) -> None:
    with pytest.raises(MappingError) as e:
        load_mapping(mapping_file(tmp_path, _broken(change)))
    assert message in str(e.value)


def test_missing_source_column_is_named_with_the_file_columns(tmp_path: Path) -> None:
    src = write(tmp_path / "src.csv", "id,when,tech\nA,2021-01-01,T\n")
    with pytest.raises(MappingError) as e:
        run_mapping(load_mapping(mapping_file(tmp_path, VALID)), src)
    assert str(e.value) == (
        f"{src}: feeds.tickets.columns.created_at.column: source column 'at' is not in the file; its columns "
        f"are: 'id', 'when', 'tech'\n{src}: feeds.tickets.columns.updated_at.column: source column 'at' is not "
        "in the file; its columns are: 'id', 'when', 'tech'"
    )


def test_dry_run_cli_explains_each_rejection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tickets_mapping({
        "ticket_id": {"column": "id"},
        "created_at": {"column": "at", "formats": ["%Y-%m-%d"]},
        "updated_at": {"column": "at", "formats": ["%Y-%m-%d"]},
        "priority": {"column": "p", "values": {"High": "P1"}},
    })
    m = mapping_file(tmp_path, doc)
    src = write(tmp_path / "s.csv", "id,at,p,tech\nA,2021-01-01,High,T\nB,2021-13-01,High,T\n"
                                   "C,2021-01-02,Low,T\nD,2021-01-02,Low,T\n")
    report = dry_run(m, src)
    assert "mapped:   1" in report and "rejected: 3" in report
    # physical lines (the header is line 1)
    assert "      2  feeds.tickets.columns.priority.values\n             lines 4, 5\n" \
           "             e.g. value of column 'p' not in the value map of priority: Low" in report
    assert "      1  feeds.tickets.columns.created_at.formats\n             lines 3\n" in report
    assert "     ticket_id=A, created_at=2020-12-31T16:00:00+00:00, updated_at=" in report
    assert cli(["dry-run", str(m), "--source", str(src)]) == 0
    assert "rejected: 3" in capsys.readouterr().out
    assert cli(["dry-run", str(m), "--source", str(tmp_path / "nope.csv")]) == 2
    assert "source file not found" in capsys.readouterr().err


def test_split_by_day_writes_one_file_per_local_day(tmp_path: Path) -> None:
    doc = tickets_mapping({
        "ticket_id": {"column": "id"},
        "created_at": {"column": "at", "formats": ["%Y-%m-%d %H:%M"]},
        "updated_at": {"column": "at", "formats": ["%Y-%m-%d %H:%M"]},
    })
    doc["output"] = {"format": "csv", "split_by_day": {"tickets": "created_at"}}
    doc["feeds"]["technicians"] = {
        "derive_from": "tickets", "distinct_on": ["technician_id"],
        "columns": {"technician_id": {"column": "tech"}, "name": {"column": "tech"},
                    "team_id": {"constant": "t1"}, "hire_date": {"constant": "2020-01-01"},
                    "valid_from": {"constant": "2020-01-01"}},
    }
    # 2021-01-02 07:30 in Shanghai is still 2021-01-01 in UTC: the day is cut in the source zone
    src = write(tmp_path / "s.csv", "id,at,tech\nA,2021-01-02 07:30,T1\nB,2021-01-01 23:00,T2\nC,2021-01-02 09:00,T1\n")
    landing = tmp_path / "landing"
    result = apply_mapping(mapping_file(tmp_path, doc), src, landing, as_of=dt.date(2021, 2, 1))
    assert [p.name for p in result.feeds["tickets"].paths] == ["2021-01-01_t.csv", "2021-01-02_t.csv"]
    assert [line.split(",")[0] for line in (landing / "tickets" / "2021-01-01_t.csv").read_text().splitlines()] \
        == ["ticket_id", "B"]
    assert [line.split(",")[0] for line in (landing / "tickets" / "2021-01-02_t.csv").read_text().splitlines()] \
        == ["ticket_id", "A", "C"]
    assert sorted(p.name for p in (landing / "technicians").iterdir()) == ["2021-01-01_t.csv"]
    assert result.rejected_path.name == "2021-02-01_t.csv"  # the rejected rows of this run: run date


def test_split_by_day_names_a_timestamp_column(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(VALID))
    doc["output"] = {"split_by_day": {"tickets": "status", "surveys": "responded_at"}}
    with pytest.raises(MappingError) as e:
        load_mapping(mapping_file(tmp_path, doc))
    assert "output.split_by_day.tickets: 'status' is not a timestamp or date column of tickets" in str(e.value)
    assert "output.split_by_day.surveys: 'surveys' is not a feed of this mapping" in str(e.value)
