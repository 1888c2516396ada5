"""Security: personal data never leaves raw; no SQL is built from unchecked names; landing files cannot
point outside the landing folder.

The personal-data scan reads every column of every table and view of the warehouse's marts schema and of every
schema of serving.duckdb (all values, not a sample: the data set is small), and looks for any raw customer name
or phone number in them — the phone also with separators stripped (138-0000-0001), and the column names."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from ingestion.contracts import PERSONAL_DATA_COLUMNS
from ingestion.paths import DataDir
from ingestion.warehouse import quote_ident, quote_literal
from tests.cli_runs import baseline

# a column may carry a derived form of personal data only under a name that says so
PERSONAL_COLUMN_NAMES = {n for cols in PERSONAL_DATA_COLUMNS.values() for n in cols} | {
    "customer_name",
    "customer_phone",
    "phone_number",
    "mobile",
    "telephone",
    "tel",
    "contact_name",
}


def personal_data_leaks(warehouse: Path, target: Path, schemas: set[str] | None) -> list[tuple[str, str, str]]:
    """(relation, column, what) for every column of `target` (in `schemas`, or all) holding a raw customer
    name or phone of `warehouse`'s raw.customers, or named like a personal-data column."""
    con = duckdb.connect()
    try:
        con.execute(f"attach {quote_literal(str(warehouse))} as w (read_only)")
        if target != warehouse:
            con.execute(f"attach {quote_literal(str(target))} as t (read_only)")
        db = "w" if target == warehouse else "t"
        con.execute("""
            create temp table pii as
            select distinct trim(name) as value, 'customer name' as what from w.raw.customers
            where length(trim(name)) >= 2
            union all
            select distinct regexp_replace(phone, '[^0-9]', '', 'g'), 'customer phone' from w.raw.customers
            where length(regexp_replace(phone, '[^0-9]', '', 'g')) >= 7
        """)
        assert con.execute("select count(*) from pii").fetchall()[0][0] > 0, "no personal data to look for"
        rels = con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = ? union all "
            "select schema_name, view_name from duckdb_views() where database_name = ? and not internal",
            [db, db],
        ).fetchall()
        leaks: list[tuple[str, str, str]] = []
        for schema, table in sorted(rels):
            if schemas is not None and schema not in schemas:
                continue
            rel = f"{db}.{quote_ident(schema)}.{quote_ident(table)}"
            cols = [r[0] for r in con.execute(f"describe select * from {rel}").fetchall()]
            leaks += [
                (f"{schema}.{table}", c, "personal-data column name")
                for c in cols
                if c.lower() in PERSONAL_COLUMN_NAMES
            ]
            if not cols:
                continue
            casts = ", ".join(f"cast({quote_ident(c)} as varchar) as {quote_ident(c)}" for c in cols)
            found = con.execute(f"""
                with cells as (
                    unpivot (select {casts} from {rel}) on columns(*) into name col value v
                )
                select distinct col, pii.what from cells join pii
                    on contains(cells.v, pii.value)
                    or (pii.what = 'customer phone' and contains(regexp_replace(cells.v, '[^0-9]', '', 'g'), pii.value))
                order by 1, 2
            """).fetchall()
            leaks += [(f"{schema}.{table}", c, what) for c, what in found]
        return leaks
    finally:
        con.close()


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> DataDir:
    paths, code, out = baseline(tmp_path_factory.getbasetemp())
    assert code == 0, out[-6000:]
    return paths


@pytest.mark.slow
def test_no_customer_name_or_phone_in_any_mart(base: DataDir):
    assert personal_data_leaks(base.warehouse, base.warehouse, {"marts"}) == []


@pytest.mark.slow
def test_no_customer_name_or_phone_in_the_serving_file(base: DataDir):
    assert personal_data_leaks(base.warehouse, base.serving, None) == []


@pytest.mark.slow
def test_the_scan_finds_a_planted_leak(base: DataDir, tmp_path: Path):
    """The scanner is not blind: names in free text, phones with separators and PII column names are found."""
    leaky = tmp_path / "leaky.duckdb"
    shutil.copy2(base.serving, leaky)
    con = duckdb.connect(str(leaky))
    con.execute("create table main.notes as select 'call 陈一 back' as note, '138-0000-0001' as contact, 'x' as phone")
    con.execute("create view main.notes_view as select note from main.notes")
    con.close()
    assert sorted(personal_data_leaks(base.warehouse, leaky, None)) == [
        ("main.notes", "contact", "customer phone"),
        ("main.notes", "note", "customer name"),
        ("main.notes", "phone", "personal-data column name"),
        ("main.notes_view", "note", "customer name"),
    ]


