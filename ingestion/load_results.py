"""What loading a feed gives: per file and per feed, and the errors that stop a load."""

from __future__ import annotations

from dataclasses import dataclass, field


class FeedLoadError(Exception):
    """A feed file that cannot be loaded; the message names the file and the rule. `result`: what load_feed did
    load and what it did not read (its `unread`), when the error comes from load_feed."""

    result: FeedLoadResult | None = None


class WarehouseLockedError(FeedLoadError):
    """Another process holds DuckDB's lock on the warehouse (a writer, or a reader such as a BI tool): worth another
    try later."""


class WarehouseCorruptError(FeedLoadError):
    """The warehouse file is not a readable DuckDB database: not worth another try; the message names the file."""


@dataclass
class FileLoad:
    source_file: str
    file_hash: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    skipped: bool = False
    encoding: str = ""
    extra_columns: list[str] = field(default_factory=list)


@dataclass
class FeedLoadResult:
    feed: str
    files: list[FileLoad] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # (source file, reason) of every landed file of the feed not read in this run (also in raw.unread_files)
    unread: list[tuple[str, str]] = field(default_factory=list)
    months_touched: list[str] = field(default_factory=list)
    rows_recovered: int = 0  # rows rejected by an earlier load for an unknown reference, loaded by this one

    @property
    def ignored(self) -> list[str]:
        """The unread files as 'file: reason' lines."""
        return [f"{name}: {reason}" for name, reason in self.unread]

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files)

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def files_read(self) -> int:
        return sum(1 for f in self.files if not f.skipped)

    @property
    def files_skipped(self) -> int:
        return sum(1 for f in self.files if f.skipped)
