"""Declarative feed mappings: turn another system's export into our landing feeds (issue 7).

Public interface:
    apply_mapping(mapping_path, source_path, landing_dir) -> MappingResult   (writes landing files)
    dry_run(mapping_path, source_path) -> str                                 (report, writes nothing)
    load_mapping(path) -> Mapping; MappingError (names the file and the key)
    external_dir() -> Path: the folder of real exports (SERVICESCORE_EXTERNAL_DIR or ../shared/external)

CLI: python -m ingestion.export_mapping {dry-run,apply} MAPPING.yaml --source FILE [--landing DIR]
     python -m orchestration.export_pipeline --mapping FILE --source FILE [--data DIR]   (dry run, apply, pipeline)
What each indicator needs from the feeds (the dry run's "cannot support" list): ingestion.measures.
Format reference: docs/bring_your_own_data.md.
"""

from __future__ import annotations

import os
from pathlib import Path

from ingestion.export_mapping.engine import FeedResult, MappingResult, run_mapping
from ingestion.export_mapping.outputs import apply_mapping, mapped_rows, rejected_rows
from ingestion.export_mapping.report import dry_run
from ingestion.export_mapping.spec import Mapping, MappingError, load_mapping, parse_mapping
from ingestion.paths import REPO_ROOT

MAPPINGS_DIR = REPO_ROOT / "mappings"


def external_dir() -> Path:
    """Where the real exports of other systems are: $SERVICESCORE_EXTERNAL_DIR, else ../shared/external."""
    raw = os.environ.get("SERVICESCORE_EXTERNAL_DIR")
    return Path(raw).resolve() if raw else (REPO_ROOT.parent / "shared" / "external").resolve()


__all__ = [
    "MAPPINGS_DIR",
    "FeedResult",
    "Mapping",
    "MappingError",
    "MappingResult",
    "apply_mapping",
    "dry_run",
    "external_dir",
    "load_mapping",
    "mapped_rows",
    "parse_mapping",
    "rejected_rows",
    "run_mapping",
]
