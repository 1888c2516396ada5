"""Feed mappings (issue 7): each feature on tiny hand-made files, exact mapped values, rejected rows
with the failing rule, and invalid mapping files with their messages."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest
import yaml

from ingestion.export_mapping import (
    MappingError,
    apply_mapping,
    dry_run,
    load_mapping,
    mapped_rows,
    rejected_rows,
    run_mapping,
)
from ingestion.export_mapping.__main__ import main as cli

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
    doc = tickets_mapping(
        {
            "ticket_id": {"column": "Number"},
            "created_at": {"column": "opened", "formats": ["%d-%m-%Y %H:%M", "%d/%m/%Y %H:%M:%S"]},
            "updated_at": {"column": "opened", "formats": ["%d-%m-%Y %H:%M", "%d/%m/%Y %H:%M:%S"], "timezone": "UTC"},
        }
    )
    r, rows, rejected = run(
        tmp_path,
        doc,
        (
            "Number,opened,tech\r\n"
            "INC1,03-04-2021 09:30,T1\r\n"
            "INC2,03/04/2021 23:15:10,T2\r\n"
            "INC3,2021-04-03 09:30,T1\r\n"
        ),
    )
    assert [(x["ticket_id"], x["created_at"], x["updated_at"], x["priority"], x["service_type"]) for x in rows] == [
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
    doc = tickets_mapping(
        {
            "ticket_id": {"column": "id"},
            "created_at": {"column": "d", "date_order": order},
            "updated_at": {"column": "d", "date_order": order},
        }
    )
    _, rows, rejected = run(tmp_path, doc, "id,d,tech\nA,03-04-2021,T\nB,03/04/2021 00:00,T\n")
    assert rejected == []
    assert [x["created_at"] for x in rows] == [ts(expected), ts(expected)]


def test_null_tokens_value_maps_booleans_and_defaults(tmp_path: Path) -> None:
    doc = tickets_mapping(
        {
            "ticket_id": {"column": "id"},
            "created_at": {"constant": "2021-01-01T08:00:00+08:00", "formats": ["iso8601"]},
            "updated_at": {"constant": "2021-01-01 08:00", "formats": ["iso8601"]},
            "priority": {"column": "prio", "values": {"1 - Critical": "P1", "3 - Moderate": "P3"}},
            "channel": {"column": "via", "values": {"Phone": "phone"}, "default": "web"},
            "first_time_fix": {"column": "ftf", "values": {"Y": True, "N": False}},
            "customer_id": {"column": "caller"},
        }
    )
    _, rows, rejected = run(
        tmp_path,
        doc,
        (
            "id,prio,via,ftf,caller,tech\n"
            "A,3 - Moderate,Phone,Y,?,T\n"
            "B,1 - Critical,Chat,N,C9,T\n"
            "C,2 - High,Phone,?,C1,T\n"
            "D,?,Phone,maybe,C2,T\n"
        ),
    )
    assert [
        (
            x["ticket_id"],
            x["priority"],
            x["channel"],
            x["first_time_fix"],
            x["customer_id"],
            x["created_at"],
            x["updated_at"],
        )
        for x in rows
    ] == [
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
    doc = tickets_mapping(
        {
            "ticket_id": {"column": "id"},
            "created_at": {"columns": ["day", "time"], "formats": ["%Y-%m-%d %H:%M:%S"], "timezone": "UTC"},
            "first_response_at": {"base": "created_at", "add": [{"seconds": "speed"}]},
            "resolved_at": {
                "base": "first_response_at",
                "add": [{"duration": "talk"}],
                "when": {"column": "solved", "equals": "Y"},
            },
            "updated_at": {"base": "first_response_at", "add": [{"duration": "talk"}], "fallback": "created_at"},
        }
    )
    _, rows, rejected = run(
        tmp_path,
        doc,
        (
            "id,day,time,speed,talk,solved,tech\n"
            "A,2021-01-01,9:12:58,109,0:02:23,Y,T\n"
            "B,2021-01-01,23:59:00,61.5,1:00:00,N,T\n"
            "C,2021-01-02,10:00:00,,,N,T\n"
            "D,2021-01-02,10:00:00,5,2 min,Y,T\n"
            "E,2021-01-02,10:00:00,five,0:00:01,Y,T\n"
        ),
    )
    got = {x["ticket_id"]: (x["created_at"], x["first_response_at"], x["resolved_at"], x["updated_at"]) for x in rows}
    assert got == {
        "A": (
            ts("2021-01-01T09:12:58+00:00"),
            ts("2021-01-01T09:14:47+00:00"),
            ts("2021-01-01T09:17:10+00:00"),
            ts("2021-01-01T09:17:10+00:00"),
        ),
        "B": (
            ts("2021-01-01T23:59:00+00:00"),
            ts("2021-01-02T00:00:01.500+00:00"),
            None,
            ts("2021-01-02T01:00:01.500+00:00"),
        ),
        "C": (ts("2021-01-02T10:00:00+00:00"), None, None, ts("2021-01-02T10:00:00+00:00")),
    }
    rules = {x["row_number"]: x["rule"] for x in rejected}
    assert rules == {
        4: "feeds.tickets.columns.resolved_at.add[0].duration",
        5: "feeds.tickets.columns.first_response_at.add[0].seconds",
    }
    d = next(x for x in rejected if x["row_number"] == 4)
    assert "column 'talk' is not a duration H:MM:SS: 2 min" in d["reason"]


def test_identifier_from_several_columns(tmp_path: Path) -> None:
    doc = tickets_mapping(
        {
            "ticket_id": {"columns": ["site", "no"], "separator": "/", "prefix": "SR-"},
            "created_at": {"constant": "2021-01-01T00:00:00Z", "formats": ["iso8601"]},
            "updated_at": {"constant": "2021-01-01T00:00:00Z", "formats": ["iso8601"]},
        }
    )
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
    r, rows, rejected = run(
        tmp_path,
        doc,
        (
            "number,state,mods,tech\n"
            "I1,New,0,T\n"
            "I1,Active,10,T\n"  # 10 > 9 numerically (as text '9' > '10')
            "I1,New,9,T\n"
            "I2,New,2,T\n"
            "I2,Active,2,T\n"  # tie: the later row wins
            "I3,Bogus,1,T\n"
            "I3,New,0,T\n"
        ),
    )
    assert [(x["ticket_id"], x["status"]) for x in rows] == [("I1", "in_progress"), ("I2", "in_progress")]
    assert [(x["row_number"], x["rule"]) for x in rejected] == [(6, "feeds.tickets.columns.status.values")]
    assert r.results["tickets"].superseded == 4


def test_one_source_several_feeds_filter_and_derived_technicians(tmp_path: Path) -> None:
    doc = {
        "name": "calls",
        "source": {"timezone": "UTC"},
        "feeds": {
            "tickets": {
                "columns": {
                    "ticket_id": {"column": "id"},
                    "created_at": {"column": "at", "formats": ["%Y-%m-%d %H:%M"]},
                    "updated_at": {"column": "at", "formats": ["%Y-%m-%d %H:%M"]},
                    "status": {"constant": "resolved"},
                    "resolved_at": {"base": "created_at"},
                    "service_type": {"constant": "technical_support"},
                    "priority": {"constant": "P3"},
                    "technician_id": {"column": "agent"},
                }
            },
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
    r, tickets, _ = run(
        tmp_path,
        doc,
        (
            "id,at,agent,grp,rating\n"
            "1,2021-01-05 10:00,Ann,G2,5\n"
            "2,2021-01-03 10:00,Ann,G1,\n"
            "3,2021-01-04 10:00,Ann,G1,7\n"
            "4,2021-01-02 10:00,Bob,G9,2\n"
            "5,2021-01-01 10:00,Bot,G9,4\n"
            "6,bad,Cy,G3,4\n"
        ),
    )
    assert [x["ticket_id"] for x in tickets] == ["1", "2", "3", "4", "5"]
    surveys = mapped_rows(r, "surveys")
    assert [(x["response_id"], x["overall_score"]) for x in surveys] == [("1", 5), ("4", 2)]
    assert [(x["row_number"], x["rule"]) for x in rejected_rows(r, "surveys")] == [
        (3, "contract.surveys.overall_score.max"),
        (6, "feeds.surveys.columns.responded_at.formats"),
    ]
    assert r.results["surveys"].filtered_out == 2
    techs = {
        x["technician_id"]: (x["team_id"], x["team_name"], x["hire_date"], x["valid_from"])
        for x in mapped_rows(r, "technicians")
    }
    # Cy's only ticket was rejected, so Cy is no technician; Ann's team is her most frequent group
    assert techs == {
        "Ann": ("G1", "G2", dt.date(2021, 1, 3), dt.date(2020, 1, 1)),
        "Bob": ("G9", "G9", dt.date(2021, 1, 2), dt.date(2020, 1, 1)),
        "Bot": ("G9", "G9", dt.date(2021, 1, 1), dt.date(2020, 1, 1)),
    }


def test_apply_writes_contract_files_and_rejected_rows(tmp_path: Path) -> None:
    doc = tickets_mapping(
        {
            "ticket_id": {"column": "id"},
            "created_at": {"column": "at", "formats": ["%Y-%m-%d %H:%M"]},
            "updated_at": {"column": "at", "formats": ["%Y-%m-%d %H:%M"]},
            "reopened_count": {"column": "reopens"},
        }
    )
    doc["feeds"]["technicians"] = {
        "derive_from": "tickets",
        "distinct_on": ["technician_id"],
        "columns": {
            "technician_id": {"column": "tech"},
            "name": {"column": "tech"},
            "team_id": {"constant": "t1"},
            "hire_date": {"constant": "2020-01-01"},
            "valid_from": {"constant": "2020-01-01"},
        },
    }
    src = write(tmp_path / "export.csv", "id,at,tech,reopens\nA,2021-01-01 08:00,T1,0\nB,2021-01-01 08:00,T1,x\n")
    landing = tmp_path / "data" / "landing"
    result = apply_mapping(mapping_file(tmp_path, doc), src, landing, as_of=dt.date(2021, 1, 2))
    path = landing / "tickets" / "2021-01-02_t.csv"
    assert result.feeds["tickets"].path == path
    with path.open(encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == [
        "ticket_id",
        "created_at",
        "first_response_at",
        "resolved_at",
        "closed_at",
        "updated_at",
        "status",
        "service_type",
        "priority",
        "channel",
        "technician_id",
        "customer_id",
        "product_id",
        "onsite_visits",
        "first_time_fix",
        "reopened_count",
        "sla_due_at",
    ]
    assert rows[1:] == [
        [
            "A",
            "2021-01-01T00:00:00+00:00",
            "",
            "",
            "",
            "2021-01-01T00:00:00+00:00",
            "open",
            "repair",
            "P2",
            "",
            "T1",
            "",
            "",
            "",
            "",
            "0",
            "",
        ]
    ]
    tech = (landing / "technicians" / "2021-01-02_t.csv").read_text(encoding="utf-8").splitlines()
    assert tech == [
        "technician_id,name,team_id,team_name,region,level,hire_date,leave_date,manager_id,valid_from,updated_at",
        "T1,T1,t1,,,,2020-01-01,,,2020-01-01,",
    ]
    assert result.rejected_path == tmp_path / "data" / "mapping_rejected" / "2021-01-02_t.csv"
    with result.rejected_path.open(encoding="utf-8") as f:
        rej = list(csv.DictReader(f))
    assert len(rej) == 1
    assert (rej[0]["feed"], rej[0]["row_number"], rej[0]["rule"], rej[0]["source_file"]) == (
        "tickets",
        "2",
        "feeds.tickets.columns.reopened_count.type",
        str(src),
    )
    assert rej[0]["reason"] == "column 'reopens' is not an integer for reopened_count: x"
    assert json.loads(rej[0]["record"]) == {"id": "B", "at": "2021-01-01 08:00", "tech": "T1", "reopens": "x"}
    assert not list(landing.glob("*/.*.tmp"))


def test_excel_and_gb18030_sources_map_like_utf8_csv(tmp_path: Path) -> None:
    import openpyxl

    doc = tickets_mapping(
        {
            "ticket_id": {"column": "单号"},
            "created_at": {"columns": ["日期", "时间"], "formats": ["%Y-%m-%d %H:%M:%S"]},
            "updated_at": {"columns": ["日期", "时间"], "formats": ["%Y-%m-%d %H:%M:%S"]},
            "first_response_at": {"base": "created_at", "add": [{"duration": "等待"}]},
            "onsite_visits": {"column": "上门"},
        }
    )
    doc["feeds"]["tickets"]["columns"]["technician_id"] = {"column": "工程师"}
    text = "单号,日期,时间,等待,上门,工程师\nA,2021-01-01,9:05:00,0:01:00,2,张三\n"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "导出"
    ws.append(["单号", "日期", "时间", "等待", "上门", "工程师"])
    ws.append(["A", "2021-01-01", dt.time(9, 5), dt.time(0, 1), 2, "张三"])
    wb.save(tmp_path / "src.xlsx")
    results = []
    for src in (
        write(tmp_path / "u.csv", "\ufeff" + text),
        write(tmp_path / "g.csv", text, "gb18030"),
        tmp_path / "src.xlsx",
    ):
        d = json.loads(json.dumps(doc))
        d["source"]["encoding"] = "gb18030" if src.name == "g.csv" else "utf-8"
        if src.suffix == ".xlsx":
            d["source"]["sheet"] = "导出"
        r = run_mapping(load_mapping(mapping_file(tmp_path, d)), src, work_dir=tmp_path / "work")
        results.append(mapped_rows(r, "tickets"))
    expected = [
        {
            "ticket_id": "A",
            "created_at": ts("2021-01-01T01:05:00+00:00"),
            "first_response_at": ts("2021-01-01T01:06:00+00:00"),
            "resolved_at": None,
            "closed_at": None,
            "updated_at": ts("2021-01-01T01:05:00+00:00"),
            "status": "open",
            "service_type": "repair",
            "priority": "P2",
            "channel": None,
            "technician_id": "张三",
            "customer_id": None,
            "product_id": None,
            "onsite_visits": 2,
            "first_time_fix": None,
            "reopened_count": None,
            "sla_due_at": None,
        }
    ]
    assert results == [expected, expected, expected]


def test_literals_are_bound_not_pasted(tmp_path: Path) -> None:
    evil = "x'); drop table src; --"
    doc = tickets_mapping(
        {
            "ticket_id": {"column": "id", "values": {"A": evil}},
            "created_at": {"constant": "2021-01-01T00:00:00Z", "formats": ["iso8601"]},
            "updated_at": {"constant": "2021-01-01T00:00:00Z", "formats": ["iso8601"]},
            "customer_id": {"constant": 'O\'Brien "$p0"'},
        }
    )
    r, rows, _ = run(tmp_path, doc, "id,tech\nA,T\n")
    assert [(x["ticket_id"], x["customer_id"]) for x in rows] == [(evil, 'O\'Brien "$p0"')]
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


VALID = tickets_mapping(
    {
        "ticket_id": {"column": "id"},
        "created_at": {"column": "at", "formats": ["%Y-%m-%d"]},
        "updated_at": {"column": "at", "formats": ["%Y-%m-%d"]},
    }
)


def _broken(change) -> dict:
    doc = json.loads(json.dumps(VALID))
    change(doc)
    return doc


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["feeds"].update(tikets=d["feeds"].pop("tickets")),
            "m.yaml: feeds.tikets: unknown feed 'tikets'; feeds are: technicians, customers",
        ),
        (
            lambda d: d["feeds"]["tickets"]["columns"].update(ticket_id={"column": "a; drop table x"}),
            "m.yaml: feeds.tickets.columns.ticket_id: source column name 'a; drop table x' is not allowed",
        ),
        (
            lambda d: d["feeds"]["tickets"]["columns"].update({"x; drop table y": {"constant": 1}}),
            "m.yaml: feeds.tickets.columns.x; drop table y: not a column of feed tickets",
        ),
        (
            lambda d: d["feeds"]["tickets"]["columns"]["ticket_id"].update(colum="id"),
            "m.yaml: feeds.tickets.columns.ticket_id.colum: unknown key",
        ),
        (lambda d: d.update(sorce={}), "m.yaml: sorce: unknown key"),
        (
            lambda d: d["feeds"]["tickets"]["columns"].pop("priority"),
            "m.yaml: feeds.tickets.columns: required column 'priority' of feed tickets has no rule",
        ),
        (
            lambda d: d["feeds"]["tickets"]["columns"]["created_at"].update(formats=["%d-%m-%Y", "%m/%d/%Y"]),
            "mix day-first and month-first dates",
        ),
        (
            lambda d: d["source"].update(timezone="Mars/Olympus"),
            "m.yaml: source.timezone: unknown time zone 'Mars/Olympus'",
        ),
        (
            lambda d: d["source"].pop("timezone"),
            "m.yaml: feeds.tickets.columns.created_at: say the time zone of naive timestamps",
        ),
        (
            lambda d: d["feeds"]["tickets"]["columns"].update(first_response_at={"base": "resolved_at"}),
            "first_response_at.base: 'resolved_at' must be a target column defined above this one",
        ),
        (
            lambda d: d["feeds"]["tickets"]["columns"].update(customer_id={"column": "a", "constant": "b"}),
            "needs exactly one of: column, columns, constant, base (got column, constant)",
        ),
        (
            lambda d: d["feeds"]["tickets"].update(derive_from="surveys"),
            "feeds.tickets.derive_from: 'surveys' is not a feed of this mapping",
        ),
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
    doc = tickets_mapping(
        {
            "ticket_id": {"column": "id"},
            "created_at": {"column": "at", "formats": ["%Y-%m-%d"]},
            "updated_at": {"column": "at", "formats": ["%Y-%m-%d"]},
            "priority": {"column": "p", "values": {"High": "P1"}},
        }
    )
    m = mapping_file(tmp_path, doc)
    src = write(
        tmp_path / "s.csv",
        "id,at,p,tech\nA,2021-01-01,High,T\nB,2021-13-01,High,T\nC,2021-01-02,Low,T\nD,2021-01-02,Low,T\n",
    )
    report = dry_run(m, src)
    assert "mapped:   1" in report and "rejected: 3" in report
    # physical lines (the header is line 1)
    assert (
        "      2  feeds.tickets.columns.priority.values\n             lines 4, 5\n"
        "             e.g. value of column 'p' not in the value map of priority: Low" in report
    )
    assert "      1  feeds.tickets.columns.created_at.formats\n             lines 3\n" in report
    assert "     ticket_id=A, created_at=2020-12-31T16:00:00+00:00, updated_at=" in report
    assert cli(["dry-run", str(m), "--source", str(src)]) == 0
    assert "rejected: 3" in capsys.readouterr().out
    assert cli(["dry-run", str(m), "--source", str(tmp_path / "nope.csv")]) == 2
    assert "source file not found" in capsys.readouterr().err


def test_split_by_day_writes_one_file_per_local_day(tmp_path: Path) -> None:
    doc = tickets_mapping(
        {
            "ticket_id": {"column": "id"},
            "created_at": {"column": "at", "formats": ["%Y-%m-%d %H:%M"]},
            "updated_at": {"column": "at", "formats": ["%Y-%m-%d %H:%M"]},
        }
    )
    doc["output"] = {"format": "csv", "split_by_day": {"tickets": "created_at"}}
    doc["feeds"]["technicians"] = {
        "derive_from": "tickets",
        "distinct_on": ["technician_id"],
        "columns": {
            "technician_id": {"column": "tech"},
            "name": {"column": "tech"},
            "team_id": {"constant": "t1"},
            "hire_date": {"constant": "2020-01-01"},
            "valid_from": {"constant": "2020-01-01"},
        },
    }
    # 2021-01-02 07:30 in Shanghai is still 2021-01-01 in UTC: the day is cut in the source zone
    src = write(tmp_path / "s.csv", "id,at,tech\nA,2021-01-02 07:30,T1\nB,2021-01-01 23:00,T2\nC,2021-01-02 09:00,T1\n")
    landing = tmp_path / "landing"
    result = apply_mapping(mapping_file(tmp_path, doc), src, landing, as_of=dt.date(2021, 2, 1))
    assert [p.name for p in result.feeds["tickets"].paths] == ["2021-01-01_t.csv", "2021-01-02_t.csv"]
    assert [line.split(",")[0] for line in (landing / "tickets" / "2021-01-01_t.csv").read_text().splitlines()] == [
        "ticket_id",
        "B",
    ]
    assert [line.split(",")[0] for line in (landing / "tickets" / "2021-01-02_t.csv").read_text().splitlines()] == [
        "ticket_id",
        "A",
        "C",
    ]
    assert sorted(p.name for p in (landing / "technicians").iterdir()) == ["2021-01-01_t.csv"]
    assert result.rejected_path.name == "2021-02-01_t.csv"  # the rejected rows of this run: run date


def test_split_by_day_names_a_timestamp_column(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(VALID))
    doc["output"] = {"split_by_day": {"tickets": "status", "surveys": "responded_at"}}
    with pytest.raises(MappingError) as e:
        load_mapping(mapping_file(tmp_path, doc))
    assert "output.split_by_day.tickets: 'status' is not a timestamp or date column of tickets" in str(e.value)
    assert "output.split_by_day.surveys: 'surveys' is not a feed of this mapping" in str(e.value)


# --- issue 16: dates cannot be silently wrong, bad records are rejected one by one -------------------------


def dated(column_rule: dict, **source: object) -> dict:
    doc = tickets_mapping(
        {
            "ticket_id": {"column": "id"},
            "created_at": {"constant": "2021-06-01T00:00:00Z", "formats": ["iso8601"]},
            "updated_at": column_rule,
        }
    )
    doc["source"].update(source)
    return doc


def test_declared_order_rejects_rows_of_the_other_order_and_reports_ambiguity(tmp_path: Path) -> None:
    """month_first declared on a file with both kinds: 13/04 parses only day-first and is rejected (it used to
    be rejected as 'no format'; its day <= 12 neighbours were swapped without a word): now the rule says so,
    and the ambiguous share is counted."""
    doc = dated({"column": "d", "date_order": "month_first"})
    r, rows, rejected = run(
        tmp_path,
        doc,
        (
            "id,d,tech\n"
            "A,03/04/2021 10:00,T\n"  # ambiguous: March 4 (declared) or April 3
            "B,13/04/2021 10:00,T\n"  # only day-first: rejected, never swapped
            "C,04/13/2021 10:00,T\n"  # only month-first: April 13
            "D,05/05/2021 10:00,T\n"  # the same date both ways: not ambiguous
        ),
    )
    assert [(x["ticket_id"], x["updated_at"]) for x in rows] == [
        ("A", ts("2021-03-04T10:00:00+08:00")),
        ("C", ts("2021-04-13T10:00:00+08:00")),
        ("D", ts("2021-05-05T10:00:00+08:00")),
    ]
    assert [(x["row_number"], x["line"], x["rule"]) for x in rejected] == [
        (2, 3, "feeds.tickets.columns.updated_at.date_order")
    ]
    assert rejected[0]["reason"].startswith(
        "column 'd' of updated_at parses only day_first, not month_first as declared; day and month are not "
        "swapped: 13/04/2021 10:00"
    )
    (check,) = r.results["tickets"].date_checks
    assert (
        check.column,
        check.order,
        check.declared,
        check.values,
        check.ambiguous,
        check.contrary,
        check.first_ambiguous,
    ) == ("updated_at", "month_first", True, 4, 1, 1, [2])
    assert r.refusals() == []  # declared: the ambiguous row is read as declared, and reported
    src = tmp_path / "src.csv"
    text = dry_run(mapping_file(tmp_path, doc), src)
    assert (
        "   day/month: feeds.tickets.columns.updated_at: 1 of 4 rows (25.0 %) parse both day-first and "
        "month-first; read month_first, declared; 1 rows parse only day_first and are rejected (check the "
        "order); first ambiguous lines 2"
    ) in text


def test_explicit_formats_get_the_same_check(tmp_path: Path) -> None:
    doc = dated({"column": "d", "formats": ["%d-%m-%Y %H:%M"]})
    r, rows, rejected = run(tmp_path, doc, "id,d,tech\nA,02-01-2021 08:00,T\nB,01-31-2021 08:00,T\n")
    assert [x["updated_at"] for x in rows] == [ts("2021-01-02T08:00:00+08:00")]
    assert [(x["line"], x["rule"]) for x in rejected] == [(3, "feeds.tickets.columns.updated_at.formats")]
    assert "parses only month_first, not day_first as declared" in rejected[0]["reason"]
    assert [(c.ambiguous, c.contrary) for c in r.results["tickets"].date_checks] == [(1, 1)]


AMBIGUOUS_CSV = "id,d,tech\nA,13-04-2021,T\nB,03-04-2021,T\nC,25-12-2021,T\nD,07-08-2021,T\n"


def test_guessed_order_with_ambiguous_rows_refuses_to_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = dated({"column": "d", "date_order": "auto"})
    m = mapping_file(tmp_path, doc)
    src = write(tmp_path / "src.csv", AMBIGUOUS_CSV)
    landing = tmp_path / "out" / "landing"
    with pytest.raises(MappingError) as e:
        apply_mapping(m, src, landing, as_of=dt.date(2021, 12, 31))
    assert str(e.value) == (
        f"{m}: feeds.tickets.columns.updated_at.date_order: the order is guessed (auto) but 2 of 4 rows (50.0 %) "
        "parse both day-first and month-first (first lines 3, 5); say date_order: day_first or month_first; "
        "nothing was written"
    )
    assert not landing.exists() and not (tmp_path / "out" / "mapping_rejected").exists()
    report = dry_run(m, src)
    assert "read day_first, guessed (date_order: auto)" in report
    assert (
        "apply would REFUSE to write:\n   feeds.tickets.columns.updated_at.date_order: the order is guessed" in report
    )
    assert cli(["apply", str(m), "--source", str(src), "--landing", str(landing)]) == 2
    assert "2 of 4 rows (50.0 %) parse both" in capsys.readouterr().err


def test_guessed_order_without_ambiguity_writes(tmp_path: Path) -> None:
    doc = dated({"column": "d", "date_order": "auto"})
    r, rows, rejected = run(
        tmp_path, doc, "id,d,tech\nA,12-13-2021,T\nB,01-25-2021,T\nC,05-05-2021,T\nD,25-01-2021,T\n"
    )
    assert [x["updated_at"] for x in rows] == [
        ts("2021-12-13T00:00:00+08:00"),
        ts("2021-01-25T00:00:00+08:00"),
        ts("2021-05-05T00:00:00+08:00"),
    ]
    assert [(x["line"], x["rule"]) for x in rejected] == [(5, "feeds.tickets.columns.updated_at.date_order")]
    assert "parses only day_first, not month_first as guessed from the other rows" in rejected[0]["reason"]
    assert r.refusals() == []


@pytest.mark.parametrize(
    ("order", "text", "expected"),
    [
        ("day_first", "15-03-16 10:00", "2016-03-15T10:00:00+08:00"),
        ("day_first", "01/12/99", "1999-12-01T00:00:00+08:00"),
        ("day_first", "15.03.2016 10:00:30", "2016-03-15T10:00:30+08:00"),
        ("month_first", "03-15-16 10:00", "2016-03-15T10:00:00+08:00"),
        ("month_first", "12/01/68", "2068-12-01T00:00:00+08:00"),  # 00-68 -> 20yy (then out of the window)
    ],
)
def test_two_digit_years_work_with_either_order(tmp_path: Path, order: str, text: str, expected: str) -> None:
    doc = dated({"column": "d", "date_order": order}, plausible={"from": "1990-01-01", "until": "2099-12-31"})
    _, rows, rejected = run(tmp_path, doc, f"id,d,tech\nA,{text},T\n")
    assert rejected == []
    assert [x["updated_at"] for x in rows] == [ts(expected)]


def test_plausible_window_rejects_absurd_timestamps(tmp_path: Path) -> None:
    """%Y on a two-digit year reads year 0016; 9999 and 1970 epochs are no dates of a ticket: rejected."""
    future = (dt.datetime.now(UTC) + dt.timedelta(days=3)).strftime("%d-%m-%Y %H:%M")
    doc = dated({"column": "d", "formats": ["%d-%m-%Y %H:%M"]})
    _, rows, rejected = run(
        tmp_path,
        doc,
        (
            "id,d,tech\n"
            "A,15-03-16 10:00,T\n"
            "B,01-01-1970 08:00,T\n"
            "C,31-12-9999 00:00,T\n"
            "D,01-01-1990 00:00,T\n"
            f"E,{future},T\n"
        ),
    )
    assert [x["ticket_id"] for x in rows] == ["D"]
    assert [(x["line"], x["rule"]) for x in rejected] == [
        (2, "feeds.tickets.columns.updated_at.plausible"),
        (3, "feeds.tickets.columns.updated_at.plausible"),
        (4, "feeds.tickets.columns.updated_at.plausible"),
        (6, "feeds.tickets.columns.updated_at.plausible"),
    ]
    assert rejected[0]["reason"] == (
        "updated_at is outside the plausible window 1990-01-01 .. one day after the "
        "run (widen it with source.plausible): 0016-03-15 01:54:17+00"
    )


def test_plausible_window_is_configurable_per_source_and_column(tmp_path: Path) -> None:
    doc = dated(
        {"column": "d", "formats": ["%Y-%m-%d %H:%M"], "plausible": {"until": "2030-12-31"}},
        plausible={"from": "1980-01-01"},
    )
    _, rows, rejected = run(
        tmp_path,
        doc,
        ("id,d,tech\nA,1980-01-01 00:00,T\nB,1979-12-31 23:59,T\nC,2030-12-31 23:59,T\nD,2031-01-01 00:00,T\n"),
    )
    assert [x["ticket_id"] for x in rows] == ["A", "C"]
    assert [(x["line"], x["rule"]) for x in rejected] == [
        (3, "feeds.tickets.columns.updated_at.plausible"),
        (5, "feeds.tickets.columns.updated_at.plausible"),
    ]
    assert (
        "window 1980-01-01 .. 2030-12-31 (widen it with feeds.tickets.columns.updated_at.plausible)"
        in rejected[1]["reason"]
    )
    bad = json.loads(json.dumps(doc))
    bad["source"]["plausible"] = {"from": "2020-01-01", "until": "2019-01-01"}
    with pytest.raises(MappingError, match=r"m.yaml: source.plausible: until 2019-01-01 is before from 2020-01-01"):
        load_mapping(mapping_file(tmp_path, bad))
    bad["source"]["plausible"] = {"since": "2020-01-01"}
    with pytest.raises(MappingError, match=r"m.yaml: source.plausible.since: unknown key"):
        load_mapping(mapping_file(tmp_path, bad))


# a ticket's id and times from the columns `id` and `at`
ID_AND_TIMES = {
    "ticket_id": {"column": "id"},
    "created_at": {"column": "at", "formats": ["%Y-%m-%d %H:%M"]},
    "updated_at": {"column": "at", "formats": ["%Y-%m-%d %H:%M"]},
}
MALFORMED_CSV = (
    "id,at,tech,note\r\n"  # line 1
    'A,2021-01-01 08:00,T1,"two\r\nlines"\r\n'  # lines 2-3
    "B,2021-01-01 09:00,T1,plain\r\n"  # line 4
    "\r\n"  # line 5: blank, not a record
    "C,2021-01-01 10:00,T1,a,b\r\n"  # line 6: too many fields
    'D,yesterday,T1,"he said ""hi"""\r\n'  # line 7: maps badly (created_at)
    "E,2021-01-01 11:00,T2,ok\r\n"  # line 8
    'F,2021-01-01 12:00,T2,"cut off\r\n'  # line 9: unterminated quote, the last record
)


