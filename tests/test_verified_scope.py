"""Whole-history dbt tests narrowed to what changed since the current publication (unverified_from_month in
dbt_project/macros/verified_scope.sql; the first month comes from orchestration/transform.py verified_build_env,
which reads the change windows recorded since the publication's mark).

`assert_indicator_evidence_matches_sample_sizes` groups every evidence row (~80 M at tier L). A nightly passes it
the first month of the change windows recorded since the current publication, whose months all passed the test;
the test then checks the months recomputed since. Built here with dbt on the hand-made data of
tests/test_incremental.py: day 1 (December 2025, May and June 2026), then day 2 (recomputes May, June and July
2026). A wrong sample size planted in a month proves which months each scope really checks, and that anything
doubtful checks every month.
"""

import datetime as dt
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from ingestion.change_window import audit_mark, audit_relation, ensure_audit
from orchestration.publication.audit import WATERMARK_KEY
from orchestration.transform import VERIFIED_BUILD_ENV, dbt_project_digest, verified_build_env
from tests.test_incremental import DAY_2, fixture_landing, load_all, run_dbt, write_files

TEST = "assert_indicator_evidence_matches_sample_sizes"


def publication_audit(mark: dict) -> dict:
    """The audit a tested publication of this project made at `mark` records."""
    return {"dbt_build_in_run": True, "dbt_project_sha256": dbt_project_digest(), WATERMARK_KEY: mark}


def dbt(root: Path, *args: str, mark: dict | str | None = None) -> subprocess.CompletedProcess:
    """dbt as the orchestration runs it (tests/test_incremental.py run_dbt) with, for a publication's `mark`, the
    first unverified month (verified_build_env; a string is passed to dbt as it is)."""
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    try:
        if isinstance(mark, dict):
            verified = verified_build_env(publication_audit(mark), con)
        else:
            verified = {VERIFIED_BUILD_ENV: mark or ""}
    finally:
        con.close()
    return run_dbt(root, *args, extra_env=verified, check=False)


def watermark(db: Path) -> dict:
    """The change-window audit's position now: what a publication made now would record."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return audit_mark(con).as_dict()
    finally:
        con.close()


def compiled_test(root: Path) -> str:
    return next((root / "dbt" / "target" / "compiled").rglob(f"{TEST}.sql")).read_text()


def evidence_test(root: Path, mark: dict | str) -> tuple[bool, str]:
    result = dbt(root, "test", "--select", TEST, mark=mark)
    return result.returncode == 0, compiled_test(root)


def shift_sample_size(db: Path, month: str, by: int) -> None:
    """T1's monthly csat sample in `month` moved by `by`: +1 plants a value its evidence no longer explains."""
    con = duckdb.connect(str(db))
    try:
        changed = con.execute(f"""
            update intermediate.int_indicator_values set sample_size = sample_size + {by}
            where subject_type = 'technician' and subject_id = 'T1' and period_type = 'month'
                and period_start = date '{month}' and indicator_code = 'csat' and sample_size > 0
            returning 1
        """).fetchall()
        assert len(changed) == 1, month
    finally:
        con.close()


@contextmanager
def wrong_sample_size(db: Path, month: str) -> Iterator[None]:
    shift_sample_size(db, month, 1)
    try:
        yield
    finally:
        shift_sample_size(db, month, -1)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("verified")
    db = root / "warehouse.duckdb"
    fixture_landing(root / "landing")
    load_all(root, "day-1")
    first = dbt(root, "build")
    assert first.returncode == 0, first.stdout[-4000:]
    assert "where activity_date >=" not in compiled_test(root)  # no watermark: every month
    after_day_1 = watermark(db)
    write_files(root / "landing", DAY_2)
    load_all(root, "day-2")
    second = dbt(root, "build", mark=after_day_1)
    assert second.returncode == 0, second.stdout[-4000:]
    return root, db, after_day_1, compiled_test(root)


@pytest.mark.dbt
def test_a_nightly_checks_the_months_recomputed_since_the_publication(built):
    _, _, _, compiled = built
    # day 2 recomputed May, June and July 2026: the test starts at May (December 2025 was checked on day 1)
    assert "where activity_date >= cast('2026-05-01' as date)" in compiled
    assert "and period_start >= cast('2026-05-01' as date)" in compiled


