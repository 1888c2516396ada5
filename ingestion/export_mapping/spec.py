"""The mapping file format: a typed model of one YAML file per source system, and its validation.

A mapping says how one export of someone else's system (a CSV, an Excel workbook or JSON records)
becomes one or more of our landing feeds (ingestion.contracts.FEEDS). It is data, never code: every
name in it is checked here (feed and target column names against the contracts, source column
names against a conservative character set and later against the file's header) and every literal
is later bound as a query parameter, so nothing from a mapping file is pasted into SQL unchecked.

The format is documented with examples in docs/bring_your_own_data.md. In short:

    version: 1
    name: pwc_call_center            # source name: landing/<feed>/<YYYY-MM-DD>_<name>.csv
    source: {format: csv, encoding: utf-8, null_tokens: ["", "?"], timezone: Asia/Shanghai}
    output: {format: csv}            # csv | parquet | jsonl
    feeds:
      tickets:
        latest: {key: [number], by: sys_mod_count, numeric: true}   # event logs: newest version
        filter: [{column: Answered, in: ["Y"]}]                       # rows this feed takes
        columns:
          ticket_id: {column: Call Id}
          priority: {column: priority, values: {"1 - Critical": P1}}
          created_at: {columns: [Date, Time], formats: ["%Y-%m-%d %H:%M:%S"]}
          first_response_at: {base: created_at, add: [{seconds: Speed of answer in seconds}]}
      technicians:
        derive_from: tickets          # one row per distinct technician of the mapped tickets
        distinct_on: [technician_id]
        columns: {technician_id: {column: Agent}, team_id: {column: group, pick: mode}}
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ingestion.contracts import FEEDS

# names we write into SQL as identifiers: our own feed/column names are strict snake case
TARGET_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# source column names come from other systems' headers ("Speed of answer in seconds",
# "Answered (Y/N)"): printable text without quotes, semicolons, backslashes or control characters.
# They are additionally quoted as DuckDB identifiers and must exist in the file's header.
SOURCE_COLUMN = re.compile(r"^[\w .,()/#%&+\-:?\[\]]{1,120}$", re.UNICODE)
SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,62}$")
FORMAT_DIRECTIVE = re.compile(r"%[-]?[a-zA-Z%]")

DATE_ORDERS = {
    # generated candidate formats for `date_order:` (tried in this order); the year is %Y when the text has
    # four digits there and %y when it has two (DuckDB's pivot, as POSIX: 00-68 -> 20yy, 69-99 -> 19yy)
    "day_first": ("%d", "%m", "%Y"),
    "month_first": ("%m", "%d", "%Y"),
    "year_first": ("%Y", "%m", "%d"),
}
DAY_MONTH_ORDERS = ("day_first", "month_first")
AUTO = "auto"
ISO8601 = "iso8601"
DEFAULT_PLAUSIBLE_FROM = dt.date(1990, 1, 1)
PICKS = ("mode", "min", "max", "first", "last")


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and the key."""


def _check_source_column(name: str) -> str:
    if not isinstance(name, str) or not SOURCE_COLUMN.match(name) or name != name.strip():
        raise ValueError(
            f"source column name {name!r} is not allowed (letters, digits, spaces and . , ( ) / # % & + - : ? [ ]"
            " only, no leading/trailing spaces)"
        )
    return name


