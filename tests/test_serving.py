"""The publication costs what changed (orchestration/publication/engine.py): a hand-made warehouse, no dbt.

The warehouse holds three versioned marts (month, quarter, year labels; appraisal_scores for the restatement
summary) that recompute by the change window, an incremental fact with _built_at and a unique key, a small
dimension, and the change-window audit (ingestion/change_window.py). `build()` plays a dbt build and the
orchestration after it: it records in the audit which months the run's window recomputed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest

from ingestion.change_window import audit_relation, ensure_audit
from orchestration.publication import engine as serving
from orchestration.publication.engine import publish
from orchestration.publication.relations import MartSpec

MARTS = [
    MartSpec("appraisal_scores", "versioned", windowed=True),
    MartSpec("kpi_monthly", "versioned", windowed=True),
    MartSpec("kpi_quarterly", "versioned", windowed=True),
    MartSpec("dim_teams", "snapshot"),
    MartSpec("fct_tickets", "snapshot", unique_key=("ticket_id",)),
]
VERSIONED = sorted(m.name for m in MARTS if m.mode == "versioned")
TODAY = dt.date(2026, 8, 20)  # May and June are closed, July closes on 5 August, August is open


def sql(db: Path, text: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db))
    try:
        return con.execute(text, params or []).fetchall()
    finally:
        con.close()


class Warehouse:
    def __init__(self, root: Path):
        self.path = root / "warehouse.duckdb"
        self.serving = root / "serving.duckdb"
        self.clock = dt.datetime(2026, 8, 1, tzinfo=dt.UTC)
        sql(
            self.path,
            """
            create schema marts;
            create schema intermediate;
            create table marts.kpi_monthly as select * from (values
                ('2026-05', 'T1', 0.5), ('2026-06', 'T1', 0.6), ('2026-07', 'T1', 0.7), ('2026-08', 'T1', 0.8))
                as t(period_label, technician_id, csat);
            alter table marts.kpi_monthly alter csat type double;
            create table marts.kpi_quarterly as select * from (values
                ('2026-Q2', 'T1', 0.55), ('2026-Q3', 'T1', 0.75), ('2026', 'T1', 0.65))
                as t(period_label, technician_id, csat);
            alter table marts.kpi_quarterly alter csat type double;
            create table marts.appraisal_scores as select * from (values
                ('2026-05', 'month', 'T1', 'weighted', 80.0, 'B'), ('2026-06', 'month', 'T1', 'weighted', 70.0, 'C'))
                as t(period_label, period_type, technician_id, method, composite_score, grade);
            alter table marts.appraisal_scores alter composite_score type double;
            create table marts.dim_teams as select * from (values ('TA', 'Team A'), ('TB', 'Team B'))
                as t(team_id, team_name);
            create table marts.fct_tickets (ticket_id varchar, created_date date, hours double, _built_at timestamptz);
        """,
        )
        con = duckdb.connect(str(self.path))
        try:
            ensure_audit(con)
        finally:
            con.close()
        self.build(full=True, tickets=[(f"K{i}", dt.date(2026, 5 + i % 4, 1), float(i)) for i in range(40)])

    def build(self, months: list[str] = (), full: bool = False, tickets: list[tuple] = ()) -> dt.datetime:
        """A dbt build at the next instant: tickets upserted with the new _built_at, the run's window recorded."""
        self.clock += dt.timedelta(hours=1)
        con = duckdb.connect(str(self.path))
        try:
            for key, day, hours in tickets:
                con.execute("delete from marts.fct_tickets where ticket_id = ?", [key])
                con.execute(
                    "insert into marts.fct_tickets by name select ? as ticket_id, ?::date as created_date, "
                    "?::double as hours, ?::timestamptz as _built_at",
                    [key, day, hours, self.clock],
                )
            window = [dt.date.fromisoformat(m + "-01") for m in months] if not full else []
            con.executemany(
                f"insert into {audit_relation()} values ('run', ?, null, ?, ?, true, current_timestamp)",
                [(self.clock, full, m) for m in window or [None]],
            )
        finally:
            con.close()
        return self.clock

    def publish(self, **kwargs) -> serving.PublicationResult:
        return publish(self.path, self.serving, MARTS, "run", audit={"code_version": "test"}, today=TODAY, **kwargs)


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    w = Warehouse(tmp_path)
    first = w.publish()
    assert first.publication_id == 1 and first.candidate_periods is None  # first publish: every period
    assert [p for p, _ in first.new_versions] == [
        "2026",
        "2026-05",
        "2026-06",
        "2026-07",
        "2026-08",
        "2026-Q2",
        "2026-Q3",
    ]
    return w


def versions(w: Warehouse) -> dict[str, int]:
    return dict(sql(w.serving, "select period_label, max(version) from publication_periods group by 1"))


