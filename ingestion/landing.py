"""The landing folder: which files a feed has, their content hash, encoding and header.

Python only looks at files here (names, bytes, the header line); rows are read by DuckDB.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ingestion.contracts import FEEDS

# landing/<feed>/<YYYY-MM-DD><suffix>.<ext>: the date may have one-digit month and day (2026-5-6), the suffix any
# printable characters but a path separator or whitespace (CJK included: 2026-05-02_报表.csv), the extension any case
FILE_NAME = re.compile(r"^(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?!\d)(?P<suffix>[^/\\]*)\.(?P<ext>[^./\\]+)$")
DATE_PREFIX = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}(?!\d)")
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


def unread_reason(name: str) -> str | None:
    """Why a directory entry named `name` is not a landing file (None: it is one). The reasons are reported, never
    silent: raw.unread_files and the run summary list every such file."""
    if name.startswith("."):
        return "hidden file (the name starts with a dot); rename it to load it"
    if any(ch.isspace() or not ch.isprintable() for ch in name):
        return (
            "the name contains whitespace or a control character (often an accidental copy, e.g. "
            "'2026-05-01 copy.csv'); rename it without them to load it"
        )
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext not in FORMATS:
        return (
            f"unsupported extension {'.' + ext if ext else '(none)'}: landing files are "
            f"<YYYY-MM-DD>*.csv, .jsonl, .ndjson, .parquet or .xlsx"
        )
    m = FILE_NAME.fullmatch(name)
    if not m:
        return "the name does not start with a date <YYYY-MM-DD> (e.g. 2026-05-01_tickets.csv)"
    try:
        dt.date(int(m["y"]), int(m["m"]), int(m["d"]))
    except ValueError:
        return f"{m['y']}-{m['m']}-{m['d']} in the name is not a calendar date"
    return None


def list_files(
    landing: Path, feed: str, day_from: str | None = None, day_to: str | None = None
) -> tuple[list[LandingFile], list[tuple[Path, str]]]:
    """Files of one feed in day order (then name order), plus every entry of the feed folder that is not a landing
    file, with the reason (hidden, bad or invalid date, unsupported extension, whitespace, a sub-folder).

    Files whose day is outside [day_from, day_to] are neither listed nor unread: they belong to another run."""
    feed_dir = safe_feed_dir(landing, feed)
    if not feed_dir.is_dir():
        return [], []
    found: list[LandingFile] = []
    unread: list[tuple[Path, str]] = []
    for entry in sorted(feed_dir.iterdir()):
        if entry.is_dir():
            unread.append((entry, "a folder: files in sub-folders of a feed folder are not read"))
            continue
        reason = unread_reason(entry.name)
        if reason is not None:
            unread.append((entry, reason))
            continue
        m = FILE_NAME.fullmatch(entry.name)
        resolved = resolve_inside(landing, entry)
        day = f"{int(m['y']):04d}-{int(m['m']):02d}-{int(m['d']):02d}"
        if (day_from is not None and day < day_from) or (day_to is not None and day > day_to):
            continue
        found.append(LandingFile(feed, resolved, day, FORMATS[m["ext"].lower()]))
    found.sort(key=lambda lf: lf.day)  # stable: same day keeps name order
    return found, unread


def file_hash(path: Path) -> str:
    """SHA-256 of the file's bytes, read in large blocks into one buffer (hashlib.file_digest; no Python loop
    per block)."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


ENCODING_ENV = "SERVICESCORE_LANDING_ENCODING"
ENCODINGS = ("utf-8", "gb18030")
# what a plausibility check reads of a file that decodes both as UTF-8 and as GB18030
PLAUSIBILITY_SAMPLE = 4 << 20
_CJK = "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_HAS_CJK = re.compile(f"[{_CJK}]")
_ASCII = re.compile(r"[\x00-\x7f]+")
# two or more non-ASCII characters standing as a word of their own (not attached to an ASCII letter)
_LONE_NON_ASCII_WORD = re.compile(r"(?<![A-Za-z])[^\x00-\x7f]{2,}(?![A-Za-z])")


def declared_encoding(feed: str) -> str | None:
    """The encoding declared for a feed's text files: SERVICESCORE_LANDING_ENCODING is either one encoding for
    every feed (`gb18030`) or a list (`technicians=gb18030,customers=utf-8`); None: detect it."""
    raw = os.environ.get(ENCODING_ENV, "").strip()
    if not raw:
        return None
    if "=" not in raw:
        chosen = raw
    else:
        pairs = dict(item.split("=", 1) for item in raw.split(",") if "=" in item)
        chosen = pairs.get(feed, "").strip()
        if not chosen:
            return None
    chosen = chosen.strip().lower().replace("_", "-")
    if chosen not in ENCODINGS:
        raise LandingError(f"{ENCODING_ENV}={raw!r}: encoding {chosen!r} is not one of {', '.join(ENCODINGS)}")
    return chosen


@dataclass(frozen=True)
class TextScan:
    """What one pass over a text file's bytes found: its encoding, physical line count and line endings."""

    encoding: str  # utf-8, utf-8-sig or gb18030
    lines: int  # physical lines: \r\n, \n and a lone \r each end one; a last line without an ending counts
    mixed_newlines: bool  # both \r\n and bare \n (or a bare \r): DuckDB's CSV parser refuses such a file
    detected: str  # how the encoding was chosen