def test_malformed_records_are_rejected_with_physical_lines_and_the_rest_loads(tmp_path: Path) -> None:
    doc = tickets_mapping(
        {
            **ID_AND_TIMES,
            "customer_id": {"column": "note"},
        }
    )
    src = write(tmp_path / "src.csv", MALFORMED_CSV)
    landing = tmp_path / "data" / "landing"
    result = apply_mapping(mapping_file(tmp_path, doc), src, landing, as_of=dt.date(2021, 1, 2))
    assert (result.feeds["tickets"].mapped, result.feeds["tickets"].rejected, result.malformed, result.rejected) == (
        3,
        1,
        2,
        3,
    )
    with (landing / "tickets" / "2021-01-02_t.csv").open(encoding="utf-8", newline="") as f:
        assert [(r["ticket_id"], r["customer_id"]) for r in csv.DictReader(f)] == [
            ("A", "two\r\nlines"),
            ("B", "plain"),
            ("E", "ok"),
        ]
    with result.rejected_path.open(encoding="utf-8", newline="") as f:
        rej = [(r["feed"], r["row_number"], r["line"], r["rule"], r["reason"]) for r in csv.DictReader(f)]
    assert rej == [
        # records are numbered in the file (the blank line is none), malformed ones included
        ("(source)", "3", "6", "source.csv.too_many_fields", "line 6: Expected Number of Columns: 4 Found: 5"),
        ("(source)", "6", "9", "source.csv.unterminated_quote", "line 9: Value with unterminated quote found."),
        (
            "tickets",
            "4",
            "7",
            "feeds.tickets.columns.created_at.formats",
            "column 'at' of created_at matches none of the formats [%Y-%m-%d %H:%M]: yesterday; "
            "column 'at' of updated_at matches none of the formats [%Y-%m-%d %H:%M]: yesterday",
        ),
    ]
    report = dry_run(mapping_file(tmp_path, doc), src)
    assert (
        "== malformed source records: 2 (not read; the rest of the file is)\n"
        "          1  source.csv.too_many_fields\n             lines 6\n" in report
    )
    assert "      1  feeds.tickets.columns.created_at.formats\n             lines 7\n" in report


