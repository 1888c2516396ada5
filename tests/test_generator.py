"""The demo data generator: determinism, volumes, contract columns, planted rows, encodings, realism."""

from __future__ import annotations

import hashlib
import re
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from demo.generator import (
    BACKLOG_DAYS,
    BAD_TIMESTAMP,
    UNKNOWN_TECHNICIAN,
    GenerationSummary,
    demo_columns,
    generate,
    generate_day,
    main,
)
from demo.generator_model import COURSES, INDICATOR_ASPECT
from ingestion.contracts import FEEDS

FILE_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}[A-Za-z0-9_.\-]*\.(csv|parquet)$")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationSummary]:
    landing = tmp_path_factory.mktemp("gen") / "landing"
    return landing, generate(landing, tier="S", seed=42)


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("gb18030")


def _read(path: Path) -> pa.Table:
    """One landing CSV, every column as text (empty -> null), in file order."""
    header = _decode(path).split("\n", 1)[0].split(",")
    opts = pcsv.ConvertOptions(column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=True)
    return pcsv.read_csv(pa.BufferReader(_decode(path).encode("utf-8")), convert_options=opts)


def _feed_view(con: duckdb.DuckDBPyConnection, landing: Path, feed: str) -> None:
    """A DuckDB table of every (UTF-8) CSV file of an event feed, all text."""
    con.sql(
        f"create or replace table {feed} as select * from read_csv('{landing}/{feed}/*.csv', "
        "all_varchar = true, header = true)"
    )


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", seed=7, months=1)
    b = generate(tmp_path / "b", seed=7, months=1)
    c = generate(tmp_path / "c", seed=8, months=1)
    ha, hb, hc = _hashes(tmp_path / "a"), _hashes(tmp_path / "b"), _hashes(tmp_path / "c")
    assert ha == hb and len(ha) > 90
    assert a.rows == b.rows and a.bad_rows == b.bad_rows
    differing = [k for k in ha if k.startswith("tickets/") and ha[k] != hc.get(k)]
    assert len(differing) == sum(1 for k in ha if k.startswith("tickets/"))
    assert c.skills != a.skills


def test_tier_s_volumes(world: tuple[Path, GenerationSummary]) -> None:
    landing, s = world
    assert s.start == date(2026, 5, 1) and s.end == date(2026, 11, 1)
    r = s.records
    assert (r["technicians"], r["customers"], r["products"], r["purchases"]) == (40, 5000, 60, 8000)
    assert 18_000 <= r["tickets"] <= 22_000
    assert 0.08 <= r["complaints"] / r["tickets"] <= 0.12
    # change-data-capture: ~30 % of tickets arrive twice (plus the 6 planted ticket rows)
    assert 0.25 <= (s.rows["tickets"] - 6 - r["tickets"]) / r["tickets"] <= 0.35
    assert len(s.files["tickets"]) == 184 and len(s.files["surveys"]) == 184
    assert len(s.files["supervisor_reviews"]) == 6
    con = duckdb.connect()
    _feed_view(con, landing, "tickets")
    resolved = con.sql("""
        select count(*) from (
            select status from tickets where ticket_id like 'TK0%'
            qualify row_number() over (partition by ticket_id order by updated_at desc) = 1
        ) where status in ('resolved', 'closed')
    """).fetchall()[0][0]
    assert 0.35 <= r["surveys"] / resolved <= 0.45
    statuses = {
        row[0]
        for row in con.sql("""
        select status from tickets qualify row_number() over (partition by ticket_id order by updated_at desc) = 1
    """).fetchall()
    }
    assert {"open", "in_progress", "resolved", "closed", "cancelled"} <= statuses


def test_every_file_has_exactly_the_contract_columns_the_demo_generates(world: tuple[Path, GenerationSummary]) -> None:
    landing, s = world
    seen = set()
    for feed_dir in sorted(landing.iterdir()):
        assert feed_dir.name in FEEDS
        for path in sorted(feed_dir.iterdir()):
            assert FILE_NAME.match(path.name), path
            header = _decode(path).split("\n", 1)[0]
            assert tuple(header.split(",")) == demo_columns(feed_dir.name), path
            seen.add(feed_dir.name)
    assert seen == set(FEEDS)
    assert sum(len(v) for v in s.files.values()) == sum(1 for p in landing.rglob("*") if p.is_file())


