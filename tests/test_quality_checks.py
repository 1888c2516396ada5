"""The GE suites as Dagster asset checks: an in-process materialization of a tiny graph (a mart asset, a
blocking check on it, a downstream 'publish' asset) proves that a failing error-level check stops the
downstream asset and a passing or warnings-only check lets it run; with two marts whose checks share one
step (one multi-asset check per layer), a run evaluates only the checks of the assets it selects, and a
failing one still stops the publication. Real DuckDB, real GE."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from dagster import (
    AssetCheckKey,
    AssetCheckSeverity,
    AssetKey,
    AssetSelection,
    Definitions,
    MaterializeResult,
    asset,
    define_asset_job,
    materialize,
)

from expectations.checks import Suite, between, not_null
from expectations.suites import MART_SUITES, RAW_SUITES
from ingestion.change_window import audit_relation, ensure_audit
from ingestion.paths import DataDir
from orchestration.quality import (
    MART_CHECKS_STEP,
    RAW_CHECKS_STEP,
    build_suite_check,
    build_suites_check,
    check_name,
    quality_checks,
    suite_asset_key,
)
from orchestration.resources import WarehouseResource

SCORES = Suite(
    "team_scores",
    "marts.team_scores",
    (
        not_null("team_id"),
        between("score", 1, 5),
        between("bonus", 0, 10, severity="warning"),
    ),
)


def build_graph(score: int, bonus: int):
    @asset(key=AssetKey(["team_scores"]))
    def team_scores(warehouse: WarehouseResource) -> MaterializeResult:
        with duckdb.connect(str(warehouse.paths().warehouse)) as con:
            con.execute("create schema if not exists marts")
            con.execute(f"""create or replace table marts.team_scores as
                select * from (values ('a', 3, 1), ('b', {score}, {bonus})) as v(team_id, score, bonus)""")
        return MaterializeResult()

    @asset(key=AssetKey(["published"]), deps=[AssetKey(["team_scores"])])
    def published(warehouse: WarehouseResource) -> MaterializeResult:
        with duckdb.connect(str(warehouse.paths().warehouse)) as con:
            con.execute("create table if not exists marts.published as select * from marts.team_scores")
        return MaterializeResult()

    return [team_scores, published]


def run(data_dir: DataDir, score: int, bonus: int):
    return materialize(
        [*build_graph(score, bonus), build_suite_check(SCORES, blocking=True)],
        resources={"warehouse": WarehouseResource(data_dir=str(data_dir.root))},
        raise_on_error=False,
    )


def materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def published_exists(warehouse: Path) -> bool:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return bool(
            con.execute("select count(*) from information_schema.tables where table_name = 'published'").fetchone()[0]
        )


def test_failing_blocking_check_stops_downstream(data_dir: DataDir) -> None:
    result = run(data_dir, score=7, bonus=1)
    assert not result.success
    assert materialized(result) == {"team_scores"}
    assert not published_exists(data_dir.warehouse)

    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.asset_key == AssetKey(["team_scores"]) and evaluation.check_name == "gx_team_scores"
    assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    assert (meta["expectations_run"], meta["failed_errors"], meta["failed_warnings"]) == (3, 1, 0)
    assert meta["unexpected_counts"] == {"score within 1..5": 1}
    assert meta["samples"] == {"score within 1..5": [7]}
    assert meta["table"] == "marts.team_scores"
    assert "| error | score within 1..5 | score | 1 | [7] |" in meta["failures"]
    assert Path(meta["data_docs"]).is_file()
    assert meta["data_docs_url"].startswith("file://")


def test_passing_check_lets_downstream_run(data_dir: DataDir) -> None:
    result = run(data_dir, score=4, bonus=1)
    assert result.success
    assert materialized(result) == {"team_scores", "published"}
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed
    assert evaluation.metadata["failed_errors"].value == 0
    assert published_exists(data_dir.warehouse)


def test_warning_failure_is_reported_but_does_not_block(data_dir: DataDir) -> None:
    result = run(data_dir, score=4, bonus=99)
    assert materialized(result) == {"team_scores", "published"}
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.WARN
    assert evaluation.metadata["samples"].value == {"bonus within 0..10": [99]}


def test_check_results_are_stored_with_the_dagster_run_id(data_dir: DataDir) -> None:
    result = run(data_dir, score=7, bonus=1)
    with duckdb.connect(str(data_dir.warehouse), read_only=True) as con:
        rows = con.execute(
            "select run_id, count(*), count(*) filter (where not success) "
            "from quality.validation_results group by run_id"
        ).fetchall()
    assert rows == [(result.run_id, 3, 1)]


@pytest.mark.parametrize("suite", [*RAW_SUITES, *MART_SUITES], ids=lambda s: s.name)
def test_every_suite_has_one_check_on_its_asset(suite: Suite) -> None:
    keys = {key for check in quality_checks for key in check.check_keys}
    assert (suite_asset_key(suite), check_name(suite)) in {(k.asset_key, k.name) for k in keys}


def test_asset_keys_and_blocking() -> None:
    by_key = {key.asset_key: check for check in quality_checks for key in check.check_keys}
    assert AssetKey(["raw", "tickets"]) in by_key
    assert AssetKey(["kpi_technician_monthly"]) in by_key
    assert AssetKey(["appraisal_scores"]) in by_key
    assert all(spec.blocking for spec in by_key[AssetKey(["kpi_technician_monthly"])].check_specs)
    assert not any(spec.blocking for spec in by_key[AssetKey(["raw", "tickets"])].check_specs)
    # the checks load into Definitions beside the assets they check
    Definitions(asset_checks=quality_checks, resources={"warehouse": WarehouseResource()}).resolve_asset_graph()


def test_quality_checks_are_one_step_per_layer() -> None:
    assert sorted(c.node_def.name for c in quality_checks) == sorted([RAW_CHECKS_STEP, MART_CHECKS_STEP])
    assert all("_gx_" in c.node_def.name for c in quality_checks)  # benchmarks/run.py counts them as checks
    raw, marts = sorted(quality_checks, key=lambda c: c.node_def.name != RAW_CHECKS_STEP)
    assert len(list(raw.check_keys)) == len(RAW_SUITES) and len(list(marts.check_keys)) == len(MART_SUITES)
    assert not any(spec.blocking for spec in raw.check_specs)
    assert all(spec.blocking for spec in marts.check_specs)
    assert raw.can_subset and marts.can_subset


# ------------------------------------------------------------------------------- two marts, one check step

BONUS = Suite("team_bonus", "marts.team_bonus", (between("bonus", 0, 10),))


def two_mart_graph(score: int, bonus: int):
    team_scores, _ = build_graph(score, 1)

    @asset(key=AssetKey(["team_bonus"]))
    def team_bonus(warehouse: WarehouseResource) -> MaterializeResult:
        with duckdb.connect(str(warehouse.paths().warehouse)) as con:
            con.execute("create schema if not exists marts")
            con.execute(f"create or replace table marts.team_bonus as select 'a' as team_id, {bonus} as bonus")
        return MaterializeResult()

    @asset(key=AssetKey(["published"]), deps=[AssetKey(["team_scores"]), AssetKey(["team_bonus"])])
    def published(warehouse: WarehouseResource) -> MaterializeResult:
        with duckdb.connect(str(warehouse.paths().warehouse)) as con:
            con.execute("create or replace table marts.published as select * from marts.team_scores")
        return MaterializeResult()

    defs = Definitions(
        assets=[team_scores, team_bonus, published],
        asset_checks=[build_suites_check([SCORES, BONUS], blocking=True, name="marts_gx_suites")],
        resources={"warehouse": WarehouseResource()},
    )
    return defs.resolve_asset_graph()


def run_selection(
    data_dir: DataDir, monkeypatch: pytest.MonkeyPatch, selection: AssetSelection, score: int, bonus: int
):
    monkeypatch.setenv("SERVICESCORE_DATA_DIR", str(data_dir.root))
    job = define_asset_job("j", selection=selection).resolve(asset_graph=two_mart_graph(score, bonus))
    return job.execute_in_process(raise_on_error=False)


def evaluations(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def stored_suites(warehouse: Path, run_id: str) -> set[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {
            r[0]
            for r in con.execute(
                "select distinct suite from quality.validation_results where run_id = ?", [run_id]
            ).fetchall()
        }


def test_one_step_evaluates_only_the_checks_of_the_selected_assets(
    data_dir: DataDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    everything = run_selection(data_dir, monkeypatch, AssetSelection.all(), score=4, bonus=1)
    assert everything.success
    assert evaluations(everything) == {"gx_team_scores": True, "gx_team_bonus": True}
    check_steps = {e.step_key for e in everything.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert check_steps == {"marts_gx_suites"}  # both suites in one step
    assert materialized(everything) == {"team_scores", "team_bonus", "published"}

    # a run of team_bonus alone evaluates (and stores) its check only
    bonus_only = run_selection(data_dir, monkeypatch, AssetSelection.assets("team_bonus"), score=4, bonus=1)
    assert bonus_only.success and evaluations(bonus_only) == {"gx_team_bonus": True}
    assert stored_suites(data_dir.warehouse, bonus_only.run_id) == {"team_bonus"}


def test_a_failing_check_in_the_shared_step_stops_the_publication(
    data_dir: DataDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_selection(data_dir, monkeypatch, AssetSelection.all(), score=4, bonus=99)
    assert not result.success
    # every suite of the step is reported, the failing one as a blocking error
    assert evaluations(result) == {"gx_team_scores": True, "gx_team_bonus": False}
    (failed,) = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert failed.asset_key == AssetKey(["team_bonus"]) and failed.severity == AssetCheckSeverity.ERROR
    assert failed.metadata["samples"].value == {"bonus within 0..10": [99]}
    assert materialized(result) == {"team_scores", "team_bonus"}
    assert not published_exists(data_dir.warehouse)
    assert stored_suites(data_dir.warehouse, result.run_id) == {"team_scores", "team_bonus"}
    assert AssetCheckKey(AssetKey(["team_bonus"]), "gx_team_bonus") in two_mart_graph(4, 1).asset_check_keys


# ------------------------------------------------------------------------------- incremental raw suites

FEED = Suite("raw_feed", "raw.feed", (between("score", 1, 5),), increment_column="_loaded_at")


def feed_graph(day: int, score: int):
    @asset(key=AssetKey(["raw", "feed"]))
    def feed(warehouse: WarehouseResource) -> MaterializeResult:
        with duckdb.connect(str(warehouse.paths().warehouse)) as con:
            con.execute("create schema if not exists raw")
            con.execute("create table if not exists raw.feed (score bigint, _loaded_at timestamptz)")
            con.execute(
                f"insert into raw.feed select {score}, timestamptz '2026-05-0{day} 01:00:00+00' from range({10 * day})"
            )
        return MaterializeResult()

    return [feed, build_suite_check(FEED, blocking=False)]


def test_raw_check_metadata_says_which_rows_were_validated(data_dir: DataDir) -> None:
    resources = {"warehouse": WarehouseResource(data_dir=str(data_dir.root))}
    first = materialize(feed_graph(1, 3), resources=resources)
    (evaluation,) = first.get_asset_check_evaluations()
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    assert evaluation.passed and (meta["rows_validated"], meta["table_rows"], meta["loaded_after"]) == (10, 10, "")

    second = materialize(feed_graph(2, 7), resources=resources)  # 20 new rows, all out of range
    (evaluation,) = second.get_asset_check_evaluations()
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR and not evaluation.blocking
    assert (meta["rows_validated"], meta["table_rows"]) == (20, 30)
    assert meta["loaded_after"].startswith("2026-05-01T01:00:00")
    assert meta["loaded_through"].startswith("2026-05-02T01:00:00")
    assert "20 rows with _loaded_at in" in meta["scope"]
    assert meta["unexpected_counts"] == {"score within 1..5": 20}


# ------------------------------------------------------------------------------- incremental period marts

MONTHLY = Suite("monthly", "marts.monthly", (between("score", 1, 5),), period_grain="month")


def monthly_graph(month: int, score: int):
    @asset(key=AssetKey(["monthly"]))
    def monthly(warehouse: WarehouseResource) -> MaterializeResult:
        """What dbt and the orchestration do for a period mart: recompute one month (delete + insert), record the
        run's change window (the first build is a full one)."""
        with duckdb.connect(str(warehouse.paths().warehouse)) as con:
            con.execute("create schema if not exists marts")
            con.execute(
                "create table if not exists marts.monthly (technician_id varchar, period_start date, score bigint)"
            )
            ensure_audit(con)
            start = f"2026-{month:02d}-01"
            con.execute(f"delete from marts.monthly where period_start = date '{start}'")
            con.execute(
                f"insert into marts.monthly select 'T' || range, date '{start}', {score} from range({10 * month})"
            )
            first = month == 1
            month_start = "null" if first else f"date '{start}'"
            con.execute(
                f"insert into {audit_relation()} values ('run', timestamptz '2026-07-0{month} 01:00:00+00', null, "
                f"{first}, {month_start}, true, current_timestamp)"
            )
        return MaterializeResult()

    return [monthly, build_suite_check(MONTHLY, blocking=True)]


