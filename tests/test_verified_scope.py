"""Whole-history dbt tests narrowed to what changed since the current publication (unverified_from_month in
dbt_project/macros/incremental.sql; the watermark comes from orchestration/transform.py verified_build_env).

`assert_indicator_evidence_matches_sample_sizes` groups every evidence row (~80 M at tier L). A nightly passes it
the build-log watermark of the current publication, whose months all passed the test; the test then checks the
months recomputed since. Built here with dbt on the hand-made data of tests/test_incremental.py: day 1 (December
2025, May and June 2026), then day 2 (recomputes May, June and July 2026). A wrong sample size planted in a
month proves which months each scope really checks, and that anything doubtful checks every month.
"""

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from ingestion.paths import DBT_PROJECT_DIR
from orchestration.transform import VERIFIED_BUILD_ENV, dbt_project_digest, dbt_window_env, verified_build_env
from tests.test_incremental import DAY_2, DBT, fixture_landing, load_all, q, write_files

TEST = "assert_indicator_evidence_matches_sample_sizes"


def dbt(root: Path, *args: str, verified: str = "") -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "SERVICESCORE_DATA_DIR": str(root),
        "DBT_TARGET_PATH": str(root / "dbt" / "target"),
        "DBT_LOG_PATH": str(root / "dbt" / "logs"),
        **dbt_window_env({}),
        VERIFIED_BUILD_ENV: verified,
    }
    return subprocess.run(
        [str(DBT), *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def watermark(db: Path) -> str:
    """'<epoch µs>:<log rows>' of the build log now: what a publication made now would record."""
    us, rows = q(db, "select epoch_us(max(built_at)), count(*) from intermediate.int_incremental_build_log")[0]
    return f"{us}:{rows}"


def compiled_test(root: Path) -> str:
    return next((root / "dbt" / "target" / "compiled").rglob(f"{TEST}.sql")).read_text()


def evidence_test(root: Path, verified: str) -> tuple[bool, str]:
    result = dbt(root, "test", "--select", TEST, verified=verified)
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
    second = dbt(root, "build", verified=after_day_1)
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
@pytest.mark.parametrize("verified", ["garbage", "12:34:56", "{us}:{rows_plus_one}"])
def test_a_doubtful_watermark_checks_every_month(built, verified):
    root, db, after_day_1, _ = built
    us, rows = after_day_1.split(":")
    verified = verified.format(us=us, rows_plus_one=int(rows) + 1)  # the log no longer has that many rows
    with wrong_sample_size(db, "2025-12-01"):
        ok, compiled = evidence_test(root, verified)
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
    mark = {"built_at_us": 1_780_000_000_000_000, "log_rows": 42}
    good = {"dbt_build_in_run": True, "dbt_project_sha256": dbt_project_digest(), "build_log_watermark": mark}
    assert verified_build_env(good) == {VERIFIED_BUILD_ENV: "1780000000000000:42"}
    for doubtful in (
        {**good, "dbt_build_in_run": False},  # the publication was materialized alone: no dbt tests in its run
        {**good, "dbt_project_sha256": "0" * 64},  # the models, tests or settings changed since
        {k: v for k, v in good.items() if k != "build_log_watermark"},
        {**good, "build_log_watermark": {"built_at_us": "1", "log_rows": 42}},
        {},  # no publication yet
    ):
        assert verified_build_env(doubtful) == {VERIFIED_BUILD_ENV: ""}


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
