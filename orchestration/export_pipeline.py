"""Your own export (or a built-in one) end to end: dry run, apply into a data folder of its own, then the
whole pipeline there, and a summary.

    python -m orchestration.export_pipeline --mapping FILE --source FILE [--data DIR]   # your own export
    python -m orchestration.export_pipeline pwc          # make external-pwc
    python -m orchestration.export_pipeline servicenow   # make external-servicenow
    options: --data DIR (alias --data-dir; default data/external/<export or mapping name>), --source FILE
             (built-in exports: default the file in ingestion.export_mapping.external_dir()), --date YYYY-MM-DD
             (the mapping's run date)

Steps: the dry-run report, printed first (rows mapped and rejected by rule with physical lines, day/month
ambiguity, the indicators the source cannot support, whether apply would refuse); `apply_mapping` writes the
landing files (one per day of the export with `output.split_by_day`) and the mapping's rejected rows into
<data-dir>; then, with SERVICESCORE_DATA_DIR=<data-dir>, the ingestion job loads every landing file and the build
job builds, checks and publishes every month the export's rows count for (their `period_columns`: a ServiceNow
incident opened in March and resolved in November counts for November too). Finally the run summary, a short
summary of what was published (read back from the serving file) and the cannot-support list again.

Exit status: 0 published, 1 the pipeline failed (a step or a blocking check), 2 a mapping or source error
(including apply refusing to write: a guessed day/month order with ambiguous rows, or more rejected rows
than source.max_rejected_share), 3 another run holds the data folder's warehouse lock.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ingestion.contracts import FEEDS
from ingestion.export_mapping import MAPPINGS_DIR, external_dir
from ingestion.export_mapping.engine import MappingResult, run_mapping
from ingestion.export_mapping.outputs import apply_mapping
from ingestion.export_mapping.report import report, support_lines
from ingestion.export_mapping.sources import quote_ident
from ingestion.export_mapping.spec import MappingError, load_mapping
from ingestion.organisation import organisation_timezone
from ingestion.paths import REPO_ROOT, DataDir


@dataclass(frozen=True)
class Export:
    """A real export known to the repo: its mapping and where the file is under external_dir()."""

    name: str
    mapping: Path
    source: str  # relative to external_dir(), or an absolute path (your own export)
    description: str

    def source_path(self) -> Path:
        return external_dir() / self.source

    @classmethod
    def own(cls, mapping: Path, source: Path) -> Export:
        """Your own export: the data folder is named after the mapping's `name`."""
        m = load_mapping(mapping)
        return cls(
            m.name, Path(mapping).resolve(), str(Path(source).resolve()), m.description or f"{m.name} (your own export)"
        )

    def default_data_dir(self) -> Path:
        return REPO_ROOT / "data" / "external" / self.name


EXPORTS: dict[str, Export] = {
    "pwc": Export(
        "pwc",
        MAPPINGS_DIR / "pwc_call_center.yaml",
        "pwc_call_center/Call-Center-Dataset.csv",
        "PwC call-centre calls, Jan-Mar 2021 -> tickets, surveys, technicians",
    ),
    "servicenow": Export(
        "servicenow",
        MAPPINGS_DIR / "servicenow_incidents.yaml",
        "servicenow_incident_event_log/incident_event_log.csv",
        "ServiceNow incident event log, 2016 -> tickets, technicians",
    ),
}


@dataclass
class ExportRun:
    export: str
    data_dir: DataDir
    mapping: MappingResult | None = None
    dry_run: str = ""  # the dry-run report of the same mapping and source
    support: list[str] = field(default_factory=list)  # the indicators the source cannot support
    months: tuple[str, str] | None = None
    results: list = field(default_factory=list)
    summary: str = ""
    ok: bool = False
    mapping_seconds: float = 0.0
    pipeline_seconds: float = 0.0


