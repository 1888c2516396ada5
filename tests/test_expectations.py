"""The GE quality gate on hand-made DuckDB tables: every kind of check passes on good data and fails on bad
data with the exact unexpected count and sample; severities; stored results; Data Docs; missing tables;
and that validation leaves no handle on the warehouse file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from expectations.checks import (
    Suite,
    between,
    freshness,
    in_set,
    load_volume,
    newest_load_rows_loaded_once,
    not_null,
    reference_share,
    sql_rule,
    unique,
)
from expectations.results import RESULTS_TABLE, SuiteResult
from expectations.runner import run_suite
from expectations.suites import MART_SUITES, RAW_SUITES, SUITES, appraisal_breakdown_suite, appraisal_scores_suite
from ingestion.change_window import audit_ddl, audit_relation
from ingestion.contracts import FEEDS, LOAD_METADATA_COLUMNS
from ingestion.indicator_catalogue import indicators
from ingestion.paths import DataDir


@pytest.fixture
def warehouse(data_dir: DataDir) -> Path:
    return data_dir.warehouse


@pytest.fixture
def docs(data_dir: DataDir) -> Path:
    return data_dir.reports / "data_docs"


def sql(warehouse: Path, *statements: str) -> None:
    with duckdb.connect(str(warehouse)) as con:
        for statement in statements:
            con.execute(statement)


def detail(result: SuiteResult, description_start: str):
    matches = [d for d in result.details if d.description.startswith(description_start)]
    assert len(matches) == 1, [d.description for d in result.details]
    return matches[0]


SURVEYS = """
create schema if not exists raw;
create or replace table raw.surveys as
select
    'r' || range as response_id,
    cast(range % 5 + 1 as bigint) as overall_score,
    case when range % 2 = 0 then 'P1' else 'P2' end as priority
