"""The audit of every publication in serving.duckdb (`publications`, `publication_checks`, the change-window
mark), and reading the current one back."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from ingestion.warehouse import quote_literal
from orchestration.publication.relations import table_exists


def record_audit(con: duckdb.DuckDBPyConnection, publication_id: int) -> None:
    """What this publication was made from: every input file (content hash) and the latest result of every
    quality suite. The validation history itself is copied as quality_validation_results."""
    if table_exists(con, "w", "raw", "load_log"):
        con.execute(
            "insert into s.main.publication_inputs select ?, feed, source_file, file_hash, rows_read, rows_loaded, "
            "rows_rejected, loaded_at, run_id from w.raw.load_log order by feed, source_file",
            [publication_id],
        )
    if table_exists(con, "w", "quality", "validation_results"):
        con.execute(
            """
            insert into s.main.publication_checks
            with latest as (
                select * from w.quality.validation_results
                qualify dense_rank() over (partition by suite order by validated_at desc, run_id desc) = 1
            )
            select ?, any_value(run_id), suite, any_value("table"), count(*),
                count(*) filter (where not success and severity = 'error'),
                count(*) filter (where not success and severity <> 'error'),
                count(*) filter (where not success and severity = 'error') = 0, max(validated_at)
            from latest group by suite order by suite
            """,
            [publication_id],
        )
        con.execute(
            "create or replace table s.main.quality_validation_results as select * from w.quality.validation_results"
        )


# ------------------------------------------------------------------------------- candidate periods

# the change-window audit position (ingestion/change_window.py, Mark) the publication was made at
WATERMARK_KEY = "change_window_mark"


def current_audit(con: duckdb.DuckDBPyConnection) -> dict:
    """The audit JSON of the current (latest) publication of the serving file attached as `s` ({}: none)."""
    row = con.execute("select audit from s.main.publications order by publication_id desc limit 1").fetchall()
    if not row or not row[0][0]:
        return {}
    try:
        recorded = json.loads(row[0][0])
    except ValueError:
        return {}
    return recorded if isinstance(recorded, dict) else {}


def previous_watermark(con: duckdb.DuckDBPyConnection) -> dict | None:
    """The change-window mark the current publication recorded (None: none recorded, an older file)."""
    recorded = current_audit(con).get(WATERMARK_KEY)
    return recorded if isinstance(recorded, dict) else None


def current_publication_audit(serving: Path) -> dict:
    """The audit of the publication BI currently reads ({}: no serving file, no publication, unreadable).
    Read-only and brief: BI readers may hold the file open read-only at the same time."""
    if not serving.exists():
        return {}
    con = duckdb.connect()
    try:
        con.execute(f"attach {quote_literal(str(serving))} as s (read_only)")
        return current_audit(con)
    except duckdb.Error:
        return {}
    finally:
        con.close()