def export_months(mapping: MappingResult, today: dt.date | None = None) -> tuple[str, str] | None:
    """First and last month start (YYYY-MM-01, local business time) that the landed rows count for.

    One DuckDB query per landed feed over its landing files: min and max of the feed's period columns
    (the months a row counts for, ingestion.contracts), clipped to today.
    """
    today = today or dt.date.today()
    lows: list[dt.date] = []
    highs: list[dt.date] = []
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        for feed_name, feed_result in mapping.feeds.items():
            feed = FEEDS[feed_name]
            files = [str(p) for p in feed_result.paths if p.suffix == ".csv"]
            if not files or not feed.period_columns:
                continue
            exprs = []
            for name in feed.period_columns:
                col = quote_ident(name)
                if feed.column(name).type == "timestamp":
                    exprs.append(f"cast(timezone($tz, cast({col} as timestamptz)) as date)")
                else:
                    exprs.append(f"cast({col} as date)")
            low = ", ".join(f"min({e})" for e in exprs)
            high = ", ".join(f"max({e})" for e in exprs)
            row = con.execute(
                f"select least({low}), greatest({high}) "
                "from read_csv($files, all_varchar = true, header = true, union_by_name = true)",
                {"files": files, "tz": organisation_timezone()},  # the data folder's clock
            ).fetchone()
            if row and row[0] is not None:
                lows.append(row[0])
                highs.append(min(row[1], today))
    finally:
        con.close()
    if not lows:
        return None
    return min(lows).replace(day=1).isoformat(), max(highs).replace(day=1).isoformat()


def published_summary(paths: DataDir) -> str:
    """What a reader of the serving file now sees: per month technicians, tickets resolved, survey
    responses and the appraisal status counts (quantitative method)."""
    if not paths.serving.exists():
        return ""
    con = duckdb.connect(str(paths.serving), read_only=True)
    try:
        rows = con.execute("""
            with kpi as (
                select
                    period_label,
                    count(*) as technicians,
                    sum(tickets_resolved) as tickets_resolved,
                    sum(csat_n) as survey_responses,
                from kpi_technician_monthly
                group by period_label
            ),

            appraisal as (
                select
                    period_label,
                    count(*) filter (where status = 'graded') as graded,
                    count(*) filter (where status <> 'graded') as not_graded,
                from appraisal_scores
                where period_type = 'month'
                    and method = 'quantitative'
                group by period_label
            )

            select
                kpi.period_label,
                kpi.technicians,
                kpi.tickets_resolved,
                kpi.survey_responses,
                coalesce(appraisal.graded, 0),
                coalesce(appraisal.not_graded, 0),
            from kpi
            left join appraisal
                on kpi.period_label = appraisal.period_label
            order by kpi.period_label
        """).fetchall()
        statuses = con.execute(
            "select status, count(*) from appraisal_scores where period_type = 'month' "
            "and method = 'quantitative' group by status order by status"
        ).fetchall()
    finally:
        con.close()
    lines = [
        f"published (kpi_technician_monthly, appraisal_scores in {paths.serving}):",
        f"  {'month':<9}{'technicians':>12}{'resolved':>10}{'surveys':>9}{'graded':>8}{'not graded':>12}",
    ]
    for label, techs, resolved, surveys, graded, not_graded in rows:
        lines.append(f"  {label:<9}{techs:>12}{resolved or 0:>10}{surveys or 0:>9}{graded:>8}{not_graded:>12}")
    if statuses:
        lines.append("  monthly quantitative appraisal status: " + ", ".join(f"{s} {n}" for s, n in statuses))
    return "\n".join(lines)