def test_max_rejected_share_refuses_and_is_validated(tmp_path: Path) -> None:
    doc = tickets_mapping(
        {
            "ticket_id": {"column": "id"},
            "created_at": {"column": "at", "formats": ["%Y-%m-%d %H:%M"]},
            "updated_at": {"column": "at", "formats": ["%Y-%m-%d %H:%M"]},
        }
    )
    doc["source"]["max_rejected_share"] = 0.4
    src = write(
        tmp_path / "src.csv",
        "id,at,tech\nA,2021-01-01 08:00,T\nB,2021-01-01 08:00,T\nC,2021-01-01 08:00,T,x\nD,soon,T\n",
    )
    m = mapping_file(tmp_path, doc)
    with pytest.raises(MappingError) as e:
        apply_mapping(m, src, tmp_path / "landing")
    assert str(e.value) == (
        f"{m}: source.max_rejected_share: tickets rejects 2 of 4 rows (50.0 %, 1 malformed "
        "source records), more than 40 %; nothing was written"
    )
    doc["source"]["max_rejected_share"] = 0.5
    assert apply_mapping(mapping_file(tmp_path, doc), src, tmp_path / "landing").feeds["tickets"].mapped == 2
    doc["source"]["max_rejected_share"] = 1.5
    with pytest.raises(
        MappingError,
        match=r"m.yaml: source.max_rejected_share: Input should be less than or "
        r"equal to 1",
    ):
        load_mapping(mapping_file(tmp_path, doc))