def table(db: Path, name: str) -> list[tuple]:
    return sorted(sql(db, f"select * from {name}"), key=repr)


def test_a_build_of_one_month_compares_only_that_month_its_quarter_and_year(wh: Warehouse):
    sql(wh.path, "update marts.kpi_monthly set csat = 0.61 where period_label = '2026-06'")
    wh.build(months=["2026-06"])
    result = wh.publish()
    assert result.candidate_periods == ["2026", "2026-06", "2026-Q2"]
    assert result.new_versions == [("2026-06", 2)]
    assert result.restatements == ["2026-06"]  # June closed on 5 July
    # what the mark hides: a mart edited outside dbt (no window) is not compared ...
    sql(wh.path, "update marts.kpi_monthly set csat = 0.71 where period_label = '2026-07'")
    assert wh.publish().candidate_periods == [] and versions(wh)["2026-07"] == 1
    # ... unless every period is compared on request
    forced = wh.publish(compare_all=True)
    assert forced.candidate_periods is None and forced.new_versions == [("2026-07", 2)]


def test_the_history_gets_only_the_changed_period(wh: Warehouse):
    before = sql(wh.serving, "select count(*) from history.kpi_monthly")[0][0]
    sql(wh.path, "update marts.kpi_monthly set csat = 0.81 where period_label = '2026-08'")
    wh.build(months=["2026-08"])
    result = wh.publish()
    assert result.new_versions == [("2026-08", 2)] and result.restatements == []  # August is open
    assert sql(wh.serving, "select count(*) from history.kpi_monthly")[0][0] == before + 1
    assert sql(wh.serving, "select csat from kpi_monthly where period_label = '2026-08'") == [(0.81,)]
    assert result.row_counts["kpi_monthly"] == 4


def test_identical_content_makes_no_new_version_and_leaves_the_file(wh: Warehouse):
    before = wh.serving.read_bytes()
    assert not wh.publish().changed  # nothing built
    wh.build(months=["2026-05", "2026-06"])  # recomputed, same content
    result = wh.publish()
    assert result.candidate_periods == ["2026", "2026-05", "2026-06", "2026-Q2"]
    assert not result.changed and result.new_versions == [] and result.publication_id is None
    assert wh.serving.read_bytes() == before
    # the watermark did not advance (no swap), so the months are still candidates next time
    assert wh.publish().candidate_periods == ["2026", "2026-05", "2026-06", "2026-Q2"]


def test_a_restatement_of_a_closed_month_is_detected_with_its_changes(wh: Warehouse):
    sql(wh.path, "update marts.appraisal_scores set composite_score = 65, grade = 'C' where period_label = '2026-05'")
    wh.build(months=["2026-05"])
    result = wh.publish()
    assert result.candidate_periods == ["2026", "2026-05", "2026-Q2"]
    assert result.new_versions == [("2026-05", 2)] and result.restatements == ["2026-05"]
    assert sql(
        wh.serving,
        "select is_restatement, change_summary from publication_periods where period_label = '2026-05' and version = 2",
    ) == [(True, json.dumps({"changed_technicians": 1, "grade_changes": 1, "max_abs_score_change": 15.0}))]
    assert sql(
        wh.serving, "select technician_id, previous_grade, new_grade, score_change from publication_changes"
    ) == [("T1", "B", "C", -15.0)]


