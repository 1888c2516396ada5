"""python -m ingestion.export_mapping {dry-run,apply} MAPPING.yaml --source FILE [--landing DIR] [--date YYYY-MM-DD]"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from ingestion.export_mapping.outputs import apply_mapping
from ingestion.export_mapping.report import dry_run
from ingestion.export_mapping.spec import MappingError
from ingestion.paths import DataDir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingestion.export_mapping", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dry-run", help="map a sample and report; writes nothing")
    d.add_argument("mapping", type=Path)
    d.add_argument("--source", type=Path, required=True)
    d.add_argument("--samples", type=int, default=3)
    a = sub.add_parser("apply", help="map a source file and write landing files")
    a.add_argument("mapping", type=Path)
    a.add_argument("--source", type=Path, required=True)
    a.add_argument(
        "--landing", type=Path, default=None, help="landing folder (default: $SERVICESCORE_DATA_DIR/landing)"
    )
    a.add_argument(
        "--rejected",
        type=Path,
        default=None,
        help="folder for the rejected-rows file (default: beside the landing folder)",
    )
    a.add_argument(
        "--date", type=dt.date.fromisoformat, default=None, help="date in the landing file names (default: today)"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "dry-run":
            print(dry_run(args.mapping, args.source, samples=args.samples))
            return 0
        landing = args.landing or DataDir.from_env().landing
        result = apply_mapping(args.mapping, args.source, landing, rejected_dir=args.rejected, as_of=args.date)
    except MappingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for feed, res in result.feeds.items():
        files = (
            str(res.path) if len(res.paths) < 2 else f"{len(res.paths)} files {res.paths[0]} .. {res.paths[-1].name}"
        )
        print(f"{feed}: {res.mapped} rows -> {files}; rejected {res.rejected}{res.others_text()}")
    if result.malformed:
        print(result.malformed_text())
    print(f"rejected rows: {result.rejected} -> {result.rejected_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