@pytest.mark.dbt
def test_wrong_value_in_a_recomputed_month_fails_and_an_old_one_needs_the_whole_check(built):
    root, db, after_day_1, _ = built
    assert evidence_test(root, after_day_1)[0]
    with wrong_sample_size(db, "2026-06-01"):
        ok, compiled = evidence_test(root, after_day_1)
        assert not ok and "2026-05-01" in compiled
        # nothing was recomputed after the current build: the narrowed test has no month to check ...
        ok, compiled = evidence_test(root, watermark(db))
        assert ok and "cast('9999-12-01' as date)" in compiled
        # ... and without a watermark it checks every month and finds it
        ok, compiled = evidence_test(root, "")
        assert not ok and "activity_date >=" not in compiled
    assert evidence_test(root, "")[0]


@pytest.mark.dbt
@pytest.mark.parametrize("doubtful", ["garbage", "12:34:56", "2026-05-01", "rows_plus_one"])
def test_a_doubtful_watermark_checks_every_month(built, doubtful):
    root, db, after_day_1, _ = built
    # a malformed value for dbt, or a mark the audit no longer matches (it no longer has that many rows up to it)
    mark = {**after_day_1, "rows": after_day_1["rows"] + 1} if doubtful == "rows_plus_one" else doubtful
    with wrong_sample_size(db, "2025-12-01"):
        ok, compiled = evidence_test(root, mark)
        assert not ok and "activity_date >=" not in compiled
        # the trusted watermark skips December 2025 (checked on day 1): only a doubtful one re-checks it
        ok, compiled = evidence_test(root, after_day_1)
        assert ok and "2026-05-01" in compiled


@pytest.mark.dbt
def test_a_full_build_since_the_publication_checks_every_month(built):
    root, db, after_day_1, _ = built
    ok, compiled = evidence_test(root, after_day_1)
    assert ok and "2026-05-01" in compiled
    assert dbt(root, "build", "--select", "int_indicator_values", "--full-refresh").returncode == 0
    ok, compiled = evidence_test(root, after_day_1)
    assert ok and "activity_date >=" not in compiled


def test_orchestration_trusts_only_a_tested_publication_of_this_project():
    """Two windows recorded (May, then June); a publication made after the first: June is unverified. Anything
    doubtful about the publication or the audit since gives '' (every month)."""
    con = duckdb.connect()
    ensure_audit(con)
    con.execute(
        f"insert into {audit_relation()} values "
        "('r1', timestamptz '2026-06-01 00:00:00+00', null, false, date '2026-05-01', true, now()), "
        "('r2', timestamptz '2026-07-01 00:00:00+00', timestamptz '2026-06-01 00:00:00+00', false, "
        "date '2026-06-01', true, now())"
    )
    us = int(dt.datetime(2026, 6, 1, tzinfo=dt.UTC).timestamp() * 1_000_000)
    mark = {"built_at_us": us, "rows": 1}
    good = publication_audit(mark)
    assert verified_build_env(good, con) == {VERIFIED_BUILD_ENV: f"2026-06-01:{us}"}
    # at the end of the audit: nothing recorded since
    latest = {"built_at_us": us + 30 * 86_400_000_000, "rows": 2}
    assert verified_build_env(publication_audit(latest), con) == {VERIFIED_BUILD_ENV: f"none:{latest['built_at_us']}"}
    for doubtful in (
        {**good, "dbt_build_in_run": False},  # the publication was materialized alone: no dbt tests in its run
        {**good, "dbt_project_sha256": "0" * 64},  # the models, tests or settings changed since
        {k: v for k, v in good.items() if k != WATERMARK_KEY},
        {**good, WATERMARK_KEY: {"built_at_us": "1", "rows": 1}},
        publication_audit({**mark, "rows": 2}),  # the audit was rewritten since
        {},  # no publication yet
    ):
        assert verified_build_env(doubtful, con) == {VERIFIED_BUILD_ENV: ""}
    # a full window since the publication: every month
    con.execute(
        f"insert into {audit_relation()} values ('r3', timestamptz '2026-07-02 00:00:00+00', null, true, null, "
        "false, now())"
    )
    assert verified_build_env(good, con) == {VERIFIED_BUILD_ENV: ""}


def test_project_digest_follows_the_dbt_sources(tmp_path: Path):
    for name in ("models", "macros", "tests", "seeds"):
        (tmp_path / name).mkdir()
    (tmp_path / "dbt_project.yml").write_text("name: x\n")
    (tmp_path / "models" / "m.sql").write_text("select 1")
    before = dbt_project_digest(tmp_path)
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "manifest.json").write_text("{}")  # build output is not a source
    assert dbt_project_digest(tmp_path) == before
    (tmp_path / "seeds" / "weights.csv").write_text("a,b\n")
    assert dbt_project_digest(tmp_path) != before
