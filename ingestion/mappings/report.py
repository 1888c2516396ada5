"""The dry-run report: per target feed, rows mapped, rejected by rule (with first row numbers), samples."""

from __future__ import annotations

from pathlib import Path

from ingestion.mappings.engine import mapped_rows, run_mapping
from ingestion.mappings.spec import load_mapping

FIRST_ROWS = 5


def dry_run(mapping_path: str | Path, source_path: str | Path, samples: int = 3) -> str:
    mapping = load_mapping(mapping_path)
    run = run_mapping(mapping, Path(source_path))
    try:
        lines = [f"mapping {mapping.name} ({mapping_path}) on {source_path}"]
        for feed, res in run.results.items():
            fm = mapping.feeds[feed]
            origin = f"derived from {fm.derive_from}" if fm.derive_from else f"{res.source_rows} source rows"
            lines.append("")
            lines.append(f"== {feed} ({origin})")
            if res.superseded:
                lines.append(f"   superseded (older versions, latest by {fm.latest.by}): {res.superseded}")
            if res.filtered_out:
                lines.append(f"   filtered out (not this feed's rows): {res.filtered_out}")
            lines.append(f"   mapped:   {res.mapped}")
            lines.append(f"   rejected: {res.rejected}")
            groups = run.con.execute(
                """
                with failures as (
                    select row_number, unnest(reasons) as r from rejected where feed = $feed
                )
                select
                    r.rule,
                    count(distinct row_number) as row_count,
                    list(distinct row_number order by row_number)[1:$n] as first_rows,
                    min(r.reason) as example,
                from failures
                group by r.rule
                order by row_count desc, r.rule
                """,
                {"feed": feed, "n": FIRST_ROWS},
            ).fetchall()
            for rule, count, first_rows, example in groups:
                rows = ", ".join(str(r) for r in first_rows)
                more = ", ..." if count > len(first_rows) else ""
                lines.append(f"     {count:>6}  {rule}")
                lines.append(f"             rows {rows}{more}")
                lines.append(f"             e.g. {example}")
            sample = mapped_rows(run, feed, limit=samples, as_text=True)
            if sample:
                lines.append(f"   first {len(sample)} mapped rows:")
                for row in sample:
                    shown = ", ".join(f"{k}={v}" for k, v in row.items() if v is not None)
                    lines.append(f"     {shown}")
        return "\n".join(lines)
    finally:
        run.con.close()
