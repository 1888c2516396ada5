"""Personal data cannot leak (docs/privacy.md): not through free text, not through ids, not through a guessable
hash, not through build artifacts; and the publication refuses what would.

One real `cli run` over the hand-made landing with free text that carries personal data (the comments below) and
a pseudonym key in a file outside the data folder. The hand-made customer archive has C1 陈一 13800000001 and
C2 周二 13900000002 (tests/fixtures/handmade/landing/customers)."""

from __future__ import annotations

import os
import re
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from ingestion.contracts import FEEDS
from ingestion.paths import DBT_PROJECT_DIR, REPO_ROOT, DataDir
from ingestion.privacy import (
    KEY_ENV,
    KEY_FILE_ENV,
    RETIRED_SALT_ENV,
    PersonalDataLeakError,
    PseudonymKey,
    PseudonymKeyError,
    generated_key_path,
    hmac_phone,
    leaks,
    pseudonym_key,
)
from tests.cli_runs import baseline, new_data_dir, q, run_cli, sha256
from tests.test_security import personal_data_leaks

# the attack of the issue: a comment naming the customer (周二, C2) and her number with separators
ATTACK = "请周二回电 139-0000-0002 找周二"
SURVEYS = "\n".join(
    [
        ",".join(FEEDS["surveys"].column_names),
        "R5,K7,T2,C1,2026-06-02 13:00:00,2026-06-03 10:00:00,5,5,5,5,9,{attack}",
        "R6,K8,T1,C1,2026-06-03 22:00:00,2026-06-04 10:00:00,4,3,4,4,8,"
        '"mail chen@example.com, +86 138 0000 0001, ID 110101199003074578, 陈先生 (010)12345678"',
        "",
    ]
)
REVIEWS = """review_id,technician_id,period,reviewer_id,score,comment,reviewed_at
V3,T1,2026-06,M1,4.0,"客户陈一表扬，电话 021-5555 6666",2026-06-30 18:00:00
V4,T2,2026-06,M2,3.5,,2026-06-30 18:00:00
"""
# worked out by hand: the patterns in their order (e-mail, ID card, mobile, landline, name with honorific), then
# the customer archive's names
SCRUBBED = {
    "R5": "请[name]回电 [phone] 找[name]",
    "R6": "mail [email], [phone], ID [id-number], [name] [phone]",
    "V3": "客户[name]表扬，电话 [phone]",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[DataDir, str, str, int]:
    root = tmp_path_factory.mktemp("privacy")
    paths = new_data_dir(root / "data")
    (paths.feed_dir("surveys") / "2026-06-30.csv").write_text(SURVEYS.format(attack=ATTACK), encoding="utf-8")
    (paths.feed_dir("supervisor_reviews") / "2026-06-30.csv").write_text(REVIEWS, encoding="utf-8")
    key = "key-" + secrets.token_hex(24)
    key_file = root / "secret" / "pseudonym.key"
    key_file.parent.mkdir()
    key_file.write_text(key + "\n", encoding="ascii")
    code, out = run_cli(paths, **{KEY_FILE_ENV: str(key_file)})
    return paths, key, out, code


@pytest.mark.slow
def test_the_run_publishes(run):
    paths, _key, out, code = run
    assert code == 0, out[-6000:]
    assert "NOT OK" not in out and "pseudonym key" not in out  # a configured key: nothing to say about it


@pytest.mark.slow
def test_free_text_is_scrubbed_before_it_leaves_raw(run):
    paths, *_ = run
    assert q(paths.warehouse, "select comment from raw.surveys where response_id = 'R5'") == [(ATTACK,)]
    got = dict(
        q(
            paths.serving,
            "select response_id, comment from fct_survey_responses where response_id in "
            "('R5', 'R6') union all select review_id, comment from fct_supervisor_reviews "
            "where review_id = 'V3'",
        )
    )
    assert got == SCRUBBED
    # the staging views (what every model reads) hold the scrubbed text already
    assert q(paths.warehouse, "select comment from staging.stg_surveys__responses where response_id = 'R5'") == [
        (SCRUBBED["R5"],)
    ]


@pytest.mark.slow
def test_the_projects_scanner_and_the_gate_find_nothing_in_serving(run):
    """Before: the scanner found 4 leaks in the serving file (the attack's comment)."""
    paths, *_ = run
    assert personal_data_leaks(paths.warehouse, paths.serving, None) == []
    assert personal_data_leaks(paths.warehouse, paths.warehouse, {"marts", "staging", "intermediate"}) == []
    con = duckdb.connect()
    try:
        con.execute(f"attach '{paths.warehouse}' as w (read_only)")
        con.execute(f"attach '{paths.serving}' as s (read_only)")
        rels = con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = 's' "
            "and schema_name = 'main' union all select schema_name, view_name from duckdb_views() "
            "where database_name = 's' and not internal"
        ).fetchall()
        assert leaks(con, "s", rels, raw_catalog="w") == []
    finally:
        con.close()