def test_the_watermark_advances_only_with_a_successful_swap(wh: Warehouse, monkeypatch: pytest.MonkeyPatch):
    sql(wh.path, "update marts.kpi_quarterly set csat = 0.76 where period_label = '2026-Q3'")
    wh.build(months=["2026-07"])
    before = wh.serving.read_bytes()

    def fail(*_args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(serving, "record_audit", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        wh.publish()
    assert wh.serving.read_bytes() == before and not list(wh.serving.parent.glob("*.publishing*"))
    monkeypatch.undo()
    result = wh.publish()
    assert result.candidate_periods == ["2026", "2026-07", "2026-Q3"]
    assert result.new_versions == [("2026-Q3", 2)]
    recorded = json.loads(sql(wh.serving, "select audit from publications order by publication_id desc limit 1")[0][0])
    assert recorded["code_version"] == "test"
    assert recorded["change_window_mark"]["built_at_us"] == int(wh.clock.timestamp() * 1_000_000)


@pytest.mark.parametrize(
    "case", ["full window", "audit missing", "audit rewritten", "mart not windowed", "marts changed"]
)
def test_every_period_is_compared_when_the_audit_cannot_tell(wh: Warehouse, case: str):
    sql(wh.path, "update marts.kpi_monthly set csat = 0.51 where period_label = '2026-05'")
    marts = MARTS
    if case == "full window":
        wh.build(full=True)
    elif case == "audit missing":
        sql(wh.path, f"drop table {audit_relation()}")
    elif case == "audit rewritten":  # e.g. the audit emptied, then one run
        sql(wh.path, f"delete from {audit_relation()}")
        wh.build(months=["2026-08"])
    elif case == "mart not windowed":  # a versioned mart that does not recompute by the window (not incremental)
        marts = [dataclasses.replace(m, windowed=False) if m.name == "kpi_quarterly" else m for m in MARTS]
        wh.build(months=["2026-08"])
    else:
        sql(wh.path, "create table marts.kpi_annual as select * from marts.kpi_quarterly where period_label = '2026'")
        marts = [*MARTS, MartSpec("kpi_annual", "versioned")]
        wh.build(months=["2026-08"])
    result = publish(wh.path, wh.serving, marts, "run", today=TODAY)
    assert result.candidate_periods is None
    assert ("2026-05", 2) in result.new_versions


def rows_applied_by_key(wh: Warehouse) -> None:
    """Updates of old rows, one moved to another month, and new rows."""
    wh.build(
        months=["2026-05", "2026-08"],
        tickets=[
            ("K1", dt.date(2026, 6, 1), 100.0),
            ("K8", dt.date(2026, 8, 1), 8.5),
            ("K40", dt.date(2026, 8, 2), 1.0),
            ("K41", dt.date(2026, 8, 3), None),
        ],
    )


def test_an_incremental_snapshot_apply_equals_a_full_copy(wh: Warehouse, tmp_path: Path):
    rows_applied_by_key(wh)
    result = wh.publish()
    assert result.snapshot_modes == {"dim_teams": "unchanged", "fct_tickets": "incremental"}
    assert result.snapshot_rows_applied == {"fct_tickets": 4} and result.snapshots_replaced == ["fct_tickets"]
    fresh = tmp_path / "fresh.duckdb"  # a first publish copies the whole table
    publish(wh.path, fresh, MARTS, "run", today=TODAY)
    assert table(wh.serving, "fct_tickets") == table(fresh, "fct_tickets") == table(wh.path, "marts.fct_tickets")
    assert len(table(wh.serving, "fct_tickets")) == 42
    # nothing rebuilt since: the signature says unchanged, nothing is written
    again = wh.publish()
    assert again.snapshot_modes["fct_tickets"] == "unchanged" and not again.changed


def test_a_snapshot_with_fewer_rows_or_new_columns_is_replaced(wh: Warehouse):
    sql(wh.path, "delete from marts.fct_tickets where ticket_id in ('K1', 'K2')")  # a full refresh dropped rows
    wh.build()
    result = wh.publish()
    assert result.snapshot_modes["fct_tickets"] == "full"
    assert table(wh.serving, "fct_tickets") == table(wh.path, "marts.fct_tickets")
    sql(wh.path, "alter table marts.fct_tickets add column _created_built_at timestamptz")
    assert wh.publish().snapshot_modes["fct_tickets"] == "full"
    assert table(wh.serving, "fct_tickets") == table(wh.path, "marts.fct_tickets")
    # most rows rebuilt (a full refresh): copied, not applied row by row
    wh.build(tickets=[(f"K{i}", dt.date(2026, 7, 1), 1.0) for i in range(3, 40)])
    assert wh.publish().snapshot_modes["fct_tickets"] == "full"
    assert table(wh.serving, "fct_tickets") == table(wh.path, "marts.fct_tickets")


def test_a_small_snapshot_without_built_at_is_compared_by_content(wh: Warehouse):
    assert wh.publish().snapshot_modes["dim_teams"] == "unchanged"
    sql(wh.path, "update marts.dim_teams set team_name = 'Team Beta' where team_id = 'TB'")
    result = wh.publish()
    assert result.snapshot_modes["dim_teams"] == "full" and result.changed
    assert table(wh.serving, "dim_teams") == [("TA", "Team A"), ("TB", "Team Beta")]


def test_serving_specs_read_the_unique_key_of_incremental_models():
    from orchestration.publish import serving_specs

    def node(name, serving_mode, materialized, key):
        return {
            "resource_type": "model",
            "name": name,
            "schema": "marts",
            "config": {"meta": {"serving": serving_mode}, "materialized": materialized, "unique_key": key},
        }

    manifest = {
        "nodes": {
            "a": node("fct_a", "snapshot", "incremental", "a_id"),
            "b": node("kpi_b", "versioned", "incremental", ["period_type", "period_start"]),
            "c": node("dim_c", "snapshot", "table", None),
            "d": node("stg_d", None, "view", None),
        }
    }
    assert serving_specs(manifest) == [
        MartSpec("dim_c", "snapshot", "marts", ()),
        MartSpec("fct_a", "snapshot", "marts", ("a_id",)),
        MartSpec("kpi_b", "versioned", "marts", ("period_type", "period_start")),
    ]