from range(100)
"""


# ------------------------------------------------------------------------------------------ row rules


def test_range_check_fails_on_score_7_and_passes_on_good_data(warehouse: Path, docs: Path) -> None:
    sql(warehouse, SURVEYS)
    suite = Suite("surveys", "raw.surveys", (between("overall_score", 1, 5),))

    good = run_suite(warehouse, suite, "good", docs)
    assert good.success_for_errors and good.expectations_run == 1
    assert good.details[0].success and good.details[0].unexpected_count == 0

    sql(warehouse, "insert into raw.surveys values ('bad', 7, 'P1')")
    bad = run_suite(warehouse, suite, "bad", docs)
    d = bad.details[0]
    assert not bad.success_for_errors and bad.failed_errors == 1
    assert not d.success and d.unexpected_count == 1
    assert d.partial_unexpected_list == [7]
    assert d.unexpected_percent == pytest.approx(100 / 101)
    assert d.exception is None


def test_not_null_in_set_and_unique(warehouse: Path, docs: Path) -> None:
    sql(warehouse, SURVEYS, "insert into raw.surveys values (null, 3, 'P9'), ('r1', 4, 'P1'), ('r1', 4, 'P1')")
    suite = Suite(
        "surveys",
        "raw.surveys",
        (
            not_null("response_id"),
            in_set("priority", ("P1", "P2", "P3", "P4")),
            unique(["response_id"]),
            unique(["response_id", "overall_score"]),
        ),
    )
    result = run_suite(warehouse, suite, "run", docs)
    nulls, enum, single, compound = result.details
    assert (nulls.success, nulls.unexpected_count) == (False, 1)
    assert (enum.success, enum.unexpected_count, enum.partial_unexpected_list) == (False, 1, ["P9"])
    # r1 exists once in the base data (score 2) and twice more: three rows share r1
    assert (single.success, single.unexpected_count) == (False, 3)
    assert sorted(single.partial_unexpected_list) == ["r1", "r1", "r1"]
    # (r1, 4) twice; (r1, 2) once
    assert (compound.success, compound.unexpected_count) == (False, 2)
    assert compound.partial_unexpected_list == [{"response_id": "r1", "overall_score": 4}] * 2
    assert result.failed_errors == 4


# ------------------------------------------------------------------------------------------ SQL rules


def test_sql_rule_returns_offending_rows_as_sample(warehouse: Path, docs: Path) -> None:
    sql(warehouse, SURVEYS, "insert into raw.surveys values ('bad', 7, 'P1')")
    suite = Suite("s", "raw.surveys", (sql_rule("select * from {batch} where overall_score > 5", "score <= 5"),))
    d = run_suite(warehouse, suite, "run", docs).details[0]
    assert (d.success, d.unexpected_count) == (False, 1)
    assert d.partial_unexpected_list == [{"response_id": "bad", "overall_score": 7, "priority": "P1"}]


def test_reference_share_warns_above_threshold(warehouse: Path, docs: Path) -> None:
    sql(
        warehouse,
        "create schema raw",
        "create table raw.technicians as select 't' || range as technician_id from range(10)",
        # 100 tickets: 2 name an unknown technician, 5 have none (not counted)
        """create table raw.tickets as
           select 'k' || range as ticket_id,
               case when range < 2 then 'ghost' when range < 7 then null else 't' || (range % 10) end
                   as technician_id
           from range(105)""",
    )
    strict = Suite("t", "raw.tickets", (reference_share("technician_id", "raw.technicians", "technician_id", 0.01),))
    d = run_suite(warehouse, strict, "run", docs).details[0]
    assert d.severity == "warning" and not d.success
    assert d.partial_unexpected_list == [{"unknown_rows": 2, "rows_with_value": 100, "unknown_share": 0.02}]

    lenient = Suite("t", "raw.tickets", (reference_share("technician_id", "raw.technicians", "technician_id", 0.05),))
    assert run_suite(warehouse, lenient, "run", docs).details[0].success


def test_reference_share_counts_unknown_values_once_per_row(warehouse: Path, docs: Path) -> None:
    """The semi-join formulation (rows with a value minus rows whose value is found): 2 of 5 non-empty values
    unknown = 40 % > 10 % fails with the hand-computed numbers; a reference listing a value several times
    (versions) or an empty value changes nothing; empty batch values are not counted; good data passes."""
    sql(
        warehouse,
        "create schema raw",
        "create table raw.customers as select * from (values ('c1'), ('c1'), ('c1'), ('c2'), (null)) as v(customer_id)",
        "create table raw.purchases as select * from (values ('c1'), ('c2'), ('c1'), ('x'), ('y'), (null), (null))"
        " as v(customer_id)",
    )
    rule = reference_share("customer_id", "raw.customers", "customer_id", 0.10)
    d = run_suite(warehouse, Suite("p", "raw.purchases", (rule,)), "bad", docs).details[0]
    assert (d.success, d.unexpected_count, d.exception) == (False, 1, None)
    assert d.partial_unexpected_list == [{"unknown_rows": 2, "rows_with_value": 5, "unknown_share": 0.4}]
    assert d.description == "share of customer_id not in raw.customers is at most 10.0%"
    # 40 % is not above 40 %
    at_limit = reference_share("customer_id", "raw.customers", "customer_id", 0.40)
    assert run_suite(warehouse, Suite("p", "raw.purchases", (at_limit,)), "limit", docs).details[0].success

    sql(warehouse, "delete from raw.purchases where customer_id in ('x', 'y')")
    good = run_suite(warehouse, Suite("p", "raw.purchases", (rule,)), "good", docs).details[0]
    assert (good.success, good.unexpected_count, good.partial_unexpected_list) == (True, 0, [])
    strict = reference_share("customer_id", "raw.customers", "customer_id", 0.0)
    assert run_suite(warehouse, Suite("p", "raw.purchases", (strict,)), "strict", docs).details[0].success

    # only empty values (or no rows): nothing to judge, the rule passes
    sql(warehouse, "delete from raw.purchases where customer_id is not null")
    assert run_suite(warehouse, Suite("p", "raw.purchases", (strict,)), "empty", docs).details[0].success


# the formulation reference_share had before this round (a sum over a NOT EXISTS in the select list)
_FORMER_REFERENCE_SHARE = """
with batch_rows as (select {c} from {batch}),
checked as (
    select
        count(batch_rows.{c}) as rows_with_value,
        sum(case when not exists (select 1 from {rt} as ref where ref.{rc} = batch_rows.{c}) then 1 else 0 end)
            as unknown_rows
    from batch_rows
    where batch_rows.{c} is not null
)
select unknown_rows, rows_with_value, cast(unknown_rows as double) / rows_with_value as unknown_share
from checked
where rows_with_value > 0 and cast(unknown_rows as double) / rows_with_value > {m}
"""


def _reference_share_rows(warehouse: Path, rule_max_share: float) -> tuple[list, list]:
    """Rows of reference_share("k", "raw.ref", "k", max) and of the former formulation over raw.feed."""
    batch = "(select * from raw.feed where true) as subselect"
    new = reference_share("k", "raw.ref", "k", rule_max_share).expectation.unexpected_rows_query
    former = _FORMER_REFERENCE_SHARE.format(c="k", rt="raw.ref", rc="k", m=rule_max_share, batch=batch)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(new.replace("{batch}", batch)).fetchall(), con.execute(former).fetchall()


@pytest.mark.parametrize("max_share", [-1.0, 0.0, 0.25, 0.27, 0.5])
def test_reference_share_returns_what_the_former_query_returned(warehouse: Path, max_share: float) -> None:
    """Same rows as the former formulation on data with repeated, empty and unknown values on both sides."""
    sql(
        warehouse,
        "create schema raw",
        "create table raw.ref as select case when range % 7 = 0 then null else 'v' || (range % 40) end as k"
        " from range(300)",
        "create table raw.feed as select case when range % 5 = 0 then null else 'v' || (range % 55) end as k"
        " from range(1000)",
    )
    got, expected = _reference_share_rows(warehouse, max_share)
    assert got == expected
    # 800 values; v40..v54 are not in the reference: 216 of them (27 %)
    assert [tuple(r[:2]) for r in got] == ([] if max_share >= 0.27 else [(216, 800)])


def test_reference_share_over_a_large_reference_with_pruned_row_groups(warehouse: Path, docs: Path) -> None:
    """A few new rows against a reference of several row groups (DuckDB pushes the batch values' min/max into
    the scan of the reference): values below, above and between the reference's ids are still unknown, found
    values in any row group are known; the same numbers as the former NOT EXISTS query; a bad load fails."""
    sql(
        warehouse,
        "create schema raw",
        # 400k reference ids (4 row groups), every third id missing
        "create table raw.ref as select 'T' || lpad(range::varchar, 7, '0') as k from range(400000)"
        " where range % 3 <> 0",
        "create table raw.feed as select * from (values ('T0000001'), ('T0399998'), ('T0200002'), ('T0000003'),"
        " ('A0000000'), ('Z9999999'), (null)) as v(k)",
    )
    rule = reference_share("k", "raw.ref", "k", 0.4)
    d = run_suite(warehouse, Suite("f", "raw.feed", (rule,)), "bad", docs).details[0]
    # unknown: T0000003 (a missing id), A0000000 (below every id), Z9999999 (above) = 3 of 6 non-empty values
    assert (d.success, d.unexpected_count, d.exception) == (False, 1, None)
    assert d.partial_unexpected_list == [{"unknown_rows": 3, "rows_with_value": 6, "unknown_share": 0.5}]
    got, expected = _reference_share_rows(warehouse, 0.4)
    assert got == expected == [(3, 6, 0.5)]
    # the unknown values removed: every remaining value is found, whichever row group holds it
    sql(warehouse, "delete from raw.feed where k in ('T0000003', 'A0000000', 'Z9999999')")
    assert (
        run_suite(warehouse, Suite("f", "raw.feed", (reference_share("k", "raw.ref", "k", 0.0),)), "good", docs)
        .details[0]
        .success
    )


def _load(warehouse: Path, file_hash: str, rows: int, hours_ago: int) -> None:
    sql(
        warehouse,
        f"""
        insert into raw.tickets
        select 'k' || range, '{file_hash}', now() - interval '{hours_ago} hours'
        from range({rows})""",
    )


def test_volume_of_newest_load_against_trailing_average(warehouse: Path, docs: Path) -> None:
    sql(
        warehouse,
        "create schema raw",
        "create table raw.tickets (ticket_id varchar, _file_hash varchar, _loaded_at timestamptz)",
    )
    suite = Suite("t", "raw.tickets", (load_volume(min_ratio=0.5, max_ratio=2.0, window=3),))
    _load(warehouse, "h1", 100, 40)
    _load(warehouse, "h2", 80, 30)
    # only one earlier load: not judged yet
    _load(warehouse, "h3", 10, 20)
    sql(warehouse, "delete from raw.tickets where _file_hash = 'h3'")
    _load(warehouse, "h3", 120, 20)
    assert run_suite(warehouse, suite, "run", docs).details[0].success  # 120 vs mean(100, 80) = 90

    _load(warehouse, "h4", 20, 10)  # 20 vs mean(100, 80, 120) = 100 -> 0.2
    d = run_suite(warehouse, suite, "run", docs).details[0]
    assert not d.success and d.unexpected_count == 1
    (row,) = d.partial_unexpected_list
    assert row["newest_file_hash"] == "h4"
    assert (row["newest_load_rows"], row["trailing_avg_rows"], row["earlier_loads"]) == (20, 100.0, 3)
    assert row["volume_ratio"] == pytest.approx(0.2)


def test_freshness_of_newest_record(warehouse: Path, docs: Path) -> None:
    sql(warehouse, "create schema raw", "create table raw.surveys as select now() - interval '10 days' as responded_at")
    suite = Suite("s", "raw.surveys", (freshness("responded_at", 48),))
    stale = run_suite(warehouse, suite, "run", docs).details[0]
    assert not stale.success and stale.unexpected_count == 1
    sql(warehouse, "insert into raw.surveys values (now() - interval '1 hour')")
    assert run_suite(warehouse, suite, "run", docs).details[0].success
    sql(warehouse, "delete from raw.surveys")
    empty = run_suite(warehouse, suite, "run", docs).details[0]
    assert not empty.success, "an empty feed is not fresh"


# ------------------------------------------------------------------------------------------ severity, storage


def test_warning_failure_does_not_fail_errors_and_results_are_stored(warehouse: Path, docs: Path) -> None:
    sql(warehouse, SURVEYS, "insert into raw.surveys values ('bad', 7, 'P1')")
    suite = Suite(
        "surveys",
        "raw.surveys",
        (
            not_null("response_id"),
            between("overall_score", 1, 5, severity="warning"),
        ),
    )
    result = run_suite(warehouse, suite, "run-42", docs)
    assert result.success_for_errors
    assert (result.expectations_run, result.failed_errors, result.failed_warnings) == (2, 0, 1)

    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(f"""
            select suite, "table", expectation, "column", severity, success, unexpected_count, sample
            from {RESULTS_TABLE} where run_id = 'run-42' order by expectation""").fetchall()
    assert rows == [
        ("surveys", "raw.surveys", "expect_column_values_to_be_between", "overall_score", "warning", False, 1, "[7]"),
        ("surveys", "raw.surveys", "expect_column_values_to_not_be_null", "response_id", "error", True, 0, "[]"),
    ]

    index = result.data_docs_index
    assert index is not None and index.is_file() and index.parent == docs
    assert "surveys" in index.read_text()


def test_missing_table_fails_clearly(warehouse: Path, docs: Path) -> None:
    sql(warehouse, SURVEYS)
    result = run_suite(warehouse, Suite("gone", "raw.nowhere", (not_null("x"), between("y", 0, 1))), "run", docs)
    assert result.table_missing and not result.success_for_errors
    assert result.failed_errors == 2
    assert all("raw.nowhere" in d.exception and "does not exist" in d.exception for d in result.details)


def test_missing_column_and_missing_referenced_table_fail_clearly(warehouse: Path, docs: Path) -> None:
    sql(warehouse, SURVEYS)
    suite = Suite(
        "s",
        "raw.surveys",
        (
            between("no_such_column", 0, 1),
            sql_rule("select * from {batch} where not exists (select 1 from raw.nowhere)", "needs raw.nowhere"),
            not_null("response_id"),
        ),
    )
    result = run_suite(warehouse, suite, "run", docs)
    column, table, ok = result.details
    assert not column.success and "no_such_column" in column.exception
    assert not table.success and "nowhere" in table.exception
    assert ok.success


def test_validation_leaves_no_handle_on_the_warehouse(warehouse: Path, docs: Path) -> None:
    sql(warehouse, SURVEYS)
    run_suite(warehouse, Suite("s", "raw.surveys", (not_null("response_id"),)), "run", docs, store=False)
    # another process (as dbt is) can take the write lock right away
    code = f"import duckdb; c = duckdb.connect({str(warehouse)!r}); c.execute('create table raw.x (i int)'); c.close()"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    # and this process can open it read-write again (no read-only instance left behind)
    sql(warehouse, "drop table raw.x")


# ------------------------------------------------------------------------------------------ the real suites


def _create_raw_tables(warehouse: Path) -> None:
    statements = ["create schema if not exists raw"]
    for feed in FEEDS.values():
        columns = [f'"{c.name}" {c.raw_type}' for c in feed.columns]
        columns += [f'"{name}" {dtype}' for name, dtype in LOAD_METADATA_COLUMNS]
        statements.append(f"create table raw.{feed.name} ({', '.join(columns)})")
    sql(warehouse, *statements)


def test_every_raw_suite_runs_cleanly_on_contract_tables(warehouse: Path, docs: Path) -> None:
    """Column names in the raw suites match the contracts: on empty contract tables nothing raises and only
    freshness (an empty feed is stale) fails."""
    _create_raw_tables(warehouse)
    assert {s.table for s in RAW_SUITES} == {f"raw.{f}" for f in FEEDS}
    for suite in RAW_SUITES:
        result = run_suite(warehouse, suite, "run", None, store=False)
        assert [d.exception for d in result.details if d.exception] == [], suite.name
        assert result.success_for_errors, suite.name
        assert {d.description for d in result.failed} <= {
            c.description for c in suite.checks if c.description.startswith("newest ")
        }


def _kpi_table(warehouse: Path) -> None:
    columns = ["'t1' as technician_id", "'team1' as team_id", "date '2026-05-01' as period_start"]
    for indicator in indicators():
        code = indicator.code
        if indicator.is_duration:
            columns += [f"cast(2.5 as double) as {code}_hours", f"cast(1.5 as double) as {code}_business_hours"]
        else:
            value = {"nps": "20.0", "complaint_rate": "3.0"}.get(code, "0.9")
            if code in ("customer_rating", "service_attitude", "technical_level", "supervisor_review"):
                value = "4.2"
            columns.append(f"cast({value} as double) as {code}")
        columns.append(f"cast(10 as bigint) as {code}_n")
    select = ",\n".join(columns)
    sql(
        warehouse,
        "create schema if not exists marts",
        f"create or replace table marts.kpi_technician_monthly as select {select}",
        "insert into marts.kpi_technician_monthly by name "
        "select * replace ('t2' as technician_id) from marts.kpi_technician_monthly",
    )


def test_kpi_suite_passes_on_good_mart_and_pinpoints_bad_rows(warehouse: Path, docs: Path) -> None:
    _kpi_table(warehouse)
    suite = SUITES["kpi_technician_monthly"]
    good = run_suite(warehouse, suite, "run", docs)
    assert good.failed == () and good.expectations_run == len(suite.checks)

    sql(
        warehouse,
        "update marts.kpi_technician_monthly set csat = 1.2 where technician_id = 't1'",
        "update marts.kpi_technician_monthly set mttr_n = 0 where technician_id = 't2'",
        "insert into marts.kpi_technician_monthly select * from marts.kpi_technician_monthly "
        "where technician_id = 't1'",
    )
    bad = run_suite(warehouse, suite, "run", docs)
    failed = {d.description: d for d in bad.failed}
    assert set(failed) == {
        "csat is a rate within 0..1",
        "one row per (technician_id, period_start)",
        "each indicator value is null exactly when its count is 0",
    }
    assert failed["csat is a rate within 0..1"].unexpected_count == 2  # t1 twice
    assert failed["csat is a rate within 0..1"].partial_unexpected_list == [1.2, 1.2]
    nulls = failed["each indicator value is null exactly when its count is 0"]
    assert nulls.unexpected_count == 2  # t2: mttr_hours and mttr_business_hours
    assert {(r["technician_id"], r["value_column"], r["sample_size"]) for r in nulls.partial_unexpected_list} == {
        ("t2", "mttr_hours", 0),
        ("t2", "mttr_business_hours", 0),
    }
    assert bad.failed_errors == 3 and not bad.success_for_errors


APPRAISAL = """
create schema if not exists reference;
create or replace table reference.grade_bands as
select * from (values ('A', 90), ('B', 80), ('C', 60), ('D', 0)) as v(grade, min_score);
create schema if not exists marts;
create or replace table marts.appraisal_scores as
select * from (values
    -- t2 in May: band B (85), graded C: moving down is allowed by the band rule but not by the forced
    -- distribution (which only moves A to B) - see the second update below
    ('t1', 'team1', 'month', date '2026-05-01', 'comprehensive', 92.0, 'A', 'A', false, 1, 1, 100.0, 1.0, 'graded'),
    ('t2', 'team1', 'month', date '2026-05-01', 'comprehensive', 85.0, 'B', 'B', false, 2, 2, 100.0, 1.0, 'graded'),
    ('t1', 'team1', 'month', date '2026-06-01', 'comprehensive', 91.0, 'A', 'A', false, 1, 1, 100.0, 1.0, 'graded'),
    ('t2', 'team1', 'month', date '2026-06-01', 'comprehensive', 84.0, 'B', 'B', false, 2, 2, 100.0, 1.0, 'graded')
) as v(technician_id, team_id, period_type, period_start, method, composite_score, grade, band_grade,
       is_forced_down, rank_in_team, rank_overall, rated_weight, rated_weight_share, status);