@pytest.mark.slow
def test_the_pseudonym_is_the_keyed_hmac_and_nothing_beside_it_narrows_the_number(run):
    paths, key, *_ = run
    secret = PseudonymKey(key.encode(), "test")
    assert dict(
        q(paths.serving, "select customer_id, phone_pseudonym from dim_customers where customer_id in ('C1', 'C2')")
    ) == {"C1": hmac_phone(secret, "13800000001"), "C2": hmac_phone(secret, "13900000002")}
    columns = [c for (c,) in q(paths.serving, "select column_name from information_schema.columns")]
    assert [c for c in columns if "phone" in c] == ["phone_pseudonym"]  # no phone_masked, no last four digits


@pytest.mark.slow
def test_a_brute_force_over_the_phone_space_with_the_serving_file_alone_finds_nothing(run):
    """The attack that recovered 3 of 3 numbers before: hash every candidate number the ways a keyless
    pseudonym can be made (sha256 of the digits, with the old default salt before or after, md5) and join with
    every 64- or 32-hex value of the serving file. 2 million candidates around the hand-made numbers (they are
    among them): the same join finds the old-style hash of C2's number, and nothing of the serving file."""
    paths, *_ = run
    con = duckdb.connect()
    try:
        con.execute(f"attach '{paths.serving}' as s (read_only)")
        cols = con.execute(
            "select table_name, column_name from duckdb_columns() where database_name = 's' "
            "and data_type = 'VARCHAR' and schema_name = 'main'"
        ).fetchall()
        con.execute("create table hexes (v varchar)")
        for table, column in cols:
            con.execute(
                f'insert into hexes select distinct "{column}" from s.main."{table}" '
                f"where regexp_full_match(\"{column}\", '[0-9a-f]{{32}}|[0-9a-f]{{64}}')"
            )
        assert con.execute("select count(*) from hexes").fetchone()[0] >= 7  # the customers' pseudonyms at least
        con.execute("""
            create table candidates as
            select cast(n as varchar) as d from range(13800000000, 13801000000) t(n)
            union all select cast(n as varchar) from range(13900000000, 13901000000) t(n)
        """)
        attacks = "sha256(d), sha256('servicescore' || d), sha256(d || 'servicescore'), md5(d)"
        hits = con.execute(f"""
            select count(*) from (select unnest([{attacks}]) as h from candidates) join hexes on h = v
        """).fetchone()[0]
        assert hits == 0
        # the join is not blind: the old pseudonym of C2 (sha256 of the default salt and the digits) is found
        con.execute("insert into hexes select sha256('servicescore13900000002')")
        assert con.execute(
            f"select list(d) from (select d, unnest([{attacks}]) as h from candidates) join hexes on h = v"
        ).fetchone()[0] == ["13900000002"]
    finally:
        con.close()


