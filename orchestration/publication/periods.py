"""Periods of the publication: which period labels a run may publish, which are closed, which changed (the
restatements of closed periods)."""

from __future__ import annotations

import datetime as dt

import duckdb

from ingestion.change_window import audit_mark, changes_since
from ingestion.warehouse import quote_ident, quote_literal
from orchestration.publication.relations import PERIOD_COLUMN, MartSpec, columns_of, content_hash_expr, table_exists


def period_last_month(label: str) -> dt.date | None:
    """The last month of a period label: '2026-05' → May, '2026-Q2' → June, '2026' → December."""
    try:
        if len(label) == 7 and label[4] == "-" and label[5] != "Q":
            return dt.date(int(label[:4]), int(label[5:7]), 1)
        if len(label) == 7 and label[5] == "Q":
            return dt.date(int(label[:4]), int(label[6]) * 3, 1)
        if len(label) == 4:
            return dt.date(int(label), 12, 1)
    except ValueError:
        return None
    return None


def is_period_closed(label: str, today: dt.date, closing_day: int) -> bool:
    from orchestration.partitions import is_closed

    last = period_last_month(label)
    return last is not None and is_closed(last, today, closing_day)


def period_labels_of_months(months: list[dt.date]) -> list[str]:
    """The labels of the periods containing the months: 'YYYY-MM', 'YYYY-Qn' and 'YYYY' (period_last_month)."""
    labels = set()
    for m in months:
        labels |= {f"{m.year:04d}-{m.month:02d}", f"{m.year:04d}-Q{(m.month - 1) // 3 + 1}", f"{m.year:04d}"}
    return sorted(labels)


def candidate_periods(
    con: duckdb.DuckDBPyConnection, versioned: list[MartSpec], previous: dict | None
) -> tuple[list[str] | None, dict | None]:
    """(the period labels to compare, or None for all; the change-window mark this publish reaches).

    The candidates are the periods containing a month of the change windows recorded since the previous
    publication's mark (ingestion/change_window.py, the warehouse attached as `w`). None whenever the audit
    cannot tell: no audit, no previous mark, a different set of versioned marts, an audit rewritten since, a
    versioned mart that does not recompute by the window (not incremental), or a full window since."""
    mark = audit_mark(con, "w")
    if mark is None:
        return None, None
    names = sorted(m.name for m in versioned)
    watermark = {**mark.as_dict(), "versioned_marts": names}
    if not previous or previous.get("versioned_marts") != names or not isinstance(previous.get("built_at_us"), int):
        return None, watermark
    if not names:
        return [], watermark
    if not all(m.windowed for m in versioned):
        return None, watermark
    changes = changes_since(con, int(previous["built_at_us"]), int(previous.get("rows", -1)), "w", mark.built_at_us)
    if changes.full:
        return None, watermark
    return period_labels_of_months(list(changes.months)), watermark


def changed_periods(
    con: duckdb.DuckDBPyConnection, versioned: list[MartSpec], candidates: list[str] | None = None
) -> dict[str, str]:
    """period_label -> new content hash, for every period (or every candidate period) whose content differs
    from its current version. A label that is not a month, quarter or year is always a candidate."""
    if not versioned or candidates == []:
        return {}
    where = f"{PERIOD_COLUMN} is not null"
    if candidates is not None:
        labels = ", ".join(quote_literal(c) for c in candidates)
        where += (
            f" and ({PERIOD_COLUMN} in ({labels}) or not regexp_full_match({PERIOD_COLUMN}, "
            f"'[0-9]{{4}}(-[0-9]{{2}}|-Q[1-4])?'))"
        )
    parts = []
    for m in versioned:
        src = f"w.{quote_ident(m.schema)}.{quote_ident(m.name)}"
        cols = columns_of(con, src)
        parts.append(
            f"select {PERIOD_COLUMN} as p, {quote_literal(m.name)} as m, {content_hash_expr(cols)} as h "
            f"from {src} where {where} group by {PERIOD_COLUMN}"
        )
    rows = con.execute(
        "with per_mart as (" + " union all ".join(parts) + "), "
        "per_period as (select p, md5(string_agg(m || ':' || cast(h as varchar), ',' order by m)) as h "
        "from per_mart group by p), "
        "current as (select period_label, content_hash from s.main.publication_periods "
        "qualify row_number() over (partition by period_label order by version desc) = 1) "
        "select p, h from per_period left join current on current.period_label = per_period.p "
        "where current.content_hash is distinct from per_period.h"
    ).fetchall()
    return {str(p): str(h) for p, h in rows}


def restatement_summary(
    con: duckdb.DuckDBPyConnection, publication_id: int, period: str, version: int
) -> dict[str, object]:
    """What changed against the previous version of a period: technicians whose score or grade moved."""
    if not table_exists(con, "s", "history", "appraisal_scores"):
        return {"changed_technicians": None}
    con.execute(
        """
        insert into s.main.publication_changes
        select ?, ?, ?, coalesce(n.technician_id, o.technician_id), coalesce(n.period_type, o.period_type),
            coalesce(n.method, o.method), o.composite_score, n.composite_score,
            round(n.composite_score - o.composite_score, 4), o.grade, n.grade
        from (select * from s.history.appraisal_scores where period_label = ? and _version = ?) as n
        full outer join (select * from s.history.appraisal_scores where period_label = ? and _version = ?) as o
            on n.technician_id = o.technician_id and n.period_type = o.period_type and n.method = o.method
        where n.composite_score is distinct from o.composite_score or n.grade is distinct from o.grade
        """,
        [publication_id, period, version, period, version, period, version - 1],
    )
    row = con.execute(
        "select count(distinct technician_id), count(*) filter (where previous_grade is distinct from new_grade), "
        "max(abs(score_change)) from s.main.publication_changes where period_label = ? and version = ?",
        [period, version],
    ).fetchall()[0]
    return {"changed_technicians": row[0], "grade_changes": row[1], "max_abs_score_change": row[2]} if row else {}