def gb18030_reading_wins(utf8_text: str, gb_text: str) -> bool:
    """For bytes valid in both encodings: True when the UTF-8 reading is what Chinese text looks like read as
    UTF-8 and the GB18030 reading is plain Chinese.

    All three must hold: the UTF-8 reading has no CJK character; every non-ASCII character of the GB18030 reading
    is a common (GB2312) Chinese character or CJK punctuation; and the UTF-8 reading has a word of two or more
    non-ASCII characters of its own (e.g. 'ÕÅÎ°'), which European text almost never has (é, ü, ø sit inside Latin
    words: 'José', 'Søren' stay UTF-8)."""
    if _HAS_CJK.search(utf8_text):
        return False
    non_ascii = _ASCII.sub("", gb_text)
    if not non_ascii or not re.fullmatch(f"[{_CJK}]+", non_ascii):
        return False
    try:
        non_ascii.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return _LONE_NON_ASCII_WORD.search(utf8_text) is not None


def scan_text(path: Path, declared: str | None = None) -> TextScan:
    """One pass over the bytes (in 1 MiB blocks): which encodings decode the whole file strictly, how many
    physical lines it has, whether its line endings are mixed.

    Encoding: a byte-order mark means UTF-8; else a declared encoding (declared_encoding) must decode the file;
    else UTF-8 if it decodes, unless the file also decodes as GB18030 and gb18030_reading_wins on its first
    4 MiB; else GB18030; else the file is refused (rule csv_encoding)."""
    decoders = {e: codecs.getincrementaldecoder(e)(errors="strict") for e in ENCODINGS}
    valid = dict.fromkeys(ENCODINGS, True)
    samples = {e: [] for e in ENCODINGS}
    sampled = 0
    lf = cr = crlf = 0
    last = b""
    ascii_so_far = True
    bom = False
    with path.open("rb") as f:
        first = True
        while chunk := f.read(CHUNK):
            if first:
                bom = chunk.startswith(codecs.BOM_UTF8)
                first = False
            lf += chunk.count(b"\n")
            cr += chunk.count(b"\r")
            crlf += chunk.count(b"\r\n") + (last == b"\r" and chunk[:1] == b"\n")
            last = chunk[-1:]
            if ascii_so_far and chunk.isascii():
                continue
            ascii_so_far = False
            for enc, dec in decoders.items():
                if not valid[enc]:
                    continue
                try:
                    text = dec.decode(chunk)
                except UnicodeDecodeError:
                    valid[enc] = False
                    continue
                if sampled < PLAUSIBILITY_SAMPLE:
                    samples[enc].append(text)
            sampled += len(chunk)
    for enc, dec in decoders.items():
        if valid[enc]:
            try:
                dec.decode(b"", final=True)
            except UnicodeDecodeError:
                valid[enc] = False
    lines = lf + cr - crlf + (1 if last not in (b"", b"\n", b"\r") else 0)
    mixed = (crlf > 0 and lf > crlf) or cr > crlf
    if bom and valid["utf-8"]:
        return TextScan("utf-8-sig", lines, mixed, "byte-order mark")
    if declared:
        if not valid[declared]:
            raise LandingError(
                f"{path}: the bytes are not valid {declared}, the encoding declared for the feed "
                f"({ENCODING_ENV}) (rule: csv_encoding)"
            )
        return TextScan(declared, lines, mixed, f"declared ({ENCODING_ENV})")
    if valid["utf-8"]:
        if ascii_so_far or not valid["gb18030"]:
            return TextScan("utf-8", lines, mixed, "valid UTF-8")
        if gb18030_reading_wins("".join(samples["utf-8"]), "".join(samples["gb18030"])):
            return TextScan("gb18030", lines, mixed, "valid in both; the GB18030 reading is plausible Chinese")
        return TextScan("utf-8", lines, mixed, "valid in both; the UTF-8 reading is plausible")
    if valid["gb18030"]:
        return TextScan("gb18030", lines, mixed, "not UTF-8, valid GB18030")
    raise LandingError(f"{path}: encoding is neither UTF-8 nor GB18030 (rule: csv_encoding)")


def detect_encoding(path: Path, declared: str | None = None) -> str:
    """'utf-8', 'utf-8-sig' or 'gb18030' (Excel exports in China); anything else is refused (see scan_text)."""
    return scan_text(path, declared).encoding


def transcode_to_utf8(path: Path, encoding: str, target: Path, normalise_newlines: bool = False) -> Path:
    """Stream a GB18030 (or BOM, or mixed line ending) file into a plain UTF-8 copy that DuckDB reads, without the
    byte-order mark; with `normalise_newlines`, every \r\n and lone \r becomes \n (the physical lines stay the
    same lines)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    source_encoding = "utf-8-sig" if encoding in ("utf-8", "utf-8-sig") else encoding
    with (
        path.open("r", encoding=source_encoding, newline=None if normalise_newlines else "") as src,
        tmp.open("w", encoding="utf-8", newline="") as dst,
    ):
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