def test_text_formats(world: tuple[Path, GenerationSummary]) -> None:
    landing, s = world
    tickets = _read(landing / "tickets/2026-07-01.csv")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", tickets.column("created_at")[0].as_py())
    assert set(tickets.column("first_time_fix").drop_null().to_pylist()) == {"true", "false"}
    assert len(s.offset_timestamp_files) == 30  # complaints of June 2026
    june = _read(landing / s.offset_timestamp_files[0])
    assert june.column("received_at")[0].as_py().endswith("+08:00")
    reviews = _read(landing / "supervisor_reviews/2026-06-30.csv")
    assert set(reviews.column("period").to_pylist()) == {"2026-06"}


def test_encodings(world: tuple[Path, GenerationSummary]) -> None:
    landing, s = world
    assert s.gb18030_files == ["technicians/2026-05-01.csv"]
    raw = (landing / s.gb18030_files[0]).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("gb18030")
    assert "维修" in text and "华东" in text
    assert s.bom_files == ["customers/2026-05-01.csv"]
    bom = (landing / s.bom_files[0]).read_bytes()
    assert bom.startswith(b"\xef\xbb\xbfcustomer_id,")
    assert (landing / "tickets/2026-07-01.csv").read_bytes().decode("utf-8").startswith("ticket_id,")


def test_team_move_leaver_and_new_hires(world: tuple[Path, GenerationSummary]) -> None:
    landing, s = world
    roster = pa.concat_tables([_read(p) for p in sorted((landing / "technicians").glob("*.csv"))])
    con = duckdb.connect()
    con.register("roster", roster)
    moves = con.sql("""
        select technician_id, count(distinct valid_from), count(distinct team_id), max(valid_from)
        from roster group by 1 having count(distinct valid_from) > 1
    """).fetchall()
    assert moves == [(s.mover, 2, 2, s.move_date.isoformat())]
    leavers = con.sql("""
        select technician_id, leave_date from (
            select * from roster
            qualify row_number() over (partition by technician_id, valid_from order by updated_at desc) = 1
        ) where leave_date is not null
    """).fetchall()
    assert leavers == [(s.leaver, s.leave_date.isoformat())]
    _feed_view(con, landing, "tickets")
    after = con.sql(f"""
        select count(*) from tickets
        where technician_id = '{s.leaver}' and try_cast(created_at as timestamp) >= date '{s.leave_date}'
    """).fetchall()[0][0]
    before = con.sql(f"select count(*) from tickets where technician_id = '{s.leaver}'").fetchall()[0][0]
    assert after == 0 and before > 100
    hired = con.sql("select technician_id from roster where cast(hire_date as date) > date '2026-05-01'").fetchall()
    assert sorted(h[0] for h in hired) == s.new_hires and len(s.new_hires) >= 3
    onboarding = _read(landing / "training_attendance/2026-05-01.csv")
    sessions = _read(landing / "training_sessions/2026-05-01.csv")
    con.register("att", onboarding)
    con.register("ses", sessions)
    onboarded = {
        r[0]
        for r in con.sql(
            "select technician_id from att join ses using (session_id) where course_id = 'TC01'"
        ).fetchall()
    }
    assert s.new_hire_without_onboarding in s.new_hires
    assert s.new_hire_without_onboarding not in onboarded
    assert onboarded and onboarded <= set(s.new_hires)