def test_split_by_day_on_a_date_column(tmp_path: Path) -> None:
    """It crashed apply with a raw BinderException (a bound zone the date expression does not use)."""
    doc = json.loads(json.dumps(VALID))
    doc["feeds"]["technicians"] = {
        "derive_from": "tickets",
        "distinct_on": ["technician_id"],
        "columns": {
            "technician_id": {"column": "tech"},
            "name": {"column": "tech"},
            "team_id": {"constant": "t1"},
            "hire_date": {"column": "at", "formats": ["%Y-%m-%d"], "pick": "min"},
            "valid_from": {"column": "at", "formats": ["%Y-%m-%d"], "pick": "min"},
        },
    }
    doc["output"] = {"split_by_day": {"technicians": "valid_from"}}
    src = write(tmp_path / "s.csv", "id,at,tech\nA,2021-01-03,T1\nB,2021-01-05,T2\nC,2021-01-04,T1\n")
    result = apply_mapping(mapping_file(tmp_path, doc), src, tmp_path / "landing", as_of=dt.date(2021, 2, 1))
    assert [p.name for p in result.feeds["technicians"].paths] == ["2021-01-03_t.csv", "2021-01-05_t.csv"]
    assert [p.name for p in result.feeds["tickets"].paths] == ["2021-01-03_t.csv"]