def test_mart_check_metadata_says_which_periods_were_validated(data_dir: DataDir) -> None:
    resources = {"warehouse": WarehouseResource(data_dir=str(data_dir.root))}
    first = materialize(monthly_graph(1, 3), resources=resources)
    (evaluation,) = first.get_asset_check_evaluations()
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    assert evaluation.passed and (meta["rows_validated"], meta["table_rows"], meta["loaded_after"]) == (10, 10, "")

    second = materialize(monthly_graph(2, 7), resources=resources, raise_on_error=False)  # February: 20 bad rows
    (evaluation,) = second.get_asset_check_evaluations()
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR and evaluation.blocking
    assert (meta["rows_validated"], meta["table_rows"]) == (20, 30)
    assert meta["loaded_after"].startswith("2026-07-01T01:00:00")
    assert meta["loaded_through"].startswith("2026-07-02T01:00:00")
    assert "the periods containing months 2026-02" in meta["scope"]
    assert meta["scope_condition"] == "\"period_start\" in (date '2026-02-01')"
    assert meta["unexpected_counts"] == {"score within 1..5": 20}

    # March is fine, February was not fixed: its failed validation is repeated with March
    third = materialize(monthly_graph(3, 3), resources=resources, raise_on_error=False)
    (evaluation,) = third.get_asset_check_evaluations()
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    assert not evaluation.passed and (meta["rows_validated"], meta["table_rows"]) == (50, 60)
    assert meta["loaded_after"].startswith("2026-07-01T01:00:00")
    assert meta["unexpected_counts"] == {"score within 1..5": 20}