alter table marts.appraisal_scores add column forced_a_max_share double default 0.5;
create or replace table marts.appraisal_score_breakdown as
select
    technician_id, period_type, period_start, method, code as indicator_code, 0.5 as value,
    cast(20 as bigint) as sample_size, cast(10 as bigint) as min_sample, composite_score as score,
    50.0 as weight, 50.0 as weight_used, composite_score / 2 as contribution, true as is_rated
from marts.appraisal_scores
cross join (values ('csat'), ('mttr')) as c(code);
"""


def test_appraisal_suites(warehouse: Path, docs: Path) -> None:
    sql(warehouse, APPRAISAL)
    scores_suite, breakdown_suite = appraisal_scores_suite(), appraisal_breakdown_suite()
    assert run_suite(warehouse, scores_suite, "run", docs).failed == ()
    assert run_suite(warehouse, breakdown_suite, "run", docs).failed == ()

    sql(
        warehouse,
        # a forced distribution may move t1 down to B, but nothing moves a score of 85 up to A
        "update marts.appraisal_scores set grade = 'A' where technician_id = 't2' and period_start = '2026-06-01'",
        # May: two A out of two graded with at most floor(0.5 x 2) = 1 A allowed
        "update marts.appraisal_scores set grade = 'A', band_grade = 'A', composite_score = 95.0 "
        "where technician_id = 't2' and period_start = '2026-05-01'",
        "update marts.appraisal_score_breakdown set score = 95.0, contribution = 47.5 "
        "where technician_id = 't2' and period_start = '2026-05-01'",
        # t1 falls from 91 to 61 in June: the mean drops from 88.5 (May) to 72.5, a drift warning
        "update marts.appraisal_scores set composite_score = 61.0, grade = 'C', band_grade = 'C' "
        "where technician_id = 't1' and period_start = '2026-06-01'",
        "update marts.appraisal_score_breakdown set score = 61.0, contribution = 30.5 "
        "where technician_id = 't1' and period_start = '2026-06-01'",
        "update marts.appraisal_score_breakdown set contribution = contribution + 0.001 "
        "where technician_id = 't2' and period_start = '2026-05-01' and indicator_code = 'csat'",
        "update marts.appraisal_score_breakdown set sample_size = 3 "
        "where technician_id = 't2' and period_start = '2026-05-01' and indicator_code = 'mttr'",
    )
    scores = run_suite(warehouse, scores_suite, "run", docs)
    band = detail(scores, "grade is never better than its score band")
    assert (band.success, band.unexpected_count) == (False, 1)
    assert band.partial_unexpected_list[0]["composite_score"] == 84.0
    drift = detail(scores, "mean composite score moves")
    assert drift.severity == "warning" and not drift.success
    (row,) = drift.partial_unexpected_list
    assert (row["previous_mean"], row["mean_composite"], row["shift_points"]) == (93.5, 72.5, -21.0)
    forced = detail(scores, "the forced distribution is respected")
    assert not forced.success and forced.unexpected_count == 2
    problems = {(str(r["period_start"])[:10], r["technician_id"], r["problem"]) for r in forced.partial_unexpected_list}
    assert problems == {
        ("2026-05-01", None, "more A than the forced distribution allows"),
        ("2026-06-01", "t2", "grade A differs from band grade B"),
    }
    assert scores.failed_errors == 2 and scores.failed_warnings == 1

    breakdown = run_suite(warehouse, breakdown_suite, "run", docs)
    sums = detail(breakdown, "contributions sum to the composite score")
    assert (sums.success, sums.unexpected_count) == (False, 1)
    assert sums.partial_unexpected_list[0]["technician_id"] == "t2"
    assert sums.partial_unexpected_list[0]["contribution_sum"] == pytest.approx(95.001)
    sample = detail(breakdown, "no rated indicator has fewer observations")
    (row,) = sample.partial_unexpected_list
    assert str(row.pop("period_start"))[:10] == "2026-05-01"
    assert row == {
        "technician_id": "t2",
        "period_type": "month",
        "method": "comprehensive",
        "indicator_code": "mttr",
        "sample_size": 3,
        "min_sample": 10,
    }
    assert breakdown.failed_errors == 2


def test_results_json_sample_is_valid(warehouse: Path, docs: Path) -> None:
    sql(warehouse, SURVEYS, "insert into raw.surveys values ('bad', 7, 'P1')")
    run_suite(
        warehouse,
        Suite("s", "raw.surveys", (sql_rule("select * from {batch} where overall_score > 5", "score <= 5"),)),
        "r",
        docs,
    )
    with duckdb.connect(str(warehouse), read_only=True) as con:
        (sample,) = con.execute(f"select sample from {RESULTS_TABLE}").fetchone()
    assert json.loads(sample) == [{"response_id": "bad", "overall_score": 7, "priority": "P1"}]


def test_rows_of_newest_load_are_loaded_once(warehouse: Path, docs: Path) -> None:
    sql(
        warehouse,
        "create schema raw",
        """
        create table raw.tickets as
        select 'k' || range as ticket_id, 'h' || (range // 10) as _file_hash, range % 10 as _row_number,
            timestamptz '2026-05-01' + to_hours(range // 10) as _loaded_at
        from range(30)""",
    )
    suite = Suite("t", "raw.tickets", (newest_load_rows_loaded_once(),))
    assert run_suite(warehouse, suite, "run", docs).details[0].success
    # a duplicate in an old load is not re-checked (it was checked when it was new); one in the newest is
    sql(warehouse, "insert into raw.tickets select * from raw.tickets where _file_hash = 'h0' and _row_number = 1")
    assert run_suite(warehouse, suite, "run", docs).details[0].success
    sql(warehouse, "insert into raw.tickets select * from raw.tickets where _file_hash = 'h2' and _row_number = 4")
    d = run_suite(warehouse, suite, "run", docs).details[0]
    assert (d.success, d.unexpected_count) == (False, 1)
    assert d.partial_unexpected_list == [{"_file_hash": "h2", "_row_number": 4, "copies": 2}]


# ------------------------------------------------------------------------------------------ one session, many suites


def test_one_session_validates_many_suites_stores_once_and_builds_docs_once(
    warehouse: Path, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session (one Dagster step) builds one GE context and renders Data Docs once; the stored rows and
    the results are the same as one suite at a time."""
    import expectations.runner as runner

    sql(warehouse, SURVEYS, "insert into raw.surveys values ('bad', 7, 'P1')")
    suites = [
        Suite("surveys_scores", "raw.surveys", (between("overall_score", 1, 5), not_null("response_id"))),
        Suite(
            "surveys_rules",
            "raw.surveys",
            (
                sql_rule("select * from {batch} where overall_score > 5", "score <= 5"),
                in_set("priority", ("P1", "P2"), severity="warning"),
            ),
        ),
        Suite("gone", "raw.nowhere", (not_null("x"),)),
    ]
    contexts, builds = [], []
    real_context = runner._context

    def counting_context(data_docs_dir):  # noqa: ANN001, ANN202
        context = real_context(data_docs_dir)
        contexts.append(context)
        real_build = context.build_data_docs
        context.build_data_docs = lambda **kw: builds.append(kw) or real_build(**kw)
        return context

    monkeypatch.setattr(runner, "_context", counting_context)
    results, errors = runner.run_suites(warehouse, suites, "session-run", docs)
    assert errors == {}
    assert (len(contexts), len(builds)) == (1, 1)
    scores, rules, gone = results
    assert (scores.failed_errors, rules.failed_errors, gone.failed_errors) == (1, 1, 1)
    assert rules.details[0].partial_unexpected_list == [{"response_id": "bad", "overall_score": 7, "priority": "P1"}]
    assert gone.table_missing and gone.data_docs_index is None
    assert scores.data_docs_index == rules.data_docs_index == docs / "index.html"

    monkeypatch.setattr(runner, "_context", real_context)
    for suite in suites:
        run_suite(warehouse, suite, "one-by-one", docs)
    with duckdb.connect(str(warehouse), read_only=True) as con:

        def rows(run_id: str) -> list[tuple]:
            return con.execute(
                f"""
                select suite, "table", expectation, "column", description, severity, success, unexpected_count,
                    unexpected_percent, sample, observed_value, exception
                from {RESULTS_TABLE} where run_id = ? order by all""",
                [run_id],
            ).fetchall()

        assert len(rows("session-run")) == 5
        assert rows("session-run") == rows("one-by-one")
    # the site index lists both runs' results
    index = (docs / "index.html").read_text()
    assert index.count("session-run") >= 3 and index.count("one-by-one") >= 3


def test_a_suite_that_raises_does_not_stop_the_others(
    warehouse: Path, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import expectations.runner as runner

    sql(warehouse, SURVEYS)
    ok = Suite("ok", "raw.surveys", (not_null("response_id"),))
    broken = Suite("broken", "raw.surveys", (not_null("priority"),))
    real_detail = runner.detail
    monkeypatch.setattr(
        runner,
        "detail",
        lambda check, ge: (
            (_ for _ in ()).throw(ValueError("boom")) if check.column == "priority" else real_detail(check, ge)
        ),
    )
    results, errors = runner.run_suites(warehouse, [broken, ok], "run", docs)
    assert [r.suite for r in results] == ["ok"] and results[0].success_for_errors
    assert list(errors) == ["broken"] and "boom" in str(errors["broken"])
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute(f"select suite, count(*) from {RESULTS_TABLE} group by suite").fetchall() == [("ok", 1)]
    # and the session left no handle on the warehouse
    code = f"import duckdb; c = duckdb.connect({str(warehouse)!r}); c.execute('create table raw.x (i int)'); c.close()"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ------------------------------------------------------------------------------------------ incremental raw suites


def _feed_table(warehouse: Path) -> None:
    sql(
        warehouse,
        "create schema if not exists raw",
        "create table raw.tickets (ticket_id varchar, score bigint, _file_hash varchar, _row_number bigint, "
        "_loaded_at timestamptz)",
    )


def _feed_load(warehouse: Path, file_hash: str, rows: int, loaded_at: str, bad_scores: int = 0) -> None:
    """One load of `rows` rows; the first `bad_scores` of them have score 7."""
    sql(
        warehouse,
        f"""
        insert into raw.tickets
        select '{file_hash}-' || range, case when range < {bad_scores} then 7 else 3 end, '{file_hash}', range,
            timestamptz '{loaded_at}'
        from range({rows})""",
    )


INCREMENTAL = Suite(
    "tickets_feed",
    "raw.tickets",
    (
        not_null("ticket_id"),
        between("score", 1, 5),
        load_volume(min_ratio=0.5, max_ratio=2.0, window=3, min_earlier_loads=1),
    ),
    increment_column="_loaded_at",
)


def _stored_scopes(warehouse: Path, run_id: str) -> dict[str, tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            f"""
            select description, scope, loaded_after is null, rows_validated, rows_through, success
            from {RESULTS_TABLE} where run_id = ?""",
            [run_id],
        ).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_incremental_suite_validates_new_rows_and_keeps_failed_loads_in_scope(warehouse: Path, docs: Path) -> None:
    """Rows rules of a raw suite see only the rows loaded since their last passing validation; table rules the
    whole table; a load whose validation failed stays in scope (and fails again) until a validation passes."""
    _feed_table(warehouse)
    _feed_load(warehouse, "h1", 100, "2026-05-01 01:00:00+00")
    first = run_suite(warehouse, INCREMENTAL, "run-1", docs)
    assert first.failed == ()
    assert (first.scope.incremental, first.scope.rows, first.scope.table_rows) == (False, 100, 100)

    # (1) the next run validates the 20 new rows only; (2) their bad row fails the range rule
    _feed_load(warehouse, "h2", 20, "2026-05-02 01:00:00+00", bad_scores=1)
    second = run_suite(warehouse, INCREMENTAL, "run-2", docs)
    assert second.scope.incremental and (second.scope.rows, second.scope.table_rows) == (20, 120)
    score = detail(second, "score within")
    assert (score.success, score.unexpected_count, score.partial_unexpected_list) == (False, 1, [7])
    assert score.unexpected_percent == pytest.approx(100 / 20)  # 1 of the 20 new rows, not 1 of 120
    assert detail(second, "ticket_id is never empty").unexpected_percent == 0.0
    # the table rule sees the whole table: the earlier load h1 (100 rows) against the newest (20)
    (volume,) = detail(second, "newest load has").partial_unexpected_list
    assert (volume["newest_file_hash"], volume["trailing_avg_rows"], volume["earlier_loads"]) == ("h2", 100.0, 1)
    stored = _stored_scopes(warehouse, "run-2")
    assert stored["score within 1..5"] == ("rows", False, 20, 120, False)
    assert stored["ticket_id is never empty"] == ("rows", False, 20, 120, True)
    assert stored[INCREMENTAL.checks[2].description] == ("table", True, 120, 120, False)

    # (3) the failed load stays in scope: the next run validates h2 again with the new h3 and still fails
    _feed_load(warehouse, "h3", 10, "2026-05-03 01:00:00+00")
    third = run_suite(warehouse, INCREMENTAL, "run-3", docs)
    assert (third.scope.loaded_after, third.scope.rows) == (second.scope.loaded_after, 30)
    assert (detail(third, "score within").success, detail(third, "score within").unexpected_count) == (False, 1)

    # the bad row removed: the same scope passes and the watermark moves past h3
    sql(warehouse, "delete from raw.tickets where score = 7")
    fixed = run_suite(warehouse, INCREMENTAL, "run-4", docs)
    assert (fixed.scope.rows, detail(fixed, "score within").success) == (29, True)
    _feed_load(warehouse, "h4", 5, "2026-05-04 01:00:00+00")
    fourth = run_suite(warehouse, INCREMENTAL, "run-5", docs)
    assert fourth.scope.loaded_after == fixed.scope.loaded_through and fourth.scope.rows == 5
    # nothing new: rows rules pass on 0 rows, table rules still run on the whole table
    idle = run_suite(warehouse, INCREMENTAL, "run-6", docs)
    assert idle.scope.rows == 0 and idle.scope.table_rows == 134
    assert _stored_scopes(warehouse, "run-6")["score within 1..5"] == ("rows", False, 0, 134, True)


def test_incremental_suite_falls_back_to_the_whole_table(warehouse: Path, docs: Path) -> None:
    _feed_table(warehouse)
    _feed_load(warehouse, "h1", 50, "2026-05-01 01:00:00+00")
    run_suite(warehouse, INCREMENTAL, "run-1", docs)

    # a validation that is not stored does not move the watermark
    _feed_load(warehouse, "h2", 50, "2026-05-02 01:00:00+00")
    assert run_suite(warehouse, INCREMENTAL, "unstored", docs, store=False).scope.rows == 50
    assert run_suite(warehouse, INCREMENTAL, "run-2", docs).scope.rows == 50

    # a bad row loaded behind the watermark (an earlier load time): the whole table is validated again
    _feed_load(warehouse, "late", 1, "2026-04-30 01:00:00+00", bad_scores=1)
    late = run_suite(warehouse, INCREMENTAL, "run-3", docs)
    assert not late.scope.incremental and late.scope.rows == 101
    assert "behind it" in late.scope.reason
    assert detail(late, "score within").unexpected_count == 1

    # a rows rule added to the suite has never seen the old rows: the whole table once
    sql(warehouse, "delete from raw.tickets where _file_hash = 'late'")
    run_suite(warehouse, INCREMENTAL, "run-4", docs)
    assert run_suite(warehouse, INCREMENTAL, "run-5", docs).scope.rows == 0
    more = Suite(
        INCREMENTAL.name,
        INCREMENTAL.table,
        (*INCREMENTAL.checks, between("_row_number", 0, None)),
        increment_column="_loaded_at",
    )
    assert run_suite(warehouse, more, "run-6", docs).scope.rows == 100


def test_raw_suites_are_incremental_with_table_rules_on_the_whole_table() -> None:
    for suite in RAW_SUITES:
        assert suite.increment_column == "_loaded_at"
        scopes = {c.description: c.scope for c in suite.checks}
        assert all(scope == "table" for d, scope in scopes.items() if d.startswith("newest ")), suite.name
        assert all(scope == "rows" for d, scope in scopes.items() if d.endswith("is never empty")), suite.name


# ------------------------------------------------------------------------------------------ incremental period marts

MART_MONTHS = ("2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01", "2026-05-01", "2026-06-01")
TECHNICIANS = ("t1", "t2", "t3")


def _mart_tables(warehouse: Path) -> None:
    """A period mart with a period_type (as appraisal_scores) and the change-window audit."""
    sql(
        warehouse,
        "create schema if not exists marts",
        "create table marts.scores (technician_id varchar, period_type varchar, period_start date, score double)",
        *audit_ddl(),
    )


def _period_starts(month: str) -> dict[str, str]:
    year, mon = int(month[:4]), int(month[5:7])
    return {"month": month, "quarter": f"{year:04d}-{(mon - 1) // 3 * 3 + 1:02d}-01", "year": f"{year:04d}-01-01"}


def _build_mart(
    warehouse: Path,
    built_at: str,
    months: tuple[str, ...] | None,
    bad: dict | None = None,
    extra_rows: tuple[tuple, ...] = (),
    reset_log: bool = False,
) -> None:
    """What a dbt build of a period mart does (macros/incremental.sql): delete the periods containing `months`
    (every period when None: a full build), insert their recomputed rows (score 50 for every technician;
    `bad` maps (period_type, period_start) -> {technician: score}); then the orchestration appends the run's
    window to the audit. `reset_log`: the audit is emptied first (reset or rewritten)."""
    bad = bad or {}
    periods = {(kind, start) for m in (months or MART_MONTHS) for kind, start in _period_starts(m).items()}
    statements = [f"delete from {audit_relation()}"] if reset_log else []
    if months is None:
        statements.append("delete from marts.scores")
    else:
        statements += [
            f"delete from marts.scores where period_type = '{kind}' and period_start = '{start}'"
            for kind, start in sorted(periods)
        ]
    rows = [
        (t, kind, start, bad.get((kind, start), {}).get(t, 50.0))
        for kind, start in sorted(periods)
        for t in TECHNICIANS
    ] + list(extra_rows)
    statements.append(
        "insert into marts.scores values "
        + ", ".join(f"('{t}', '{kind}', date '{start}', {score})" for t, kind, start, score in rows)
    )
    window = ["(true, null)"] if months is None else [f"(false, date '{m}')" for m in months]
    statements.append(
        f"insert into {audit_relation()} select 'run', timestamptz '{built_at}', null, *, true, current_timestamp "
        f"from (values {', '.join(window)})"
    )
    sql(warehouse, *statements)


PERIOD_MART = Suite(
    "scores",
    "marts.scores",
    (
        not_null("technician_id"),
        between("score", 0, 100),
        unique(("technician_id", "period_type", "period_start"), scope="periods"),
        sql_rule(
            "select count(*) as months from {batch} where period_type = 'month' having count(*) < 3",
            "at least three monthly rows",
        ),
    ),
    period_grain="period_type",
)


def _stored_mart_scopes(warehouse: Path, run_id: str) -> dict[str, tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            f"""
            select description, scope, loaded_after is null, rows_validated, rows_through, scope_condition, success
            from {RESULTS_TABLE} where run_id = ?""",
            [run_id],
        ).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_period_mart_suite_validates_the_rebuilt_periods_and_keeps_failed_ones_in_scope(
    warehouse: Path, docs: Path
) -> None:
    """Row and period rules of a period mart see only the periods rebuilt since their last passing validation
    (the months of the change windows recorded since, with their quarters and years); table rules the whole
    table; periods whose validation failed stay in scope until a validation passes."""
    _mart_tables(warehouse)
    # 6 months, 2 quarters, 1 year, 3 technicians each: 27 rows
    _build_mart(warehouse, "2026-07-01 01:00:00+00", None)
    first = run_suite(warehouse, PERIOD_MART, "run-1", docs)
    assert first.failed == ()
    assert (first.scope.incremental, first.scope.rows, first.scope.table_rows) == (False, 27, 27)

    # (1) June rebuilt: June, Q2 and 2026 are recomputed, 3 rows each, and one duplicate row: 10 of 28 rows;
    # (2) its bad score and the duplicate fail
    _build_mart(
        warehouse,
        "2026-07-02 01:00:00+00",
        ("2026-06-01",),
        bad={("month", "2026-06-01"): {"t2": 150.0}},
        extra_rows=(("t1", "quarter", "2026-04-01", 50.0),),
    )
    second = run_suite(warehouse, PERIOD_MART, "run-2", docs)
    assert second.scope.incremental and (second.scope.rows, second.scope.table_rows) == (10, 28)
    assert [m.isoformat() for m in second.scope.months] == ["2026-06-01"]
    score = detail(second, "score within")
    assert (score.success, score.unexpected_count, score.partial_unexpected_list) == (False, 1, [150.0])
    assert score.unexpected_percent == pytest.approx(100 / 10)  # 1 of the 10 rebuilt rows, not 1 of 28
    duplicate = detail(second, "one row per")
    assert (duplicate.success, duplicate.unexpected_count) == (False, 2)
    # the table rule sees the whole table: 18 monthly rows
    assert detail(second, "at least three monthly rows").success
    stored = _stored_mart_scopes(warehouse, "run-2")
    condition = stored["score within 0..100"][4]
    assert stored["score within 0..100"] == ("rows", False, 10, 2, condition, False)
    assert stored["technician_id is never empty"] == ("rows", False, 10, 2, condition, True)
    assert stored["at least three monthly rows"] == ("table", True, 28, 2, None, True)
    with duckdb.connect(str(warehouse), read_only=True) as con:  # the stored condition selects the same rows
        assert con.execute(f"select count(*) from marts.scores where {condition}").fetchone() == (10,)

    # (3) May rebuilt, June not fixed: the failed June stays in scope with May, Q2 and 2026 (3 rows each + 1)
    _build_mart(warehouse, "2026-07-03 01:00:00+00", ("2026-05-01",))
    third = run_suite(warehouse, PERIOD_MART, "run-3", docs)
    assert third.scope.loaded_after == second.scope.loaded_after
    assert [m.isoformat() for m in third.scope.months] == ["2026-05-01", "2026-06-01"]
    assert third.scope.rows == 12  # May 3 + June 3 + Q2 3 (the duplicate was rebuilt away) + 2026 3
    assert (detail(third, "score within").success, detail(third, "score within").unexpected_count) == (False, 1)

    # June rebuilt right: the same periods pass and the watermark moves past the June build
    _build_mart(warehouse, "2026-07-04 01:00:00+00", ("2026-06-01",))
    fixed = run_suite(warehouse, PERIOD_MART, "run-4", docs)
    assert (fixed.scope.rows, fixed.failed) == (12, ())
    _build_mart(warehouse, "2026-07-05 01:00:00+00", ("2026-02-01",))
    fifth = run_suite(warehouse, PERIOD_MART, "run-5", docs)
    assert fifth.scope.loaded_after == fixed.scope.loaded_through
    assert fifth.scope.rows == 9  # February, Q1, 2026
    # nothing rebuilt: row and period rules pass on 0 rows, table rules still run on the whole table
    idle = run_suite(warehouse, PERIOD_MART, "run-6", docs)
    assert (idle.scope.rows, idle.scope.table_rows, idle.scope.months) == (0, 27, ())
    assert _stored_mart_scopes(warehouse, "run-6")["score within 0..100"] == ("rows", False, 0, 5, "false", True)


def test_period_mart_suite_falls_back_to_the_whole_table(warehouse: Path, docs: Path) -> None:
    _mart_tables(warehouse)
    _build_mart(warehouse, "2026-07-01 01:00:00+00", None)
    run_suite(warehouse, PERIOD_MART, "run-1", docs)

    # a validation that is not stored does not move the watermark
    _build_mart(warehouse, "2026-07-02 01:00:00+00", ("2026-06-01",))
    assert run_suite(warehouse, PERIOD_MART, "unstored", docs, store=False).scope.rows == 9
    assert run_suite(warehouse, PERIOD_MART, "run-2", docs).scope.rows == 9

    # a full build of the mart (--full-refresh of the mart alone): the whole table; a bad row anywhere is seen
    _build_mart(warehouse, "2026-07-03 01:00:00+00", None, bad={("month", "2026-01-01"): {"t3": -1.0}})
    rebuilt = run_suite(warehouse, PERIOD_MART, "run-3", docs)
    assert not rebuilt.scope.incremental and rebuilt.scope.rows == 27
    assert "rebuilt whole" in rebuilt.scope.reason
    assert detail(rebuilt, "score within").unexpected_count == 1

    # dbt build --full-refresh: the log is emptied and every mart rebuilt whole: the whole table, until it passes
    _build_mart(warehouse, "2026-07-04 01:00:00+00", None, reset_log=True)
    refreshed = run_suite(warehouse, PERIOD_MART, "run-4", docs)
    assert (refreshed.scope.incremental, refreshed.scope.rows, refreshed.failed) == (False, 27, ())
    assert "reset or rewritten" in refreshed.scope.reason
    assert run_suite(warehouse, PERIOD_MART, "run-5", docs).scope.rows == 0

    # a row whose period no list of periods can place (not the first day of a month): the whole table
    _build_mart(
        warehouse, "2026-07-05 01:00:00+00", ("2026-06-01",), extra_rows=(("t1", "month", "2026-06-15", 150.0),)
    )
    misaligned = run_suite(warehouse, PERIOD_MART, "run-6", docs)
    assert not misaligned.scope.incremental and misaligned.scope.rows == 28
    assert "not the first day" in misaligned.scope.reason
    assert detail(misaligned, "score within").unexpected_count == 1
    sql(warehouse, "delete from marts.scores where period_start = '2026-06-15'")

    # a row or period rule added to the suite has never seen the old periods: the whole table once
    run_suite(warehouse, PERIOD_MART, "run-7", docs)
    more = Suite(
        PERIOD_MART.name, PERIOD_MART.table, (*PERIOD_MART.checks, not_null("period_start")), period_grain="period_type"
    )
    assert run_suite(warehouse, more, "run-8", docs).scope.rows == 27
    assert run_suite(warehouse, more, "run-9", docs).scope.rows == 0

    # no change-window audit: every row, every time
    sql(warehouse, f"drop table {audit_relation()}")
    no_log = run_suite(warehouse, more, "run-10", docs)
    assert (no_log.scope.incremental, no_log.scope.rows) == (False, 27) and "no change window" in no_log.scope.reason


def test_kpi_and_appraisal_suites_validate_the_rebuilt_month(warehouse: Path, docs: Path) -> None:
    """The registered suites: kpi_technician_monthly (one grain) and appraisal_score_breakdown (period_type)
    after a build that recomputed June only."""
    _kpi_table(warehouse)  # t1, t2 in May
    sql(
        warehouse,
        APPRAISAL,  # t1, t2 in May and June, two indicators each
        *audit_ddl(),
        f"insert into {audit_relation()} values ('run-1', '2026-07-01 01:00:00+00', null, true, null, true, now())",
    )
    kpi, breakdown = SUITES["kpi_technician_monthly"], SUITES["appraisal_score_breakdown"]
    assert run_suite(warehouse, kpi, "run-1", docs).scope.rows == 2
    assert run_suite(warehouse, breakdown, "run-1", docs).scope.rows == 8

    # a build recomputes June: two KPI rows (t1's csat out of range), the breakdown's June rows (t2's score)
    sql(
        warehouse,
        "insert into marts.kpi_technician_monthly by name select * replace (date '2026-06-01' as period_start, "
        "case when technician_id = 't1' then 1.2 else csat end as csat) from marts.kpi_technician_monthly",
        "update marts.appraisal_score_breakdown set score = -1 where technician_id = 't2' "
        "and period_start = '2026-06-01' and indicator_code = 'csat'",
        f"insert into {audit_relation()} values "
        "('run-2', '2026-07-02 01:00:00+00', '2026-07-01 01:00:00+00', false, '2026-06-01', true, now())",
    )
    kpi_result = run_suite(warehouse, kpi, "run-2", docs)
    assert (kpi_result.scope.rows, kpi_result.scope.table_rows) == (2, 4)
    csat = detail(kpi_result, "csat is a rate")
    assert (csat.unexpected_count, csat.unexpected_percent) == (1, pytest.approx(50.0))
    breakdown_result = run_suite(warehouse, breakdown, "run-2", docs)
    assert (breakdown_result.scope.rows, breakdown_result.scope.table_rows) == (4, 8)  # June: 2 x 2 indicators
    assert detail(breakdown_result, "indicator score within").unexpected_count == 1
    # the contributions rule reads appraisal_scores: it ran on the whole table (and t2's June sum still matches)
    stored = _stored_mart_scopes(warehouse, "run-2")
    assert stored["indicator score within 0..100"][:3] == ("rows", False, 4)
    assert stored["contributions sum to the composite score (within 1e-06)"][:3] == ("table", True, 8)


def test_mart_suites_scope() -> None:
    """Which mart suites are incremental and which of their rules stay on the whole table."""
    incremental = {s.name: s.period_grain for s in MART_SUITES if s.incremental}
    assert incremental == {
        "kpi_technician_monthly": "month",
        "appraisal_scores": "period_type",
        "appraisal_score_breakdown": "period_type",
    }
    # the training marts are full tables rebuilt every run: validated whole
    assert all(not s.incremental for s in MART_SUITES if s.name.startswith("training_"))
    table_rules = {(s.name, c.description) for s in MART_SUITES if s.incremental for c in s.checks if not s.scoped(c)}
    assert table_rules == {
        ("appraisal_scores", "grade is never better than its score band (grade_bands.min_score)"),
        ("appraisal_scores", "mean composite score moves by at most 10 points between consecutive periods"),
        ("appraisal_score_breakdown", "contributions sum to the composite score (within 1e-06)"),
    }
    for suite in MART_SUITES:
        for check in suite.checks:
            if check.scope == "periods":  # a per-period rule: the key holds the period
                assert suite.period_grain is not None and "period_start" in (check.column or "period_start")