def test_per_record_sla_due_date_or_target_hours(tmp_path: Path) -> None:
    base = {
        "ticket_id": {"column": "id"},
        "created_at": {"column": "opened", "formats": ["%Y-%m-%d %H:%M"]},
        "updated_at": {"column": "opened", "formats": ["%Y-%m-%d %H:%M"]},
    }
    csv_text = "id,opened,due,target,tech\nA,2021-01-01 08:00,2021-01-02 08:00,4,T\nB,2021-01-01 09:00,,,T\n"
    _, rows, rejected = run(
        tmp_path, tickets_mapping({**base, "sla_due_at": {"column": "due", "formats": ["%Y-%m-%d %H:%M"]}}), csv_text
    )
    assert rejected == []
    assert [(x["ticket_id"], x["sla_due_at"]) for x in rows] == [("A", ts("2021-01-02T08:00:00+08:00")), ("B", None)]
    _, rows, rejected = run(
        tmp_path,
        tickets_mapping(
            {
                **base,
                "sla_due_at": {
                    "base": "created_at",
                    "add": [{"hours": "target"}],
                    "when": {"column": "target", "not_null": True},
                },
            }
        ),
        csv_text,
    )
    assert rejected == []
    assert [(x["ticket_id"], x["sla_due_at"]) for x in rows] == [("A", ts("2021-01-01T12:00:00+08:00")), ("B", None)]


