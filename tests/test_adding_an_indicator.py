"""docs/adding_an_indicator.md, followed as written: its edits are read from the page and applied to a copy of the
project, which then agrees with its catalogue, passes the settings validator and builds the new indicator's
values, sample and evidence on hand-made tickets.

Hand-made tickets (tests/test_dbt_core.py's, with on-site visits changed): T1 resolves in 2026-01 K1 (visits
unknown), K2 (0 visits) and K3 (2): remote resolution rate 1/2 on a sample of 2. T2 resolves K6 in 2026-01 (1
visit), K7 (0) and K8 (1) in 2026-02: 0/1 in January, 1/2 in February, 1/3 in 2026-Q1. T3's K10 and K9 have
one visit each (the default of the hand-made tickets).
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import duckdb
import pytest

from ingestion.indicator_catalogue import disagreements, indicators
from ingestion.paths import DBT_PROJECT_DIR, REPO_ROOT
from orchestration.settings.indicators import validate_settings
from tests.test_dbt_core import DBT, ROWS, build_raw_warehouse

pytestmark = pytest.mark.dbt

DOC = REPO_ROOT / "docs" / "adding_an_indicator.md"
STEP = re.compile(
    r"In `(?P<path>[^`]+)`, (?P<how>after the line|after every line|replace the line) `(?P<anchor>.+)`(?: by|, add):"
)
BLOCK = re.compile(r"```[a-z]*\n(?P<block>.*?)```", re.S)


def _edits(text: str) -> list[tuple[str, str, str, str]]:
    """(path, how, anchor, block) of each step of the page, how being 'after', 'after every' or 'replace': a
    line `In <path>, after the line <anchor>, add:` (or `after every line`, or `replace the line <anchor> by:`)
    and the fenced block that follows it."""
    out = []
    for m in STEP.finditer(text):
        block = BLOCK.search(text, m.end())
        assert block is not None, m.group(0)
        how = {"after the line": "after", "after every line": "after every", "replace the line": "replace"}
        out.append((m.group("path"), how[m.group("how")], m.group("anchor"), block.group("block")))
    return out


def apply_doc(project: Path) -> int:
    """Apply the page's edits to `project` (a copy of dbt_project); the number of lines changed."""
    changed = 0
    for path, how, anchor, block in _edits(DOC.read_text(encoding="utf-8")):
        target = project / Path(path).relative_to("dbt_project")
        lines = target.read_text(encoding="utf-8").split("\n")
        hits = [i for i, line in enumerate(lines) if line.strip() == anchor.strip()]
        assert hits and (how == "after every" or len(hits) == 1), (path, anchor, len(hits))
        new = block.rstrip("\n").split("\n")
        for i in reversed(hits):
            lines[i : i + 1] = new if how == "replace" else [lines[i], *new]
            changed += 1
        target.write_text("\n".join(lines), encoding="utf-8")
    return changed


def _rows() -> dict[str, list[dict]]:
    rows = copy.deepcopy(ROWS)
    visits = {"K1": None, "K2": 0, "K3": 2, "K6": 1, "K7": 0, "K8": 1}
    for ticket in rows["tickets"]:
        if ticket["ticket_id"] in visits:
            ticket["onsite_visits"] = visits[ticket["ticket_id"]]
    return rows


@pytest.fixture(scope="module")
def added(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, duckdb.DuckDBPyConnection]:
    root = tmp_path_factory.mktemp("adding")
    project = root / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "dbt_packages", "logs"))
    assert apply_doc(project) == 11  # 1 catalogue entry, 2 model edits, 1 seed line, 1 + 6 doc insertions
    data = root / "data"
    path = build_raw_warehouse(data, _rows())
    env = {**os.environ, "SERVICESCORE_DATA_DIR": str(data), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    result = subprocess.run(
        [
            str(DBT),
            "build",
            "--exclude",
            "path:models/marts/appraisal",
            "path:models/intermediate/appraisal",
            "path:models/marts/training",
            "path:models/intermediate/training",
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    con = duckdb.connect(str(path), read_only=True)
    yield project, con
    con.close()


def test_the_page_gives_every_edit_it_describes():
    edits = _edits(DOC.read_text(encoding="utf-8"))
    assert [(Path(p).name, how) for p, how, _, _ in edits] == [
        ("dbt_project.yml", "after"),
        ("int_kpi_monthly_sums.sql", "replace"),
        ("int_kpi_monthly_sums.sql", "after"),
        ("indicator_settings.csv", "replace"),
        ("_kpi__models.yml", "after"),
        ("_kpi__models.yml", "after every"),
    ]


def test_the_changed_project_agrees_with_its_catalogue(added):
    project, _ = added
    assert disagreements(project) == []
    new = indicators(project)[-1]
    assert (new.code, new.unit, new.direction, new.mart_columns) == (
        "remote_resolution_rate",
        "fraction",
        "higher",
        ("remote_resolution_rate", "remote_resolution_rate_n"),
    )
    rows = validate_settings(project / "seeds")
    assert {r.indicator_code for r in rows} >= {"remote_resolution_rate"}


def test_the_new_indicator_is_computed_from_the_facts_of_each_period(added):
    _, con = added
    got = con.execute(
        "select technician_id, period_label, remote_resolution_rate, remote_resolution_rate_n "
        "from marts.kpi_technician_monthly where technician_id in ('T1', 'T2') order by 1, 2"
    ).fetchall()
    assert got == [
        ("T1", "2026-01", 0.5, 2),
        ("T1", "2026-02", None, 0),  # T1 has other activity then, no resolved ticket: not measured, never 0
        ("T1", "2026-03", None, 0),
        ("T2", "2026-01", 0.0, 1),
        ("T2", "2026-02", 0.5, 2),
    ]
    quarter = con.execute(
        "select remote_resolution_rate, remote_resolution_rate_n from marts.kpi_technician_quarterly "
        "where technician_id = 'T2' and period_start = ?",
        [date(2026, 1, 1)],
    ).fetchall()
    assert quarter == [(pytest.approx(1 / 3), 3)]
    long_form = con.execute(
        "select value, sample_size from intermediate.int_indicator_values where indicator_code = "
        "'remote_resolution_rate' and subject_type = 'technician' and subject_id = 'T1' and period_type = 'month' "
        "order by period_start"
    ).fetchall()
    assert long_form == [(0.5, 2), (None, 0), (None, 0)]


def test_the_new_indicator_lists_its_evidence(added):
    _, con = added
    evidence = con.execute(
        "select technician_id, source_id from intermediate.int_indicator_evidence "
        "where indicator_code = 'remote_resolution_rate' order by 1, 2"
    ).fetchall()
    # K1's visits are unknown: not evidence; T3's K10 and K9 (one visit each) are
    assert evidence == [
        ("T1", "K2"),
        ("T1", "K3"),
        ("T2", "K6"),
        ("T2", "K7"),
        ("T2", "K8"),
        ("T3", "K10"),
        ("T3", "K9"),
    ]