def test_planted_rows_are_where_the_summary_says(world: tuple[Path, GenerationSummary]) -> None:
    landing, s = world
    rules = sorted(b.rule or "-" for b in s.bad_rows)
    assert rules == sorted(
        [
            "type:created_at",
            "rule:resolved_after_created",
            "range:overall_score",
            "reference:technician_id",
            "-",
            "required:service_type",
            "enum:priority",
        ]
    )
    for b in s.bad_rows:
        table = _read(landing / b.file)
        row = table.slice(b.row_number - 1, 1).to_pylist()[0]
        key = FEEDS[b.feed].key[0]
        assert row[key] == b.key, b
        assert (row[b.column] or "") == b.value, b
        if b.rule == "type:created_at":
            assert b.value == BAD_TIMESTAMP
        if b.rule == "reference:technician_id":
            assert b.value == UNKNOWN_TECHNICIAN
        if b.rule == "rule:resolved_after_created":
            assert row["resolved_at"] < row["created_at"]
        if not b.rejected:  # the same ticket earlier in the file with an older updated_at
            earlier = table.slice(0, b.row_number - 1).to_pylist()
            older = [r for r in earlier if r["ticket_id"] == b.key]
            assert len(older) == 1 and older[0]["updated_at"] < b.value
            assert int(row["onsite_visits"]) == int(older[0]["onsite_visits"]) + 1


def test_no_planted_rows_on_request(tmp_path: Path) -> None:
    s = generate(tmp_path, months=1, with_bad_rows=False)
    assert s.bad_rows == []
    con = duckdb.connect()
    _feed_view(con, tmp_path, "tickets")
    assert con.sql("select count(*) from tickets where ticket_id not like 'TK0%'").fetchall()[0][0] == 0
    assert s.rows["tickets"] == con.sql("select count(*) from tickets").fetchall()[0][0]


def test_good_rows_meet_the_contract(world: tuple[Path, GenerationSummary]) -> None:
    landing, s = world
    con = duckdb.connect()
    planted = {b.key for b in s.bad_rows if b.rejected}
    for feed in ("tickets", "complaints", "surveys"):
        _feed_view(con, landing, feed)
        spec = FEEDS[feed]
        key = spec.key[0]
        for col in (c for c in spec.columns if c.name in demo_columns(feed)):
            c = f'"{col.name}"'
            bad = [f"{c} is null"] if col.required else []
            if col.values:
                bad.append(f"{c} not in ({', '.join(repr(v) for v in col.values)})")
            if col.type == "timestamp":
                bad.append(
                    f"{c} is not null and coalesce(try_cast({c} as timestamp), "
                    f"try_strptime({c}, '%Y-%m-%dT%H:%M:%S+08:00')) is null"
                )
            if col.type == "int":
                bad.append(f"{c} is not null and try_cast({c} as bigint) is null")
            if col.min is not None:
                bad.append(f"try_cast({c} as double) < {col.min} or try_cast({c} as double) > {col.max}")
            if not bad:
                continue
            n = con.sql(
                f"select count(*) from {feed} where ({' or '.join(bad)}) "
                f"and {key} not in ({', '.join(repr(k) for k in planted)})"
            ).fetchall()[0][0]
            assert n == 0, (feed, col.name)
    # tickets: resolved after created, closed after resolved, first response after created
    n = con.sql("""
        select count(*) from tickets where ticket_id like 'TK0%' and (
            resolved_at < created_at or closed_at < resolved_at or first_response_at < created_at
            or (status in ('resolved', 'closed') and resolved_at is null))
    """).fetchall()[0][0]
    assert n == 0


def test_training_catalogue_and_sessions(world: tuple[Path, GenerationSummary]) -> None:
    landing, s = world
    courses = _read(landing / "training_courses/2026-05-01.csv").to_pylist()
    assert len(courses) == 8 and [c["is_onboarding"] for c in courses].count("true") == 1
    assert {c["topic"] for c in courses} == {"technical", "service", "management"}
    for c in courses:
        assert set(c["indicators"].split(";")) <= set(INDICATOR_ASPECT)
    sessions = {r["session_id"]: r for r in _read(landing / "training_sessions/2026-05-01.csv").to_pylist()}
    behind = sessions[s.behind_schedule_session]
    assert behind["status"] == "planned" and behind["starts_at"] < "2026-11-01"
    assert sessions[s.cancelled_session]["status"] == "cancelled"
    future = [r for r in sessions.values() if r["starts_at"] >= "2026-11-01"]
    assert future and all(r["status"] == "planned" for r in future)
    con = duckdb.connect()
    con.register("att", _read(landing / "training_attendance/2026-05-01.csv"))
    gain, n_att = con.sql("""
        select avg(cast(post_score as double) - cast(pre_score as double)), count(*)
        from att where attended = 'true'
    """).fetchall()[0]
    assert gain > 5 and n_att > 50
    assert len(COURSES) == 8