def test_every_indicator_of_the_settings_has_its_inputs() -> None:
    from ingestion.contracts import FEEDS
    from ingestion.measures import indicator_inputs
    from ingestion.paths import DBT_PROJECT_DIR

    with (DBT_PROJECT_DIR / "seeds" / "indicator_settings.csv").open(encoding="utf-8") as f:
        codes = {row["indicator_code"] for row in csv.DictReader(f)}
    assert len(codes) == 15
    assert set(indicator_inputs()) == codes
    for code, inputs in indicator_inputs().items():  # every input is a column of a feed contract
        for feed, column in (*inputs.all_of, *inputs.any_of):
            assert feed in FEEDS and column in FEEDS[feed].column_names, (code, feed, column)
    assert indicator_inputs()["first_time_fix_rate"].any_of == (
        ("tickets", "first_time_fix"),
        ("tickets", "onsite_visits"),
    )


def test_dry_run_lists_the_indicators_the_source_cannot_support(tmp_path: Path) -> None:
    doc = tickets_mapping(
        {
            "ticket_id": {"column": "id"},
            "created_at": {"column": "at", "formats": ["%Y-%m-%d %H:%M"]},
            "updated_at": {"column": "at", "formats": ["%Y-%m-%d %H:%M"]},
            "resolved_at": {"column": "done", "formats": ["%Y-%m-%d %H:%M"]},
            "first_response_at": {"column": "answered", "formats": ["%Y-%m-%d %H:%M"]},
            "onsite_visits": {"constant": 1},
            "status": {"constant": "resolved"},
        }
    )
    src = write(tmp_path / "s.csv", "id,at,done,answered,tech\nA,2021-01-01 08:00,2021-01-01 09:00,,T\n")
    report = dry_run(mapping_file(tmp_path, doc), src)
    assert (
        "\nindicators this source cannot support (11 of 15; they are not measured, never 0):\n"
        "   csat                       needs surveys.responded_at, surveys.technician_id, surveys.overall_score\n"
        in report
    )
    assert (
        "   first_response_time        needs tickets.first_response_at (mapped, but empty in this source)\n" in report
    )
    assert "   reopen_rate                needs tickets.reopened_count\n" in report
    assert "   complaint_rate             needs complaints.received_at, complaints.technician_id\n" in report
    assert "   avg_handling_time" not in report and "   sla_attainment" not in report
    assert (
        "indicators that read a constant of the mapping (measured as the mapping says, not the source):\n"
        "   first_time_fix_rate        tickets.onsite_visits = 1" in report
    )