SourceColumn = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Model):
    """A test on one source column (after null tokens and trimming). Used by `filter` and `when`."""

    column: SourceColumn
    equals: str | None = None
    in_: list[str] | None = Field(default=None, alias="in")
    not_in: list[str] | None = None
    not_null: bool | None = None
    is_null: bool | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("column")
    @classmethod
    def _column(cls, v: str) -> str:
        return _check_source_column(v)

    @model_validator(mode="after")
    def _one_test(self) -> Condition:
        given = [k for k in ("equals", "in_", "not_in", "not_null", "is_null") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a condition needs exactly one of: equals, in, not_in, not_null, is_null")
        if self.not_null is False or self.is_null is False:
            raise ValueError("write not_null: true or is_null: true (false is not a test)")
        return self


class AddPart(_Model):
    """One amount added to a timestamp: seconds / minutes / hours (numbers) or a duration text."""

    seconds: SourceColumn | None = None
    minutes: SourceColumn | None = None
    hours: SourceColumn | None = None
    duration: SourceColumn | None = None  # 'H:MM:SS' (hours may exceed 24), optional fraction

    @model_validator(mode="after")
    def _one(self) -> AddPart:
        given = [k for k in ("seconds", "minutes", "hours", "duration") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("an `add` item needs exactly one of: seconds, minutes, hours, duration")
        _check_source_column(getattr(self, given[0]))
        return self

    @property
    def unit(self) -> str:
        return next(k for k in ("seconds", "minutes", "hours", "duration") if getattr(self, k) is not None)

    @property
    def source_column(self) -> str:
        return getattr(self, self.unit)


Scalar = str | int | float | bool


class Window(_Model):
    """The plausible window of parsed timestamps and dates: a value before `from` or after `until` (both
    inclusive days, in the column's zone) is rejected with rule `...plausible`. Defaults: from 1990-01-01,
    until one day after the run."""

    from_: dt.date | None = Field(default=None, alias="from")
    until: dt.date | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _order(self) -> Window:
        if self.from_ is not None and self.until is not None and self.until < self.from_:
            raise ValueError(f"until {self.until} is before from {self.from_}")
        return self


class ColumnRule(_Model):
    """How one target column is made. Exactly one value source:

    - `column`: one source column;            - `columns` (+ `separator`, `prefix`): joined columns;
    - `constant`: a literal;                  - `base`: an earlier target timestamp column (+ `add`).
    Then optional: `values` (value map, with `default` for unmapped values), `formats` or
    `date_order` (+ `timezone`) for timestamp/date targets, `plausible` (the window of accepted values),
    `add` (durations), `when` (null unless), `fallback` (an earlier target column used when this one is
    null), `pick` (derived feeds).
    """

    column: SourceColumn | None = None
    columns: list[SourceColumn] | None = None
    separator: str | None = None
    prefix: str | None = None
    constant: Scalar | None = None
    base: str | None = None
    values: dict[str, Scalar | None] | None = None
    default: Scalar | None = None
    formats: list[str] | None = None
    date_order: Literal["day_first", "month_first", "year_first", "auto"] | None = None
    timezone: str | None = None
    plausible: Window | None = None
    add: list[AddPart] | None = None
    when: Condition | None = None
    fallback: str | None = None
    pick: Literal["mode", "min", "max", "first", "last"] | None = None

    @model_validator(mode="after")
    def _shape(self) -> ColumnRule:
        given = [k for k in ("column", "columns", "constant", "base") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "a column rule needs exactly one of: column, columns, constant, base"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.column is not None:
            _check_source_column(self.column)
        if self.columns is not None:
            if not self.columns:
                raise ValueError("columns: give at least one source column")
            for c in self.columns:
                _check_source_column(c)
        if (self.separator is not None or self.prefix is not None) and self.columns is None and self.column is None:
            raise ValueError("separator/prefix need column or columns")
        if self.base is not None and not TARGET_NAME.fullmatch(self.base):
            raise ValueError(f"base {self.base!r} is not a target column name")
        if self.fallback is not None and not TARGET_NAME.fullmatch(self.fallback):
            raise ValueError(f"fallback {self.fallback!r} is not a target column name")
        if self.add is not None and self.base is None and self.formats is None and self.date_order is None:
            raise ValueError("add: needs a timestamp (base, or a column with formats/date_order)")
        if self.values is not None and (self.constant is not None or self.base is not None):
            raise ValueError("values (a value map) needs column or columns")
        if self.default is not None and self.values is None:
            raise ValueError("default is the value for unmapped values of a value map; it needs values")
        if self.formats is not None and self.date_order is not None:
            raise ValueError("give formats or date_order, not both")
        if self.formats is not None:
            _check_formats(self.formats)
        if self.timezone is not None:
            _check_zone(self.timezone)
        return self

    def candidate_formats(self, with_time: bool, order: str | None = None, year: str = "%Y") -> list[str]:
        """Explicit `formats`, or the formats generated for `date_order` (or `order`, the order an `auto`
        column resolved to) with a four-digit (%Y) or two-digit (%y) year."""
        if self.formats is not None:
            return list(self.formats)
        order = order or self.date_order
        if order is None or order == AUTO:
            return []
        return generated_formats(order, with_time, year)

    def day_month_order(self) -> str | None:
        """day_first / month_first when the column's text has a day and a month whose order matters, auto
        when it is to be guessed from the rows, None otherwise (ISO, year first, no date)."""
        if self.date_order in (*DAY_MONTH_ORDERS, AUTO):
            return self.date_order
        if self.formats is not None:
            orders = {format_order(f) for f in self.formats} - {None}
            return next(iter(orders)) if orders else None
        return None


def generated_formats(order: str, with_time: bool, year: str = "%Y") -> list[str]:
    a, b, c = (year if x == "%Y" else x for x in DATE_ORDERS[order])
    out: list[str] = []
    for sep in ("-", "/", "."):
        day = sep.join((a, b, c))
        if with_time:
            out += [f"{day} %H:%M:%S", f"{day} %H:%M", f"{day}T%H:%M:%S"]
        out.append(day)
    return out


def format_order(f: str) -> str | None:
    """day_first / month_first for a strptime format with both a day and a month, else None."""
    if "%d" not in f or "%m" not in f:
        return None
    day, month = f.find("%d"), f.find("%m")
    year = min((f.find(y) for y in ("%Y", "%y") if y in f), default=len(f))
    if year < min(day, month):
        return None  # year first (2021-03-04): read as year-month-day, no other reading is assumed
    return "day_first" if day < month else "month_first"


def swap_day_month(f: str) -> str:
    """The same format with %d and %m exchanged (the reading of the other order)."""
    return f.replace("%d", "\x00").replace("%m", "%d").replace("\x00", "%m")


def _check_formats(formats: list[str]) -> None:
    if not formats:
        raise ValueError("formats: give at least one format")
    orders = set()
    for f in formats:
        if f == ISO8601:
            continue
        if not FORMAT_DIRECTIVE.search(f):
            raise ValueError(f"format {f!r} has no % directive (strptime formats, e.g. '%d-%m-%Y %H:%M', or iso8601)")
        if "%z" in f or "%Z" in f:
            raise ValueError(f"format {f!r}: zone directives are not supported; use iso8601 for text with offsets")
        order = format_order(f)
        if order is not None:
            orders.add(order)
    if len(orders) > 1:
        raise ValueError(f"formats {formats} mix day-first and month-first dates; a column must say which it is")


def _check_zone(zone: str) -> str:
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"unknown time zone {zone!r} (use an IANA name such as Asia/Shanghai or UTC)") from e
    return zone


class LatestSpec(_Model):
    """Event logs: keep only the newest version of each key (highest `by`; ties: later row in the file)."""

    key: list[SourceColumn]
    by: SourceColumn
    numeric: bool = False

    @model_validator(mode="after")
    def _names(self) -> LatestSpec:
        if not self.key:
            raise ValueError("latest.key: give at least one source column")
        for c in [*self.key, self.by]:
            _check_source_column(c)
        return self


class FeedMapping(_Model):
    derive_from: str | None = None
    latest: LatestSpec | None = None
    filter: list[Condition] = Field(default_factory=list)
    distinct_on: list[str] | None = None
    columns: dict[str, ColumnRule]


class SourceSpec(_Model):
    format: Literal["csv", "xlsx", "jsonl", "json"] | None = None
    encoding: str = "utf-8"
    delimiter: str = ","
    quote: str = '"'
    header: bool = True
    sheet: str | None = None
    null_tokens: list[str] = Field(default_factory=lambda: [""])
    trim: bool = True
    timezone: str | None = None
    # the plausible window of every timestamp and date column (a column's own `plausible` wins)
    plausible: Window = Field(default_factory=Window)
    # apply refuses to write when a feed rejects more than this share of its rows (malformed records
    # count for every feed read from the source); None: no limit, the rejected rows are reported
    max_rejected_share: float | None = Field(default=None, ge=0, le=1)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        return None if v is None else _check_zone(v)

    @field_validator("delimiter", "quote")
    @classmethod
    def _one_char(cls, v: str) -> str:
        if len(v) != 1 or v in "\r\n" or not v.isascii():
            raise ValueError("must be one ASCII character (not a line break)")
        return v

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, v: str) -> str:
        import codecs

        try:
            codecs.lookup(v)
        except LookupError as e:
            raise ValueError(f"unknown encoding {v!r}") from e
        return v


class OutputSpec(_Model):
    """How landing files are written. `split_by_day` maps a feed to one of its timestamp/date columns:
    that feed is written as one file per local day of the column (in source.timezone), named
    <day>_<name>, so a historical export lands in the daily partitions it belongs to. Feeds not
    listed go into one file named for the earliest of those days (or the run date)."""

    format: Literal["csv", "parquet", "jsonl"] = "csv"
    split_by_day: dict[str, str] = Field(default_factory=dict)


class Mapping(_Model):
    version: Literal[1] = 1
    name: str
    description: str = ""
    source: SourceSpec = Field(default_factory=SourceSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    feeds: dict[str, FeedMapping]

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not SOURCE_NAME.fullmatch(v):
            raise ValueError(f"name {v!r} must match {SOURCE_NAME.pattern} (it becomes part of file names)")
        return v


# ---------------------------------------------------------------------------------------------
# loading: YAML 1.2 booleans (only true/false), so a value map key `N` or `no` stays text


class _Loader(yaml.SafeLoader):
    pass


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _where(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        elif p in ("function-after[_shape()]",) or str(p).startswith(("function-", "str", "int", "float", "bool")):
            continue
        else:
            parts.append(("." if parts else "") + str(p))
    return "".join(parts) or "(top level)"


def parse_mapping(data: Any, origin: str = "<mapping>") -> Mapping:
    """Validate a parsed YAML document; errors name the file and the key path."""
    if not isinstance(data, dict):
        raise MappingError(f"{origin}: a mapping file must be a YAML mapping with keys name, source, feeds")
    try:
        mapping = Mapping.model_validate(data)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key (check the spelling; see docs/bring_your_own_data.md)"
            lines.append(f"{origin}: {_where(err['loc'])}: {msg}")
        raise MappingError("\n".join(lines)) from None
    _check_against_contracts(mapping, origin)
    return mapping


def load_mapping(path: str | Path) -> Mapping:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise MappingError(f"{path}: cannot read mapping file: {e}") from e
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        raise MappingError(f"{path}: not valid YAML: {e}") from e
    return parse_mapping(data, str(path))


def _check_against_contracts(m: Mapping, origin: str) -> None:
    errors: list[str] = []
    if not m.feeds:
        errors.append(f"{origin}: feeds: map at least one feed")
    for feed_name, fm in m.feeds.items():
        where = f"{origin}: feeds.{feed_name}"
        if feed_name not in FEEDS:
            errors.append(f"{where}: unknown feed {feed_name!r}; feeds are: {', '.join(FEEDS)}")
            continue
        contract = FEEDS[feed_name]
        names = contract.column_names
        for col in fm.columns:
            if not TARGET_NAME.fullmatch(col) or col not in names:
                errors.append(
                    f"{where}.columns.{col}: not a column of feed {feed_name}; columns are: {', '.join(names)}"
                )
        for col in contract.required_columns:
            if col not in fm.columns:
                errors.append(f"{where}.columns: required column {col!r} of feed {feed_name} has no rule")
        if fm.derive_from is not None:
            parent = m.feeds.get(fm.derive_from)
            if parent is None:
                errors.append(f"{where}.derive_from: {fm.derive_from!r} is not a feed of this mapping")
            elif parent.derive_from is not None:
                errors.append(
                    f"{where}.derive_from: {fm.derive_from!r} is itself derived; derive from a "
                    "feed read from the source"
                )
            if fm.latest is not None:
                errors.append(f"{where}.latest: a derived feed uses the rows of {fm.derive_from}; put latest there")
        if fm.distinct_on is not None:
            if not fm.distinct_on:
                errors.append(f"{where}.distinct_on: give at least one target column")
            for k in fm.distinct_on:
                if k not in fm.columns:
                    errors.append(f"{where}.distinct_on: {k!r} is not a mapped column of this feed")
        seen: list[str] = []
        for col, rule in fm.columns.items():
            cw = f"{where}.columns.{col}"
            if col not in names:
                continue
            ctype = contract.column(col).type
            for ref, what in ((rule.base, "base"), (rule.fallback, "fallback")):
                if ref is None:
                    continue
                if ref not in seen:
                    errors.append(f"{cw}.{what}: {ref!r} must be a target column defined above this one")
                elif contract.column(ref).type != contract.column(col).type and what == "fallback":
                    errors.append(f"{cw}.fallback: {ref!r} has another type ({contract.column(ref).type})")
            if rule.base is not None and ctype != "timestamp":
                errors.append(f"{cw}.base: only timestamp columns can be built from another timestamp")
            if rule.base is not None and rule.base in names and contract.column(rule.base).type != "timestamp":
                errors.append(f"{cw}.base: {rule.base!r} is not a timestamp column")
            if (rule.formats or rule.date_order or rule.timezone or rule.plausible) and ctype not in (
                "timestamp",
                "date",
                "month",
            ):
                errors.append(
                    f"{cw}: formats/date_order/timezone/plausible are for timestamp or date columns ({col} is {ctype})"
                )
            if rule.date_order == "auto" and rule.column is None and rule.columns is None:
                errors.append(f"{cw}.date_order: auto guesses the order from source text; it needs column or columns")
            if (
                ctype == "timestamp"
                and rule.base is None
                and rule.constant is None
                and not (rule.formats or rule.date_order)
                and rule.values is None
            ):
                errors.append(
                    f"{cw}: a timestamp column needs formats (e.g. ['%d-%m-%Y %H:%M'] or [iso8601]) or date_order"
                )
            if (
                ctype == "timestamp"
                and rule.base is None
                and (rule.formats or rule.date_order)
                and rule.timezone is None
                and m.source.timezone is None
                and (rule.formats or []) != [ISO8601]
            ):
                errors.append(f"{cw}: say the time zone of naive timestamps (timezone here or source.timezone)")
            if rule.pick is not None and fm.distinct_on is None:
                errors.append(f"{cw}.pick: only feeds with distinct_on pick one value per key")
            if rule.add is not None and ctype != "timestamp":
                errors.append(f"{cw}.add: only timestamps can have durations added")
            seen.append(col)
    for feed_name, col in m.output.split_by_day.items():
        where = f"{origin}: output.split_by_day.{feed_name}"
        if feed_name not in m.feeds:
            errors.append(f"{where}: {feed_name!r} is not a feed of this mapping")
        elif col not in FEEDS[feed_name].column_names or FEEDS[feed_name].column(col).type not in ("timestamp", "date"):
            errors.append(f"{where}: {col!r} is not a timestamp or date column of {feed_name}")
        elif col not in m.feeds[feed_name].columns:
            errors.append(f"{where}: {col!r} is not mapped")
    if errors:
        raise MappingError("\n".join(errors))


def referenced_source_columns(m: Mapping) -> list[tuple[str, str]]:
    """Every source column a mapping names, with the key path that names it (for clear errors)."""
    out: list[tuple[str, str]] = []
    for feed, fm in m.feeds.items():
        w = f"feeds.{feed}"
        if fm.latest is not None:
            out += [(f"{w}.latest.key", k) for k in fm.latest.key] + [(f"{w}.latest.by", fm.latest.by)]
        out += [(f"{w}.filter[{i}].column", c.column) for i, c in enumerate(fm.filter)]
        for col, r in fm.columns.items():
            cw = f"{w}.columns.{col}"
            if r.column is not None:
                out.append((f"{cw}.column", r.column))
            out += [(f"{cw}.columns", c) for c in r.columns or []]
            out += [(f"{cw}.add[{i}].{a.unit}", a.source_column) for i, a in enumerate(r.add or [])]
            if r.when is not None:
                out.append((f"{cw}.when.column", r.when.column))
    return out