def _duckdb_files_holding(path: Path, needle: str) -> list[str]:
    """Tables of a DuckDB file with a text cell containing `needle` (grep cannot see into compressed strings)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        found = []
        for schema, table, column in con.execute(
            "select schema_name, table_name, column_name from duckdb_columns() "
            "where database_name = current_database() and data_type = 'VARCHAR'"
        ).fetchall():
            n = con.execute(
                f'select count(*) from "{schema}"."{table}" where contains("{column}", ?)', [needle]
            ).fetchone()[0]
            if n:
                found.append(f"{schema}.{table}.{column}")
        return found
    finally:
        con.close()


@pytest.mark.slow
def test_the_key_is_in_no_file_of_the_data_folder_the_dbt_artifacts_or_the_docs_site(run):
    paths, key, *_ = run
    env = {**os.environ, "SERVICESCORE_DATA_DIR": str(paths.root), KEY_FILE_ENV: "/nonexistent"}
    docs = paths.reports / "dbt_docs"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ingestion.organisation",
            str(REPO_ROOT / ".venv" / "bin" / "dbt"),
            "docs",
            "generate",
            "--static",
            "--quiet",
            "--profiles-dir",
            ".",
            "--target-path",
            str(docs),
            "--log-path",
            str(docs / "logs"),
        ],
        cwd=DBT_PROJECT_DIR,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    assert (docs / "static_index.html").exists()
    hexed = key.encode().hex()
    for needle in (key, hexed):
        grep = subprocess.run(
            ["grep", "-rlaF", needle, str(paths.root), str(DBT_PROJECT_DIR / "target"), str(DBT_PROJECT_DIR / "logs")],
            capture_output=True,
            text=True,
        )
        assert grep.returncode == 1, grep.stdout  # 1: no line matched; 2 would be an error
        assert _duckdb_files_holding(paths.warehouse, needle) == []
        assert _duckdb_files_holding(paths.serving, needle) == []


@pytest.mark.slow
def test_the_gate_blocks_a_planted_leak_and_leaves_serving_byte_identical(run, tmp_path: Path):
    from orchestration.publication.engine import publish
    from orchestration.publish import published_marts

    paths, *_ = run
    planted = DataDir(tmp_path / "data").ensure()
    for name in ("warehouse.duckdb", "serving.duckdb"):
        (planted.root / name).write_bytes((paths.root / name).read_bytes())
    con = duckdb.connect(str(planted.warehouse))
    try:
        con.execute("update marts.dim_customers set city = '请拨 138-0000-0001' where customer_id = 'C1'")
        con.execute("update marts.dim_technicians set team_name = team_name || ' 周二' where technician_id = 'T1'")
    finally:
        con.close()
    before = sha256(planted.serving)
    with pytest.raises(PersonalDataLeakError) as err:
        publish(planted.warehouse, planted.serving, list(published_marts()), "planted", compare_all=True)
    assert [str(leak) for leak in err.value.leaks] == [
        "main.dim_customers.city: 1 row(s) with a customer phone",
        "main.dim_customers.city: 1 row(s) with a mobile number",
        "main.dim_technicians.team_name: 1 row(s) with a customer name",
    ]
    assert "13800000001" not in str(err.value) and "周二" not in str(err.value)  # the values are not shown
    assert sha256(planted.serving) == before
    assert sorted(p.name for p in planted.root.iterdir() if p.name.startswith("serving")) == ["serving.duckdb"]


# --- the key ---------------------------------------------------------------------------------------------------


@pytest.fixture
def no_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (KEY_FILE_ENV, KEY_ENV, RETIRED_SALT_ENV):
        monkeypatch.delenv(name, raising=False)


def test_without_a_key_one_is_generated_once_per_data_folder(tmp_path: Path, no_key_env):
    paths = DataDir(tmp_path / "data").ensure()
    first = pseudonym_key(paths, production=False)
    again = pseudonym_key(paths, production=False)
    assert (first.generated, again.generated) == (True, False)
    assert first.secret == again.secret and len(first.secret) == 64
    path = generated_key_path(paths)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert first.secret.decode() not in repr(first)
    other = pseudonym_key(DataDir(tmp_path / "other").ensure(), production=False)
    assert other.secret != first.secret and other.key_id != first.key_id


def test_production_without_a_configured_key_is_refused(tmp_path: Path, no_key_env):
    paths = DataDir(tmp_path / "data").ensure()
    with pytest.raises(PseudonymKeyError, match="no pseudonym key is configured and this is a production"):
        pseudonym_key(paths, production=True)
    assert not generated_key_path(paths).exists()


def test_a_short_key_and_the_retired_salt_are_refused(tmp_path: Path, no_key_env, monkeypatch):
    paths = DataDir(tmp_path / "data").ensure()
    monkeypatch.setenv(KEY_ENV, "short")
    with pytest.raises(PseudonymKeyError, match="is 5 bytes; at least 16 are needed"):
        pseudonym_key(paths, production=True)
    monkeypatch.setenv(KEY_ENV, "x" * 16)
    assert pseudonym_key(paths, production=True).source == f"environment {KEY_ENV}"
    monkeypatch.setenv(RETIRED_SALT_ENV, "servicescore")
    with pytest.raises(PseudonymKeyError, match=f"{RETIRED_SALT_ENV} is no longer read"):
        pseudonym_key(paths, production=False)


@pytest.mark.slow
def test_a_production_run_without_a_key_fails_before_anything_is_built(tmp_path: Path):
    paths = new_data_dir(tmp_path / "data")
    env = {k: "" for k in (KEY_FILE_ENV, KEY_ENV, RETIRED_SALT_ENV)}
    code, out = run_cli(paths, SERVICESCORE_DEPLOYMENT="production", **env)
    assert code != 0
    assert "no pseudonym key is configured and this is a production deployment" in out
    assert "publication: NOT published" in out
    assert not paths.serving.exists() and not generated_key_path(paths).exists()


@pytest.mark.slow
def test_the_demo_run_says_once_that_it_generated_a_key(tmp_path_factory: pytest.TempPathFactory):
    paths, code, out = baseline(tmp_path_factory.getbasetemp())
    assert code == 0, out[-4000:]
    assert len(re.findall(r"a random key was generated for this data folder", out)) == 1
    assert str(generated_key_path(paths)) in out
    assert stat.S_IMODE(generated_key_path(paths).stat().st_mode) == 0o600


def test_the_gate_tells_people_published_on_purpose_and_digests_from_leaks():
    """Found in the demo run: a technician 王伟华 contains the customer name 王伟, and a trainer can be named like
    a customer: a cell that is an employee's name in full is not a leak. A hex digest with eleven digits in a row
    is no mobile number. The same name in a comment, or a customer's phone inside an id, is."""
    con = duckdb.connect()
    try:
        con.execute("create schema raw")
        con.execute(
            "create table raw.customers as select * from (values ('C1', '王伟', '+86 139-0000-0002')) "
            "v(customer_id, name, phone)"
        )
        con.execute("create table raw.technicians as select '王伟华' as name")
        con.execute("create table raw.training_sessions as select '王伟' as trainer")
        con.execute("create schema m")
        con.execute("""create table m.t as select * from (values
            ('王伟华', '王伟', 'a13900000001fe', '王伟来过', 'K1'),
            ('王伟华 ', '李强', '13812345678', '很好', 'K13900000002')) v(technician, trainer, digest, note, id)""")
        assert [str(leak) for leak in leaks(con, "memory", [("m", "t")], raw_catalog="memory")] == [
            "m.t.digest: 1 row(s) with a mobile number",  # 13812345678 stands alone: a number, not a digest
            "m.t.id: 1 row(s) with a customer phone",
            "m.t.note: 1 row(s) with a customer name",
        ]
    finally:
        con.close()