def test_higher_skill_means_shorter_handling_time(world: tuple[Path, GenerationSummary]) -> None:
    landing, s = world
    con = duckdb.connect()
    _feed_view(con, landing, "tickets")
    con.sql("create table skill (technician_id varchar, skill double)")
    con.executemany("insert into skill values (?, ?)", list(s.skills.items()))
    rho = con.sql("""
        with latest as (
            select * from tickets where ticket_id like 'TK0%'
            qualify row_number() over (partition by ticket_id order by updated_at desc) = 1
        ),
        per_tech as (
            select technician_id,
                avg(date_diff('second', cast(created_at as timestamp), cast(resolved_at as timestamp)) / 3600.0)
                    as mean_hours
            from latest where resolved_at is not null group by 1
        ),
        ranked as (
            select rank() over (order by skill) as skill_rank, rank() over (order by mean_hours) as hours_rank
            from per_tech join skill using (technician_id)
        )
        select corr(skill_rank, hours_rank) from ranked
    """).fetchall()[0][0]
    assert rho < -0.6


def test_generate_day_adds_new_updated_and_late_records(tmp_path: Path) -> None:
    s = generate(tmp_path, months=1)
    with pytest.raises(FileExistsError):
        generate_day(tmp_path, date(2026, 5, 20))
    d = generate_day(tmp_path, s.end)
    assert d.files["tickets"] == ["tickets/2026-06-01.csv"]
    con = duckdb.connect()
    con.sql(
        f"create table t as select * from read_csv('{tmp_path}/tickets/*.csv', all_varchar = true, filename = true)"
    )
    new, updated, late, max_before = con.sql("""
        with day as (select * from t where filename like '%2026-06-01.csv'),
        before as (select * from t where filename not like '%2026-06-01.csv')
        select
            count(*) filter (where ticket_id not in (select ticket_id from before)
                             and created_at >= '2026-06-01'),
            count(*) filter (where ticket_id in (select ticket_id from before) and status = 'resolved'),
            count(*) filter (where created_at < '2026-05-01'),
            (select max(ticket_id) from before where ticket_id like 'TK0%')
        from day
    """).fetchall()[0]
    assert new == d.records["tickets"] - 1 and new > 50
    assert updated == d.records["ticket_updates"] >= 3
    # the resolved ones come from the last four weeks' backlog, not from months ago
    assert con.sql("""
        select min(created_at) from t
        where filename like '%2026-06-01.csv' and status = 'resolved'
            and ticket_id in (select ticket_id from t where filename not like '%2026-06-01.csv')
    """).fetchall()[0][0] >= str(s.end - timedelta(days=BACKLOG_DAYS))
    assert late == 1
    assert max_before < min(
        r[0]
        for r in con.sql(
            "select ticket_id from t where filename like '%2026-06-01.csv' and created_at >= '2026-06-01'"
        ).fetchall()
    )
    # same landing content, same day -> same bytes
    first = (tmp_path / "tickets/2026-06-01.csv").read_bytes()
    (tmp_path / "tickets/2026-06-01.csv").unlink()
    (tmp_path / "surveys/2026-06-01.csv").unlink()
    (tmp_path / "complaints/2026-06-01.csv").unlink()
    generate_day(tmp_path, s.end)
    assert (tmp_path / "tickets/2026-06-01.csv").read_bytes() == first


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--tier", "S", "--landing", str(tmp_path), "--months", "1", "--no-bad-rows"]) == 0
    out = capsys.readouterr().out
    assert "tickets" in out and "planted" not in out
    assert (tmp_path / "tickets/2026-05-01.csv").exists()
