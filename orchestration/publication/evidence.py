"""The appraisal_evidence view of serving.duckdb: the facts behind every published monthly breakdown value.

In the warehouse, `marts.appraisal_evidence` is a dbt view over the facts (`int_indicator_evidence`) and the
monthly breakdown; stored, it would be about 8 rows per ticket (80 M rows at tier L), re-copied into serving
for every touched month. serving.duckdb already holds the facts (snapshot tables) and the current breakdown
(a view over its history), so the evidence is the same view there, rendered from the same rules: the evidence
of each indicator of the catalogue and the `evidence_sources` var (dbt_project.yml, read through
ingestion/indicator_catalogue.py). The view's references are unqualified, so they resolve inside serving.duckdb
whatever name a BI tool attaches it under.
"""

from __future__ import annotations

import dataclasses
import hashlib
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ingestion.indicator_catalogue import evidence_rules as catalogue_evidence_rules
from ingestion.paths import DBT_PROJECT_DIR
from ingestion.warehouse import quote_ident, quote_literal

VIEW = "appraisal_evidence"
BREAKDOWN = "appraisal_score_breakdown"


@cache
def evidence_rules(project_dir: Path = DBT_PROJECT_DIR) -> tuple[list[dict[str, Any]], dict[str, dict[str, str]]]:
    """(rules, sources) from dbt_project.yml: the one definition both the warehouse and serving views use."""
    project_vars = yaml.safe_load((project_dir / "dbt_project.yml").read_text(encoding="utf-8"))["vars"]
    rules = [dataclasses.asdict(rule) for rule in catalogue_evidence_rules(project_dir)]
    return rules, dict(project_vars["evidence_sources"])


def evidence_view_sql(schema: str = "main") -> str:
    """The select of the serving view; `schema` qualifies the facts and the breakdown (no catalog)."""
    rules, sources = evidence_rules()
    branches = []
    for rule in rules:
        source = sources[rule["fact"]]
        branches.append(
            f"select {quote_literal(rule['indicator_code'])} as indicator_code, technician_id, team_id, "
            f"{quote_ident(rule['activity_date'])} as activity_date, {quote_literal(source['source_type'])} "
            f"as source_type, {quote_ident(source['source_id'])} as source_id "
            f"from {quote_ident(schema)}.{quote_ident(rule['fact'])} where {rule['condition']}"
        )
    facts = "\n    union all\n    ".join(branches)
    breakdown = f"{quote_ident(schema)}.{quote_ident(BREAKDOWN)}"
    return f"""
with indicator_evidence as (
    {facts}
),
breakdown_values as (
    select distinct technician_id, team_id, period_start, period_end, period_label, indicator_code
    from {breakdown}
    where period_type = 'month'
)
select
    b.technician_id || '|' || b.period_label || '|' || b.indicator_code || '|' || e.source_type || '|'
        || cast(e.source_id as varchar) as evidence_id,
    b.technician_id, b.team_id, 'month' as period_type, b.period_start, b.period_end, b.period_label,
    b.indicator_code, e.source_type, e.source_id, e.activity_date, e.team_id as activity_team_id
from indicator_evidence as e
inner join breakdown_values as b
    on e.technician_id = b.technician_id
    and e.indicator_code = b.indicator_code
    and cast(date_trunc('month', e.activity_date) as date) = b.period_start
"""


def required_relations() -> set[str]:
    """The serving tables and views the view reads."""
    rules, _ = evidence_rules()
    return {r["fact"] for r in rules} | {BREAKDOWN}


def create_evidence_view(con: Any, catalog: str) -> bool:
    """Create or replace `<catalog>.main.appraisal_evidence` when serving has everything it reads (a table of
    that name, published by earlier versions, is dropped; their history.appraisal_evidence stays).
    The view's comment is the SHA-256 of its rendered SQL (DuckDB re-serializes a stored view's SQL, so the
    text cannot be compared). Returns whether the serving file changed: the view is new or its rules changed."""

    def names(kind: str, extra: str = "null") -> dict[str, Any]:
        column = "table_name" if kind == "table" else "view_name"
        return {
            row[0]: row[1]
            for row in con.execute(
                f"select {column}, {extra} from duckdb_{kind}s() where database_name = ? and schema_name = 'main'",
                [catalog],
            ).fetchall()
        }

    tables, views = names("table"), names("view", "comment")
    if not required_relations() <= set(tables) | set(views):
        return False
    sql = evidence_view_sql()
    fingerprint = hashlib.sha256(sql.encode()).hexdigest()
    if VIEW not in tables and views.get(VIEW) == fingerprint:
        return False
    if VIEW in tables:
        con.execute(f"drop table {quote_ident(catalog)}.main.{quote_ident(VIEW)}")
    target = f"{quote_ident(catalog)}.main.{quote_ident(VIEW)}"
    con.execute(f"create or replace view {target} as {sql}")
    con.execute(f"comment on view {target} is {quote_literal(fingerprint)}")
    return True
