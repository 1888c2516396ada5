"""The dry-run report: per target feed, rows mapped, rejected by rule (with their first physical lines), the
day/month ambiguity of date columns, samples, and the indicators the source cannot support."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ingestion.contracts import FEEDS
from ingestion.export_mapping.compiler import ident
from ingestion.export_mapping.engine import FIRST_ROWS, MappingRun, run_mapping, where_text
from ingestion.export_mapping.outputs import mapped_rows
from ingestion.export_mapping.spec import load_mapping
from ingestion.measures import indicator_inputs


@dataclass
class Support:
    """What the mapped rows can measure: (feed, column)s with at least one value, columns mapped but empty
    in this source, columns that are a constant (the mapping says it, the source does not)."""

    available: set[tuple[str, str]]
    empty: set[tuple[str, str]]
    constants: dict[tuple[str, str], str]

    def cannot_support(self) -> dict[str, list[str]]:
        out = {}
        for code, inputs in indicator_inputs().items():
            missing = inputs.missing(self.available)
            if missing:
                out[code] = [
                    m + (" (mapped, but empty in this source)" if tuple(m.split(".", 1)) in self.empty else "")
                    for m in missing
                ]
        return out

    def from_constants(self) -> dict[str, list[str]]:
        out = {}
        for code, inputs in indicator_inputs().items():
            if inputs.missing(self.available):
                continue
            fixed = [
                f"{f}.{c} = {self.constants[(f, c)]}"
                for f, c in (*inputs.all_of, *inputs.any_of)
                if (f, c) in self.constants
            ]
            if fixed:
                out[code] = fixed
        return out


def support(run: MappingRun) -> Support:
    available: set[tuple[str, str]] = set()
    empty: set[tuple[str, str]] = set()
    constants: dict[tuple[str, str], str] = {}
    for feed in run.results:
        names = FEEDS[feed].column_names
        counts = run.con.execute(
            f"select {', '.join(f'count({ident(c)})' for c in names)} from out_{ident(feed)}"
        ).fetchall()[0]
        rules = run.mapping.feeds[feed].columns
        for col, n in zip(names, counts, strict=True):
            if col not in rules:
                continue
            if n:
                available.add((feed, col))
            else:
                empty.add((feed, col))
            # a constant for an optional measure (reopened_count: 0) is the mapping's claim, not the source's
            # data; constants of required columns (priority, service_type) classify rows and are not listed
            if rules[col].constant is not None and rules[col].when is None and not FEEDS[feed].column(col).required:
                constants[(feed, col)] = str(rules[col].constant)
    return Support(available, empty, constants)


def support_lines(run: MappingRun) -> list[str]:
    s = support(run)
    lines = []
    cannot = s.cannot_support()
    if cannot:
        lines.append(
            f"indicators this source cannot support ({len(cannot)} of {len(indicator_inputs())}; "
            "they are not measured, never 0):"
        )
        lines += [f"   {code:<26} needs {', '.join(missing)}" for code, missing in cannot.items()]
    else:
        lines.append(f"indicators: the source can support all {len(indicator_inputs())}")
    fixed = s.from_constants()
    if fixed:
        lines.append("indicators that read a constant of the mapping (measured as the mapping says, not the source):")
        lines += [f"   {code:<26} {', '.join(v)}" for code, v in fixed.items()]
    return lines


def dry_run(mapping_path: str | Path, source_path: str | Path, samples: int = 3) -> str:
    mapping = load_mapping(mapping_path)
    run = run_mapping(mapping, Path(source_path))
    try:
        return report(run, f"mapping {mapping.name} ({mapping_path}) on {source_path}", samples)
    finally:
        run.con.close()


def report(run: MappingRun, title: str, samples: int = 3) -> str:
    mapping = run.mapping
    lines = [title]
    lines += [f"note: {n}" for n in run.notes]
    if run.malformed:
        lines.append("")
        lines.append(f"== malformed source records: {run.malformed} (not read; the rest of the file is)")
        for rule, count, first_rows, first_lines, example in _groups(run, "(source)"):
            lines.append(f"     {count:>6}  {rule}")
            lines.append(f"             {where_text(count, first_rows, first_lines)}")
            lines.append(f"             e.g. {example}")
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
        for rule, count, first_rows, first_lines, example in _groups(run, feed):
            lines.append(f"     {count:>6}  {rule}")
            lines.append(f"             {where_text(count, first_rows, first_lines)}")
            lines.append(f"             e.g. {example}")
        for check in res.date_checks:
            lines.append(f"   day/month: {check.describe(feed)}")
        sample = mapped_rows(run, feed, limit=samples, as_text=True)
        if sample:
            lines.append(f"   first {len(sample)} mapped rows:")
            for row in sample:
                shown = ", ".join(f"{k}={v}" for k, v in row.items() if v is not None)
                lines.append(f"     {shown}")
    lines.append("")
    lines += support_lines(run)
    refusals = run.refusals()
    lines.append("")
    if refusals:
        lines.append("apply would REFUSE to write:")
        lines += [f"   {r}" for r in refusals]
    else:
        lines.append("apply would write the mapped rows (and the rejected rows with their rules)")
    return "\n".join(lines)


def _groups(run: MappingRun, feed: str) -> list[tuple]:
    return run.con.execute(
        """
        with failures as (
            select row_number, line, unnest(reasons) as r from rejected where feed = $feed
        )
        select
            r.rule,
            count(distinct row_number) as row_count,
            list(distinct row_number order by row_number)[1:$n] as first_rows,
            (list(line order by row_number))[1:$n] as first_lines,
            min(r.reason) as example,
        from failures
        group by r.rule
        order by row_count desc, r.rule
        """,
        {"feed": feed, "n": FIRST_ROWS},
    ).fetchall()
