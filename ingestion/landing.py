"""The landing folder: which files a feed has, their content hash, encoding and header.

Python only looks at files here (names, bytes, the header line); rows are read by DuckDB.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

from ingestion.contracts import FEEDS

# landing/<feed>/<YYYY-MM-DD>[anything safe].<ext>
FILE_NAME = re.compile(r"^(?P<day>\d{4}-\d{2}-\d{2})[A-Za-z0-9_.\-]*\.(?P<ext>csv|jsonl|ndjson|parquet|xlsx)$")
FORMATS = {"csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl", "parquet": "parquet", "xlsx": "xlsx"}
CHUNK = 1 << 20


class LandingError(Exception):
    """A landing file that cannot be read at all; the message names the file and the rule."""


@dataclass(frozen=True)
class LandingFile:
    feed: str
    path: Path
    day: str
    format: str

    @property
    def name(self) -> str:
        return self.path.name


def safe_feed_dir(landing: Path, feed: str) -> Path:
    if feed not in FEEDS:
        raise LandingError(f"unknown feed {feed!r}; known feeds: {', '.join(FEEDS)}")
    return landing / feed


def resolve_inside(landing: Path, candidate: Path) -> Path:
    """Refuse a path (or a symlink) that points outside the landing folder."""
    root = landing.resolve()
    resolved = candidate.resolve()
    if resolved != root and root not in resolved.parents:
        raise LandingError(f"{candidate}: refused, the file resolves outside the landing folder {root}")
    return resolved


def list_files(landing: Path, feed: str, day_from: str | None = None,
               day_to: str | None = None) -> tuple[list[LandingFile], list[str]]:
    """Files of one feed in name order (the day prefix makes it chronological), plus names that were ignored."""
    feed_dir = safe_feed_dir(landing, feed)
    if not feed_dir.is_dir():
        return [], []
    found: list[LandingFile] = []
    ignored: list[str] = []
    for entry in sorted(feed_dir.iterdir()):
        if entry.name.startswith(".") or entry.is_dir():
            continue
        m = FILE_NAME.fullmatch(entry.name)
        if not m:
            ignored.append(f"{entry.name}: name does not match <YYYY-MM-DD>*.(csv|jsonl|parquet|xlsx)")
            continue
        resolved = resolve_inside(landing, entry)
        if (day_from is not None and m["day"] < day_from) or (day_to is not None and m["day"] > day_to):
            continue
        found.append(LandingFile(feed, resolved, m["day"], FORMATS[m["ext"]]))
    return found, ignored


def file_hash(path: Path) -> str:
    """SHA-256 of the file's bytes, read in large blocks into one buffer (hashlib.file_digest; no Python loop
    per block)."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def detect_encoding(path: Path) -> str:
    """'utf-8', 'utf-8-sig' or 'gb18030' (Excel exports in China); anything else is refused."""
    with path.open("rb") as f:
        head = f.read(3)
    if head == codecs.BOM_UTF8:
        return "utf-8-sig"
    for encoding in ("utf-8", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        try:
            with path.open("rb") as f:
                while chunk := f.read(CHUNK):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            continue
    raise LandingError(f"{path}: encoding is neither UTF-8 nor GB18030 (rule: csv_encoding)")


def transcode_to_utf8(path: Path, encoding: str, target: Path) -> Path:
    """Stream a GB18030 (or BOM) file into a plain UTF-8 copy that DuckDB reads."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    with path.open("r", encoding=encoding, newline="") as src, tmp.open("w", encoding="utf-8", newline="") as dst:
        while block := src.read(CHUNK):
            dst.write(block)
    tmp.replace(target)
    return target


def csv_header(path: Path) -> list[str]:
    """The header line of a UTF-8 CSV, names trimmed and lower-cased; [] for an empty file."""
    with path.open("r", encoding="utf-8-sig", newline="") as f:
        first = f.readline()
    if not first.strip():
        return []
    return [c.strip().lower() for c in next(csv.reader(io.StringIO(first)))]
