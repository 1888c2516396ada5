"""Writing what a mapping run accepted (landing/<feed>/<date>_<mapping>.<ext>) and rejected (the rejected-rows
file), and reading them back for the report and the tests."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import duckdb

from ingestion.contracts import FEEDS
from ingestion.export_mapping.compiler import execute, ident
from ingestion.export_mapping.engine import FIRST_ROWS, MappingResult, MappingRun, run_mapping, where_text
from ingestion.export_mapping.spec import (
    MappingError,
    load_mapping,
)


def _sql_string(value: str) -> str:
    """A SQL string literal for a file path (COPY takes no parameters); quotes are doubled."""
    if "\x00" in value:
        raise MappingError("path contains a NUL character")
    return "'" + value.replace("'", "''") + "'"


def _day_expr(feed: str, col: str) -> str:
    x = ident(col)
    if FEEDS[feed].column(col).type == "timestamp":
        return f"strftime(timezone($zone, {x}), '%Y-%m-%d')"
    return f"strftime({x}, '%Y-%m-%d')"


def _export_select(feed: str, fmt: str, table: str | None = None, where: str | None = None) -> str:
    contract = FEEDS[feed]
    cols = []
    for c in contract.columns:
        x = ident(c.name)
        if fmt != "parquet" and c.type == "timestamp":
            cols.append(f"strftime(timezone('UTC', {x}), '%Y-%m-%dT%H:%M:%S') || '+00:00' as {x}")
        elif fmt != "parquet" and c.type in ("date", "month"):
            cols.append(f"strftime({x}, '%Y-%m-%d') as {x}")
        else:
            cols.append(x)
    source = table or f"out_{ident(feed)}"
    return f"select {', '.join(cols)} from {source}" + (f" where {where}" if where else "")


def _copy(con: duckdb.DuckDBPyConnection, select: str, path: Path, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    options = {"csv": "format csv, header true", "parquet": "format parquet", "jsonl": "format json"}[fmt]
    con.execute(f"copy ({select}) to {_sql_string(str(tmp))} ({options})")
    os.replace(tmp, path)


def write_outputs(
    run: MappingRun,
    landing_dir: Path,
    rejected_dir: Path,
    as_of: dt.date,
    *,
    output_format: str | None = None,
    stem: str | None = None,
) -> MappingResult:
    """Write landing/<feed>/<stem>.<ext> per feed (stem default <as_of>_<name>) and the rejected rows."""
    fmt = output_format or run.mapping.output.format
    ext = {"csv": "csv", "parquet": "parquet", "jsonl": "jsonl"}[fmt]
    name = run.mapping.name
    stem = stem or f"{as_of.isoformat()}_{name}"
    if not stem.startswith(as_of.isoformat()) or "/" in stem or stem.startswith("."):
        raise MappingError(f"landing file stem {stem!r} must start with the date {as_of}")
    split = run.mapping.output.split_by_day
    zone = run.mapping.source.timezone or "UTC"
    days: dict[str, list[str]] = {}
    for feed, col in split.items():
        day = _day_expr(feed, col)
        days[feed] = [
            r[0]
            for r in execute(
                run.con,
                f"select distinct {day} as d from out_{ident(feed)} where d is not null order by d",
                {"zone": zone},
            ).fetchall()
        ]
        # rows without a day go into the first day's file
        execute(
            run.con,
            f"create or replace temp table day_{ident(feed)} as select *, "
            f"coalesce({day}, $first) as _day from out_{ident(feed)}",
            {"zone": zone, "first": days[feed][0] if days[feed] else as_of.isoformat()},
        )
    all_days = sorted({d for ds in days.values() for d in ds})
    single_stem = stem
    if all_days and stem == f"{as_of.isoformat()}_{name}":
        single_stem = f"{all_days[0]}_{name}"
    for feed, res in run.results.items():
        if feed in split:
            paths = []
            for day in days[feed]:
                path = Path(landing_dir) / feed / f"{day}_{name}.{ext}"
                select = _export_select(feed, fmt, table=f"day_{ident(feed)}", where=f"_day = {_sql_string(day)}")
                _copy(run.con, select, path, fmt)
                paths.append(path)
            res.paths = paths
            res.path = paths[0] if paths else None
            continue
        path = Path(landing_dir) / feed / f"{single_stem}.{ext}"
        _copy(run.con, _export_select(feed, fmt), path, fmt)
        res.path = path
        res.paths = [path]
    rejected_path = Path(rejected_dir) / f"{stem}.csv"
    select = (
        f"select {_sql_string(name)} as mapping, feed, {_sql_string(str(run.source_file))} as source_file, "
        "row_number, line, reasons[1].rule as rule, "
        "array_to_string(list_transform(reasons, lambda r: r.reason), '; ') as reason, record "
        "from rejected order by feed, row_number"
    )
    _copy(run.con, select, rejected_path, "csv")
    first_rows, first_lines = run.con.execute(
        "select coalesce(list(row_number order by row_number)[1:$n], []), "
        "coalesce(list(line order by row_number)[1:$n], []) from rejected where feed = '(source)'",
        {"n": FIRST_ROWS},
    ).fetchone()
    return MappingResult(
        name,
        run.source_file,
        run.results,
        rejected_path,
        run.malformed,
        where_text(run.malformed, first_rows, first_lines) if run.malformed else "",
    )


def apply_mapping(
    mapping_path: str | Path,
    source_path: str | Path,
    landing_dir: str | Path,
    *,
    rejected_dir: str | Path | None = None,
    as_of: dt.date | None = None,
) -> MappingResult:
    """Map one source file and write landing/<feed>/<as_of>_<name>.<ext> for every feed of the mapping.

    The rejected rows go to <rejected_dir>/<as_of>_<name>.csv (default: a `mapping_rejected` folder
    beside the landing folder, so the landing sensor never mistakes it for a feed).
    """
    mapping = load_mapping(mapping_path)
    landing_dir = Path(landing_dir)
    rejected = Path(rejected_dir) if rejected_dir is not None else landing_dir.parent / "mapping_rejected"
    run = run_mapping(mapping, Path(source_path), work_dir=landing_dir.parent / "work")
    try:
        refusals = run.refusals()
        if refusals:
            raise MappingError("\n".join(f"{mapping_path}: {r}; nothing was written" for r in refusals))
        return write_outputs(run, landing_dir, rejected, as_of or dt.date.today())
    finally:
        run.con.close()


def rejected_rows(run: MappingRun, feed: str | None = None) -> list[dict[str, Any]]:
    rows = run.con.execute(
        "select feed, row_number, line, reasons[1].rule, array_to_string(list_transform(reasons, lambda r: "
        "r.reason), '; '), record from rejected where $feed is null or feed = $feed order by feed, row_number",
        {"feed": feed},
    ).fetchall()
    return [dict(zip(("feed", "row_number", "line", "rule", "reason", "record"), r, strict=True)) for r in rows]


def mapped_rows(run: MappingRun, feed: str, limit: int | None = None, as_text: bool = False) -> list[dict[str, Any]]:
    """The mapped rows of a feed: typed values, or (as_text) exactly as a CSV landing file has them."""
    select = _export_select(feed, "csv") if as_text else f"select * from out_{ident(feed)}"
    cur = run.con.execute(select + (f" limit {int(limit)}" if limit else ""))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