def test_one_command_for_your_own_export_checks_its_arguments_and_refuses_early(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """python -m orchestration.export_pipeline --mapping FILE --source FILE [--data DIR]: the argument errors and
    a refused apply end with exit 2 and a message before any pipeline step (the full run: test_external_pipeline)."""
    from orchestration.export_pipeline import main as pipeline

    m = mapping_file(tmp_path, dated({"column": "d", "date_order": "auto"}))
    src = write(tmp_path / "src.csv", AMBIGUOUS_CSV)
    with pytest.raises(SystemExit) as e:
        pipeline(["--mapping", str(m)])
    assert e.value.code == 2 and "--mapping needs --source FILE" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        pipeline(["pwc", "--mapping", str(m), "--source", str(src)])
    assert "give a built-in export or --mapping, not both" in capsys.readouterr().err
    assert pipeline(["--mapping", str(m), "--source", str(tmp_path / "nope.csv")]) == 2
    assert "nope.csv: source file not found" in capsys.readouterr().err
    data = tmp_path / "mine"
    assert pipeline(["--mapping", str(m), "--source", str(src), "--data", str(data)]) == 2
    out, err = capsys.readouterr()
    assert "feeds.tickets.columns.updated_at.date_order: the order is guessed (auto) but 2 of 4 rows" in err
    # the dry-run report came first: the rows that parse both ways and the refusal, before the error
    assert (
        "   day/month: feeds.tickets.columns.updated_at: 2 of 4 rows (50.0 %) parse both day-first and "
        "month-first" in out
    )
    assert "apply would REFUSE to write:\n" in out
    # nothing landed and no pipeline ran (only the data folder's Dagster settings and lock file exist)
    assert sorted(x.name for x in data.rglob("*") if x.is_file()) == [".warehouse.lock", "dagster.yaml"]


MALFORMED_JSONL = (
    '{"id": "A", "at": "2021-01-01 08:00", "tech": "T1", "note": "x"}\r\n'  # line 1
    "\n"  # line 2: empty, not a record
    '{"id": "B", "at": "2021-01-01 09:00", "tech": "T1", "note": {"k": 1}}\n'  # line 3: nested -> JSON text
    "[1, 2]\r\n"  # line 4: not an object
    '{"id": "C", "at": "yesterday", "tech": "T1"}\n'  # line 5: maps badly (created_at)
    '{"id": "D", "at": "2021-01-01 10:00", "tech": "T2", "note": null}\r\n'  # line 6
    '{"id": "E", "at": "2021-01-01 11:00", "tech": "T2", "id": "E2"}\n'  # line 7: a key twice
    '{"id": "3", "created'  # line 8: truncated, the last line
)


def test_malformed_jsonl_records_are_rejected_with_physical_lines_and_the_rest_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One bad line of a JSON lines source failed the whole file (DuckDB's `Malformed JSON ... line 8`); mixed
    CRLF/LF line endings and an empty line are read as lines."""
    doc = tickets_mapping(
        {
            **ID_AND_TIMES,
            "customer_id": {"column": "note"},
        }
    )
    src = write(tmp_path / "src.jsonl", MALFORMED_JSONL)
    m = mapping_file(tmp_path, doc)
    landing = tmp_path / "data" / "landing"
    result = apply_mapping(m, src, landing, as_of=dt.date(2021, 1, 2))
    assert (result.feeds["tickets"].mapped, result.feeds["tickets"].rejected, result.malformed, result.rejected) == (
        3,
        1,
        3,
        4,
    )
    with (landing / "tickets" / "2021-01-02_t.csv").open(encoding="utf-8", newline="") as f:
        assert [(r["ticket_id"], r["created_at"], r["customer_id"]) for r in csv.DictReader(f)] == [
            ("A", "2021-01-01T00:00:00+00:00", "x"),
            ("B", "2021-01-01T01:00:00+00:00", '{"k":1}'),
            ("D", "2021-01-01T02:00:00+00:00", ""),
        ]
    with result.rejected_path.open(encoding="utf-8", newline="") as f:
        rej = [(r["feed"], r["row_number"], r["line"], r["rule"], r["reason"], r["record"]) for r in csv.DictReader(f)]
    assert rej == [
        # records are numbered in the file (the empty line is none), malformed ones included
        (
            "(source)",
            "3",
            "4",
            "source.jsonl.not_an_object",
            "line 4: a JSON array, not an object",
            '{"_raw_record":"[1, 2]"}',
        ),
        (
            "(source)",
            "6",
            "7",
            "source.jsonl.duplicate_key",
            "line 7: an object that names a key more than once",
            '{"_raw_record":"{\\"id\\": \\"E\\", \\"at\\": \\"2021-01-01 11:00\\", \\"tech\\": \\"T2\\", '
            '\\"id\\": \\"E2\\"}"}',
        ),
        (
            "(source)",
            "7",
            "8",
            "source.jsonl.invalid_json",
            "line 8: not valid JSON (cut off or malformed)",
            '{"_raw_record":"{\\"id\\": \\"3\\", \\"created"}',
        ),
        (
            "tickets",
            "4",
            "5",
            "feeds.tickets.columns.created_at.formats",
            "column 'at' of created_at matches none of the formats [%Y-%m-%d %H:%M]: yesterday; "
            "column 'at' of updated_at matches none of the formats [%Y-%m-%d %H:%M]: yesterday",
            '{"id":"C","at":"yesterday","tech":"T1","note":null}',
        ),
    ]
    report = dry_run(m, src)
    assert (
        "== malformed source records: 3 (not read; the rest of the file is)\n"
        "          1  source.jsonl.duplicate_key\n             lines 7\n" in report
    )
    assert (
        "          1  source.jsonl.invalid_json\n             lines 8\n"
        "             e.g. line 8: not valid JSON (cut off or malformed)\n" in report
    )
    assert "      1  feeds.tickets.columns.created_at.formats\n             lines 5\n" in report
    assert "== tickets (4 source rows)\n   mapped:   3\n   rejected: 1\n" in report
    assert cli(["apply", str(m), "--source", str(src), "--landing", str(landing), "--date", "2021-01-02"]) == 0
    out = capsys.readouterr().out
    assert "malformed source records: 3 (lines 4, 7, 8)\n" in out
    assert f"rejected rows: 4 -> {result.rejected_path}\n" in out


def test_jsonl_with_bytes_not_in_its_encoding_rejects_those_lines(tmp_path: Path) -> None:
    """A byte that is not UTF-8 (or not the stated encoding) is one malformed record, not a refused file; a
    GB18030 JSON lines source is read in its encoding."""
    doc = tickets_mapping(
        {
            **ID_AND_TIMES,
            "customer_id": {"column": "客户"},
        }
    )
    lines = [
        '{"id": "A", "at": "2021-01-01 08:00", "tech": "T1", "客户": "张三"}',
        '{"id": "B", "at": "2021-01-01 09:00", "tech": "T1", "客户": "李四"}',
        '{"id": "C", "at": "2021-01-01 10:00", "tech": "T1", "客户": "王五"}',
    ]
    utf8 = ("\n".join(lines) + "\n").encode("utf-8").replace("李四".encode(), b"\xff\xfe")
    src = tmp_path / "bad.jsonl"
    src.write_bytes(b"\xef\xbb\xbf" + utf8)  # with a byte-order mark
    r = run_mapping(load_mapping(mapping_file(tmp_path, doc)), src)
    assert [(row["ticket_id"], row["customer_id"]) for row in mapped_rows(r, "tickets")] == [
        ("A", "张三"),
        ("C", "王五"),
    ]
    assert [(x["row_number"], x["line"], x["rule"]) for x in rejected_rows(r, "(source)")] == [
        (2, 2, "source.jsonl.invalid_encoding")
    ]
    doc["source"]["encoding"] = "gb18030"
    src.write_bytes(("\n".join(lines) + "\n").encode("gb18030"))
    r = run_mapping(load_mapping(mapping_file(tmp_path, doc, "m2.yaml")), src)
    assert [(row["ticket_id"], row["customer_id"]) for row in mapped_rows(r, "tickets")] == [
        ("A", "张三"),
        ("B", "李四"),
        ("C", "王五"),
    ]
    assert rejected_rows(r, "(source)") == []


def test_a_json_array_source_rejects_an_element_that_is_not_an_object(tmp_path: Path) -> None:
    doc = tickets_mapping(
        {
            **ID_AND_TIMES,
            "reopened_count": {"column": "n"},
        }
    )
    src = write(
        tmp_path / "src.json",
        '[{"id": "A", "at": "2021-01-01 08:00", "tech": "T1", "n": 2},\n 5,\n'
        ' {"id": "B", "at": "2021-01-01 09:00", "tech": "T1", "n": 7}]',
    )
    r = run_mapping(load_mapping(mapping_file(tmp_path, doc)), src)
    assert [(row["ticket_id"], row["reopened_count"]) for row in mapped_rows(r, "tickets")] == [("A", 2), ("B", 7)]
    assert [(x["row_number"], x["line"], x["rule"], x["reason"]) for x in rejected_rows(r, "(source)")] == [
        (2, None, "source.json.not_an_object", "record 2: a JSON number, not an object")
    ]


def test_a_source_without_a_header_row_names_its_columns_by_position(tmp_path: Path) -> None:
    """`source.header: false`: the first row is data, the columns are column0, column1, ... (the Excel reader took
    the first row as the header anyway, so one row was lost)."""
    import openpyxl

    doc = tickets_mapping(
        {
            "ticket_id": {"column": "column0"},
            "created_at": {"column": "column1", "formats": ["%Y-%m-%d %H:%M"]},
            "updated_at": {"column": "column1", "formats": ["%Y-%m-%d %H:%M"]},
            "technician_id": {"column": "column2"},
        }
    )
    doc["source"]["header"] = False
    wb = openpyxl.Workbook()
    for row in (["A", "2021-01-01 08:00", "T1"], ["B", "2021-01-01 09:00", "T2"]):
        wb.active.append(row)
    wb.save(tmp_path / "src.xlsx")
    for src in (write(tmp_path / "src.csv", "A,2021-01-01 08:00,T1\nB,2021-01-01 09:00,T2\n"), tmp_path / "src.xlsx"):
        r = run_mapping(load_mapping(mapping_file(tmp_path, doc)), src, work_dir=tmp_path / "work")
        assert [(x["ticket_id"], x["technician_id"]) for x in mapped_rows(r, "tickets")] == [("A", "T1"), ("B", "T2")]
        assert r.con.execute("select list(_line order by _row_number) from src").fetchone()[0] == [1, 2], src.name