# --- no SQL from unchecked names: indicator settings -----------------------------------------------------------

SEEDS = Path(__file__).resolve().parent.parent / "dbt_project" / "seeds"
INJECTIONS = [
    "csat'; drop table raw.tickets; --",
    'csat" or 1=1 --',
    "csat)",
    "Csat",
    "csat x",
    "1csat",
    "csat;",
    "csat\u200b",
    "ｃｓａｔ",
]


@pytest.mark.parametrize("column", ["indicator_code", "category", "kind", "unit", "direction", "method"])
@pytest.mark.parametrize("payload", INJECTIONS, ids=range(len(INJECTIONS)))
def test_settings_identifiers_that_are_not_plain_names_are_refused(tmp_path: Path, column: str, payload: str):
    import csv
    import io

    from orchestration.settings.indicators import IndicatorSettingsError, validate_settings

    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    path = seeds / "indicator_settings.csv"
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    rows[0][column] = payload
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")
    with pytest.raises(IndicatorSettingsError) as err:
        validate_settings(seeds)
    assert f"row 2: rule identifier: {column} {payload!r} is not a plain name" in str(err.value)


def test_the_dbt_step_refuses_invalid_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The dbt step calls this before dbt runs: bad settings stop the build with the rule broken."""
    from dagster import Failure

    from orchestration import transform

    shutil.copytree(SEEDS, tmp_path / "seeds")
    path = tmp_path / "seeds" / "indicator_settings.csv"
    path.write_text(
        path.read_text(encoding="utf-8").replace(",quantitative,fraction,", ",quantitative,frac'tion,", 1),
        encoding="utf-8",
    )
    monkeypatch.setattr(transform, "DBT_PROJECT_DIR", tmp_path)
    with pytest.raises(Failure, match='(?s)nothing was scored.*unit "frac\'tion" is not a plain name'):
        transform.validate_settings_or_fail()


# --- no SQL from unchecked names: feed mappings -----------------------------------------------------------------

MAPPING = {
    "name": "t",
    "source": {"timezone": "Asia/Shanghai"},
    "feeds": {
        "tickets": {
            "columns": {
                "ticket_id": {"column": "id"},
                "created_at": {"column": "at", "formats": ["%Y-%m-%d"]},
                "updated_at": {"column": "at", "formats": ["%Y-%m-%d"]},
                "status": {"constant": "open"},
                "service_type": {"constant": "repair"},
                "priority": {"constant": "P1"},
                "technician_id": {"column": "tech"},
            }
        }
    },
}


def _mapping(change) -> dict:
    doc = json.loads(json.dumps(MAPPING))
    change(doc)
    return doc


MAPPING_INJECTIONS = [
    (
        "source column with a quote",
        lambda d: d["feeds"]["tickets"]["columns"].update(ticket_id={"column": 'id"); drop table src; --'}),
        "source column name",
    ),
    (
        "source column with a newline",
        lambda d: d["feeds"]["tickets"]["columns"].update(ticket_id={"column": "id\n"}),
        "source column name",
    ),
    (
        "target column not a plain name",
        lambda d: d["feeds"]["tickets"]["columns"].update({"ticket_id; drop table x": {"column": "id"}}),
        "not a column of feed tickets",
    ),
    (
        "target column with a trailing newline",
        lambda d: d["feeds"]["tickets"]["columns"].update({"customer_id\n": {"column": "id"}}),
        "not a column of feed tickets",
    ),
    ("feed name", lambda d: d["feeds"].update({"tickets; --": d["feeds"].pop("tickets")}), "unknown feed"),
    (
        "base column",
        lambda d: d["feeds"]["tickets"]["columns"].update(first_response_at={"base": "created_at) or (1=1"}),
        "base",
    ),
    ("mapping name with a path", lambda d: d.update(name="../landing"), "must match"),
    ("mapping name with a trailing newline", lambda d: d.update(name="t\n"), "must match"),
    ("time zone", lambda d: d["source"].update(timezone="UTC'; drop table src; --"), "unknown time zone"),
    ("encoding", lambda d: d["source"].update(encoding="utf-8'; drop"), "unknown encoding"),  # never SQL anyway
]


@pytest.mark.parametrize(("case", "change", "message"), MAPPING_INJECTIONS, ids=[c[0] for c in MAPPING_INJECTIONS])
def test_mapping_names_that_are_not_plain_are_refused(case: str, change, message: str):
    from ingestion.export_mapping.spec import MappingError, parse_mapping

    with pytest.raises(MappingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_mapping(_mapping(change), "m.yaml")


def test_mapping_literals_and_formats_are_bound_not_pasted(tmp_path: Path):
    """Text that is data (formats, value maps, constants) reaches DuckDB as parameters: no name check needed."""
    from ingestion.export_mapping.engine import run_mapping
    from ingestion.export_mapping.outputs import mapped_rows, rejected_rows
    from ingestion.export_mapping.spec import parse_mapping

    evil = "x'); drop table src; --"
    doc = _mapping(
        lambda d: d["feeds"]["tickets"]["columns"].update(
            created_at={"column": "at", "formats": ["%Y-%m-%d", "%Y'); drop table src; --"]},
            customer_id={"constant": evil},
        )
    )
    src = tmp_path / "src.csv"
    src.write_text("id,at,tech\nA,2021-01-02,T\nB,not a date,T\n", encoding="utf-8")
    run = run_mapping(parse_mapping(doc, "m.yaml"), src, work_dir=tmp_path / "work")
    assert [(r["ticket_id"], r["customer_id"]) for r in mapped_rows(run, "tickets")] == [("A", evil)]
    assert len(rejected_rows(run, "tickets")) == 1
    assert run.con.execute("select count(*) from src").fetchone()[0] == 2


# --- landing file names ---------------------------------------------------------------------------------------


def _tech_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("technician_id,name,team_id\nT1,张伟,TM1\n", encoding="utf-8")
    return path


def test_symlinked_feed_folder_outside_the_landing_is_refused(data_dir: DataDir, tmp_path: Path):
    from ingestion.landing import LandingError
    from ingestion.loader import load_feed

    outside = tmp_path / "elsewhere"
    _tech_file(outside / "2026-05-01.csv")
    data_dir.landing.mkdir(parents=True, exist_ok=True)
    (data_dir.landing / "technicians").symlink_to(outside, target_is_directory=True)
    with pytest.raises(LandingError, match="resolves outside the landing folder"):
        load_feed(data_dir.warehouse, data_dir.landing, "technicians", "r", data_dir.work)


@pytest.mark.parametrize(
    "name",
    [
        "..",
        "../2026-05-01.csv",
        "2026-05-01.csv\n",
        "2026-05-01 x.csv",
        "2026-05-01.csv.exe",
        "x2026-05-01.csv",
        ".2026-05-01.csv",
    ],
)
def test_file_names_outside_the_pattern_are_ignored_not_read(data_dir: DataDir, name: str):
    """`..`, a path separator or a newline never make a landing file: names must match the whole pattern."""
    from ingestion.landing import list_files

    feed_dir = data_dir.feed_dir("technicians")
    feed_dir.mkdir(parents=True, exist_ok=True)
    if "/" not in name and name != "..":
        _tech_file(feed_dir / name)
    found, _ignored = list_files(data_dir.landing, "technicians")
    assert found == []
    # a name with a path in it can only come from a caller: the loader only lists real directory entries
    assert all(f.path.parent == feed_dir.resolve() for f in found)


def test_feed_names_cannot_leave_the_landing(data_dir: DataDir):
    from ingestion.landing import LandingError, list_files

    for feed in ("../etc", "/etc", "technicians/../../x", ""):
        with pytest.raises(LandingError, match="unknown feed"):
            list_files(data_dir.landing, feed)


def test_a_symlink_inside_the_landing_is_accepted(data_dir: DataDir):
    """The rule is where a file resolves, not whether it is a link: a link within the landing folder loads."""
    from ingestion.landing import list_files

    real = _tech_file(data_dir.landing / "archive" / "2026-05-01.csv")
    link = data_dir.feed_dir("technicians") / "2026-05-01.csv"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(real)
    found, _ = list_files(data_dir.landing, "technicians")
    assert [f.path for f in found] == [real.resolve()]