def run_export(
    export: str | Export,
    data_dir: str | Path | None = None,
    source: str | Path | None = None,
    as_of: dt.date | None = None,
    on_dry_run: Callable[[str], None] | None = None,
) -> ExportRun:
    """Map the export into <data_dir>/landing and run the whole pipeline on <data_dir>.

    Sets SERVICESCORE_DATA_DIR and DAGSTER_HOME of this process to the data folder (the Dagster resources
    resolve the data folder at run time). `on_dry_run` gets the dry-run report before anything is written (the
    CLI prints it: when apply then refuses, the report shows the rows why). Raises MappingError on a mapping or
    source error and orchestration.cli.RunLockedError when another run holds the folder's warehouse lock.
    """
    from orchestration.cli import prepare_home, run_pipeline, summarize, warehouse_lock

    spec = EXPORTS[export] if isinstance(export, str) else export
    paths = DataDir(Path(data_dir or spec.default_data_dir()).resolve())
    prepare_home(paths)
    run = ExportRun(spec.name, paths)
    started = time.monotonic()
    source_path = Path(source or spec.source_path())
    # the dry run first: its report is printed, and apply refuses on what it would refuse on
    dry = run_mapping(load_mapping(spec.mapping), source_path, work_dir=paths.root / "work")
    try:
        run.dry_run = report(dry, f"dry run: mapping {spec.mapping} on {source_path}", samples=2)
        run.support = support_lines(dry)
    finally:
        dry.con.close()
    if on_dry_run is not None:
        on_dry_run(run.dry_run)
    with warehouse_lock(paths):
        run.mapping = apply_mapping(spec.mapping, source_path, paths.landing, as_of=as_of)
        run.mapping_seconds = time.monotonic() - started
        run.months = export_months(run.mapping)
        run.results = run_pipeline(paths, months=run.months)
    run.pipeline_seconds = time.monotonic() - started - run.mapping_seconds
    run.summary, run.ok = summarize(run.results)
    return run


def main(argv: list[str] | None = None) -> int:
    from orchestration.cli import RunLockedError

    parser = argparse.ArgumentParser(
        prog="python -m orchestration.export_pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "export", nargs="?", choices=sorted(EXPORTS), help="a built-in real export (or give --mapping and --source)"
    )
    parser.add_argument("--mapping", type=Path, default=None, help="your mapping file (with --source)")
    parser.add_argument(
        "--data",
        "--data-dir",
        dest="data_dir",
        type=Path,
        default=None,
        help="the data folder of this export (default: data/external/<export or mapping name>)",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=None,
        help="the export file (built-in exports: default under $SERVICESCORE_EXTERNAL_DIR or ../shared/external)",
    )
    parser.add_argument(
        "--date",
        type=dt.date.fromisoformat,
        default=None,
        help="run date in the names of files not split by day (default: today)",
    )
    args = parser.parse_args(argv)
    try:
        if args.mapping is not None:
            if args.export is not None:
                parser.error("give a built-in export or --mapping, not both")
            if args.source is None:
                parser.error("--mapping needs --source FILE (the export to map)")
            if not args.source.is_file():
                raise MappingError(f"{args.source}: source file not found")
            spec = Export.own(args.mapping, args.source)
        elif args.export is not None:
            spec = EXPORTS[args.export]
        else:
            parser.error("give --mapping FILE --source FILE, or a built-in export: " + ", ".join(sorted(EXPORTS)))
        data_dir = args.data_dir or spec.default_data_dir()
        print(f"{spec.name}: {spec.description}")
        shown = spec.mapping.relative_to(REPO_ROOT) if spec.mapping.is_relative_to(REPO_ROOT) else spec.mapping
        print(f"  mapping {shown}, source {args.source or spec.source_path()}")
        print(f"  data folder {Path(data_dir).resolve()}")
        run = run_export(spec, data_dir, args.source, args.date, on_dry_run=lambda text: print(text + "\n", flush=True))
    except MappingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RunLockedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    assert run.mapping is not None
    print(f"mapped in {run.mapping_seconds:.1f} s:")
    for feed, res in run.mapping.feeds.items():
        print(
            f"  {feed}: {res.mapped} rows in {len(res.paths)} landing file(s), rejected {res.rejected}"
            f"{res.others_text()}"
        )
    if run.mapping.malformed:
        print(f"  {run.mapping.malformed_text()}")
    print(f"  rejected rows: {run.mapping.rejected} -> {run.mapping.rejected_path}")
    if run.months:
        print(f"months built and published: {run.months[0][:7]} .. {run.months[1][:7]}")
    print(run.summary)
    if run.ok:
        print(published_summary(run.data_dir))
    print("\n".join(run.support))
    print(f"wall time: mapping {run.mapping_seconds:.1f} s, pipeline {run.pipeline_seconds:.1f} s")
    print(
        f"explore it: make ui SERVICESCORE_DATA_DIR={run.data_dir.root}  (or open {run.data_dir.serving} "
        "with any DuckDB client)"
    )
    return 0 if run.ok else 1


if __name__ == "__main__":
    sys.exit(main())
