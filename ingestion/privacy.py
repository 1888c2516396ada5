"""Personal data: the pseudonym key, the pseudonyms of customer phones, and the scan that blocks a publication
holding personal data. docs/privacy.md is the operator's side of this module.

What is personal: the customer archive's `name` and `phone` (contracts.PERSONAL_DATA_COLUMNS) and whatever a
customer writes or is written about in free text. They stay in the `raw` schema of the build warehouse.

* **Pseudonyms need a secret.** A phone leaves raw only as HMAC-SHA-256(key, normalised digits): without the key
  the 10^8 or so numbers a mobile can be cannot be tried. The key comes from `$SERVICESCORE_PSEUDONYM_KEY_FILE`
  (a file) or `$SERVICESCORE_PSEUDONYM_KEY` (the value); without either, outside production, a random key is
  generated once per data folder in `<data dir>/secrets/pseudonym.key` (mode 0600, never published). A production
  deployment (operations.yaml `deployment: production` or `$SERVICESCORE_DEPLOYMENT=production`) refuses to run
  without a configured key. The key never reaches dbt: the pseudonyms are computed here, in DuckDB with the key
  as a bound parameter, into raw.customer_pseudonyms, which the customers staging model joins.
* **Free text is scrubbed in staging** (dbt_project/macros/privacy.sql) with the patterns of the
  `personal_data_patterns` var of dbt_project.yml and the customer archive's names.
* **The gate** (`leaks`): the publication step scans what it is about to publish for the same patterns and for
  any raw customer name or phone, and refuses with table, column, kind and row count (never the value).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ingestion.feed_sql import INTEGER_TYPES
from ingestion.paths import DBT_PROJECT_DIR, DataDir
from ingestion.warehouse import quote_ident, quote_literal

KEY_FILE_ENV = "SERVICESCORE_PSEUDONYM_KEY_FILE"
KEY_ENV = "SERVICESCORE_PSEUDONYM_KEY"
RETIRED_SALT_ENV = "SERVICESCORE_PII_SALT"
MIN_KEY_BYTES = 16
GENERATED_KEY_BYTES = 32
PSEUDONYMS_TABLE = "raw.customer_pseudonyms"
# the shortest run of digits looked for as a raw phone number (a local landline without area code)
MIN_PHONE_DIGITS = 7


class PseudonymKeyError(RuntimeError):
    """No usable pseudonym key: the message says what to configure."""


@dataclass(frozen=True)
class PseudonymKey:
    # repr=False: the key never appears in a log line, a traceback's locals or Dagster metadata
    secret: bytes = field(repr=False)
    source: str
    generated: bool = False

    @property
    def key_id(self) -> str:
        """A fingerprint that tells keys apart (which key made a pseudonym) and reveals nothing of the key."""
        return hmac.new(self.secret, b"servicescore/pseudonym-key-id", hashlib.sha256).hexdigest()[:16]


def generated_key_path(paths: DataDir) -> Path:
    return paths.root / "secrets" / "pseudonym.key"


def _read_key_file(path: Path) -> bytes:
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise PseudonymKeyError(f"pseudonym key file {path} cannot be read: {exc.strerror}") from exc
    return secret


def _checked(secret: bytes, source: str) -> bytes:
    if len(secret) < MIN_KEY_BYTES:
        raise PseudonymKeyError(
            f"the pseudonym key from {source} is {len(secret)} bytes; at least {MIN_KEY_BYTES} are needed "
            f"(make one: head -c {GENERATED_KEY_BYTES} /dev/urandom | base64 > FILE)"
        )
    return secret


def pseudonym_key(paths: DataDir, production: bool) -> PseudonymKey:
    """The key in force: the key file, else the environment value, else (outside production) the data folder's
    generated key, made now if missing. Production without a configured key is refused."""
    if os.environ.get(RETIRED_SALT_ENV):
        raise PseudonymKeyError(
            f"{RETIRED_SALT_ENV} is no longer read: a salted hash of a phone number can be reversed by trying every "
            f"number. Put a random key in a file and set {KEY_FILE_ENV} to it (docs/privacy.md), then unset "
            f"{RETIRED_SALT_ENV}."
        )
    key_file = os.environ.get(KEY_FILE_ENV)
    if key_file:
        path = Path(key_file)
        return PseudonymKey(_checked(_read_key_file(path), f"{KEY_FILE_ENV} ({path})"), f"file {path}")
    value = os.environ.get(KEY_ENV)
    if value:
        return PseudonymKey(_checked(value.encode("utf-8"), KEY_ENV), f"environment {KEY_ENV}")
    path = generated_key_path(paths)
    if production:
        raise PseudonymKeyError(
            f"no pseudonym key is configured and this is a production deployment: set {KEY_FILE_ENV} to a file "
            f"holding a random key (head -c {GENERATED_KEY_BYTES} /dev/urandom | base64 > FILE; keep it out of "
            f"the data folder and back it up), or {KEY_ENV}. A key is generated only outside production."
        )
    if path.exists():
        return PseudonymKey(_checked(_read_key_file(path), str(path)), f"generated file {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secrets.token_hex(GENERATED_KEY_BYTES) + "\n")
    return PseudonymKey(_checked(_read_key_file(path), str(path)), f"generated file {path}", generated=True)


# the digits of a phone as one person's number, whatever its notation: separators dropped, and the Chinese
# country code (+86 / 0086 / 86) before an 11-digit mobile dropped, so that '+86 139-0000-0002' and
# '13900000002' are one number
PHONE_DIGITS_SQL = """
    case
        when regexp_full_match(d, '(0086|86)1[3-9][0-9]{9}') then right(d, 11)
        else d
    end"""


def write_pseudonyms(con: Any, key: PseudonymKey) -> int:
    """Rebuild raw.customer_pseudonyms: one row per distinct raw phone of raw.customers, with the HMAC-SHA-256 of
    its normalised digits under `key` (hex). The key is a bound parameter: it is in no SQL text. A new key
    replaces every pseudonym; dim_customers notices its stored profiles differ and recomputes every customer."""
    block = key.secret if len(key.secret) <= 64 else hashlib.sha256(key.secret).digest()
    block = block.ljust(64, b"\0")
    inner = bytes(b ^ 0x36 for b in block)
    outer = bytes(b ^ 0x5C for b in block)
    con.execute(
        f"""
        create or replace table {PSEUDONYMS_TABLE} as
        with phones as (
            select distinct phone, {PHONE_DIGITS_SQL} as digits
            from (
                select phone, regexp_replace(phone, '[^0-9]', '', 'g') as d
                from raw.customers
                where phone is not null
            )
        )
        select
            phone,
            case when digits = '' then null
                 else sha256($outer::blob || unhex(sha256($inner::blob || encode(digits))))
            end as phone_pseudonym,
            $key_id as key_id
        from phones
    """,
        {"outer": outer, "inner": inner, "key_id": key.key_id},
    )
    return int(con.execute(f"select count(*) from {PSEUDONYMS_TABLE}").fetchone()[0])


def hmac_phone(key: PseudonymKey, digits: str) -> str:
    """The pseudonym of normalised digits, in Python: what tests and an operator's spot check compare with."""
    return hmac.new(key.secret, digits.encode("utf-8"), hashlib.sha256).hexdigest()


# ------------------------------------------------------------------------------------------------ the gate scan


@dataclass(frozen=True)
class Pattern:
    name: str
    regex: str
    marker: str


def _project_vars(project_dir: Path = DBT_PROJECT_DIR) -> dict[str, Any]:
    return yaml.safe_load((project_dir / "dbt_project.yml").read_text(encoding="utf-8"))["vars"]


def personal_data_patterns(project_dir: Path = DBT_PROJECT_DIR) -> list[Pattern]:
    """The patterns of personal data in text, in the order the scrubber applies them (dbt_project.yml var
    `personal_data_patterns`: the one list the scrubber and this scan read)."""
    return [Pattern(p["name"], p["regex"], p["marker"]) for p in _project_vars(project_dir)["personal_data_patterns"]]


def min_name_length(project_dir: Path = DBT_PROJECT_DIR) -> int:
    """Names shorter than this are not looked for (dbt_project.yml var `personal_name_min_length`, which the
    scrubber reads too)."""
    return int(_project_vars(project_dir)["personal_name_min_length"])


@dataclass(frozen=True)
class Leak:
    relation: str
    column: str
    what: str
    rows: int

    def __str__(self) -> str:
        return f"{self.relation}.{self.column}: {self.rows} row(s) with {self.what}"


class PersonalDataLeakError(RuntimeError):
    """What a publication would have published that is personal: it is not published."""

    def __init__(self, found: list[Leak]) -> None:
        self.leaks = found
        super().__init__(
            "not published: personal data in " + str(len(found)) + " column(s) of what was to be served "
            "(the values are not shown; find them in the warehouse's marts):\n  "
            + "\n  ".join(map(str, found))
            + "\nFree text is scrubbed in staging (macros/privacy.sql); a customer name that arrived after the "
            "text was built is scrubbed by a rebuild: run with --full-refresh. See docs/privacy.md."
        )


TEXT_TYPES = ("VARCHAR",)


PSEUDONYM_SUFFIX = "_pseudonym"
PSEUDONYM_REGEX = "[0-9a-f]{64}"
# a match of a pattern counts when it is not part of a longer word or number: hex digests and ids are runs of
# letters and digits that can hold eleven digits in a row by chance
BOUNDARY_BEFORE, BOUNDARY_AFTER = "(^|[^0-9A-Za-z])", "([^0-9A-Za-z]|$)"
# a number as people write it: digits with spaces, dashes, dots, brackets or a plus between them
NUMBER_RUN = "[0-9+(][0-9 ()+.-]*[0-9]"


def leaks(con: Any, catalog: str, relations: list[tuple[str, str]], raw_catalog: str) -> list[Leak]:
    """Every (relation, column) of `relations` (schema, name in `catalog`) whose values hold personal data:
    text matching a personal-data pattern (a phone, an e-mail address, an ID-card number), a raw customer name
    (of `raw_catalog`.raw.customers; a cell that is in full the name of an employee, a technician of the roster
    or a trainer, is not looked at: that person is published on purpose, even when a customer has that name), or
    a raw customer phone's digits in a written number (also in integer columns). A `*_pseudonym` column must hold
    pseudonyms (64 hex digits) and nothing else.
    One query per relation, all in DuckDB; names and phones are found by a join on their first characters."""
    patterns = personal_data_patterns()
    n = min_name_length()
    raw = f"{raw_catalog}.raw"
    present = {
        t
        for (t,) in con.execute(
            "select table_name from duckdb_tables() where database_name = ? and schema_name = 'raw'", [raw_catalog]
        ).fetchall()
    }
    # a warehouse without a customer archive (no customers feed yet) has no names or phones to look for
    customers = (
        f"{raw}.customers"
        if "customers" in present
        else "(select null::varchar as name, null::varchar as phone where false)"
    )
    # the people the organisation publishes on purpose: its technicians (the appraisal is about them) and trainers
    employees = (
        " union ".join(
            [f"select trim(name) as name from {raw}.technicians"] * ("technicians" in present)
            + [f"select trim(trainer) from {raw}.training_sessions"] * ("training_sessions" in present)
        )
        or "select null::varchar as name"
    )
    con.execute(
        f"create or replace temp table _pd_employees as select distinct name from ({employees}) where name is not null"
    )
    con.execute(f"""
        create or replace temp table _pd_names as
        select distinct trim(name) as value, substr(trim(name), 1, {n}) as head
        from {customers}
        where length(trim(name)) >= {n}
    """)
    con.execute(f"""
        create or replace temp table _pd_phones as
        select distinct {PHONE_DIGITS_SQL} as value, substr({PHONE_DIGITS_SQL}, 1, {MIN_PHONE_DIGITS}) as head
        from (select regexp_replace(phone, '[^0-9]', '', 'g') as d from {customers} where phone is not null)
        where length(d) >= {MIN_PHONE_DIGITS}
    """)
    pattern_cases = " ".join(
        f"when regexp_matches(v, {quote_literal(BOUNDARY_BEFORE + '(' + p.regex + ')' + BOUNDARY_AFTER)}) "
        f"then {quote_literal(p.name)}"
        for p in patterns
    )
    found: list[Leak] = []
    for schema, name in relations:
        rel = f"{catalog}.{quote_ident(schema)}.{quote_ident(name)}"
        cols = con.execute(f"describe select * from {rel}").fetchall()
        pseudonyms = [c for c, t, *_ in cols if t in TEXT_TYPES and c.endswith(PSEUDONYM_SUFFIX)]
        text = [c for c, t, *_ in cols if t in TEXT_TYPES and c not in pseudonyms]
        ints = [c for c, t, *_ in cols if t in INTEGER_TYPES]
        if not text and not ints and not pseudonyms:
            continue
        scanned = text + ints + pseudonyms
        casts = ", ".join(f"cast({quote_ident(c)} as varchar) as {quote_ident(c)}" for c in scanned)
        text_list = ", ".join(quote_literal(c) for c in text) or "null"
        number_list = ", ".join(quote_literal(c) for c in text + ints) or "null"
        pseudonym_list = ", ".join(quote_literal(c) for c in pseudonyms) or "null"
        # each distinct value of a column once, with the number of rows holding it: most columns repeat a few
        # values (codes, teams, periods), so the tests below run on far fewer cells than rows x columns
        rows = con.execute(f"""
            with cells as (
                select col, v, count(*) as n
                from (unpivot (select {casts} from {rel}) on columns(*) into name col value v)
                group by all
            ),
            not_pseudonyms as (
                select col, 'a value that is not a pseudonym' as what, v, n
                from cells where col in ({pseudonym_list}) and not regexp_full_match(v, '{PSEUDONYM_REGEX}')
            ),
            by_pattern as (
                select col, case {pattern_cases} end as what, v, n
                from cells where col in ({text_list})
            ),
            positions as (
                -- a cell that is an employee's name in full is that employee, even if a customer's name is
                -- part of it (customer 王伟, technician 王伟华) or equal to it
                select col, v, n, unnest(range(1, length(v) - {n} + 2)) as i
                from cells where col in ({text_list}) and length(v) >= {n}
                    and trim(v) not in (select name from _pd_employees)
            ),
            by_name as (
                select distinct positions.col, 'a customer name' as what, positions.v, positions.n
                from positions join _pd_names as names on substr(positions.v, positions.i, {n}) = names.head
                where substr(positions.v, positions.i, length(names.value)) = names.value
            ),
            numbers as (
                select col, v, n, regexp_replace(run, '[^0-9]', '', 'g') as d
                from (select col, v, n, unnest(regexp_extract_all(v, '{NUMBER_RUN}')) as run
                      from cells where col in ({number_list}))
            ),
            digit_positions as (
                select col, v, n, d, unnest(range(1, length(d) - {MIN_PHONE_DIGITS} + 2)) as i
                from numbers where length(d) >= {MIN_PHONE_DIGITS}
            ),
            by_phone as (
                select distinct dp.col, 'a customer phone' as what, dp.v, dp.n
                from digit_positions as dp join _pd_phones as p on substr(dp.d, dp.i, {MIN_PHONE_DIGITS}) = p.head
                where substr(dp.d, dp.i, length(p.value)) = p.value
            )
            select col, what, sum(n)
            from (
                select * from not_pseudonyms
                union all select * from by_pattern where what is not null
                union all select * from by_name
                union all select * from by_phone
            )
            group by all
            order by all
        """).fetchall()
        found += [Leak(f"{schema}.{name}", c, w, int(k)) for c, w, k in rows]
    con.execute("drop table if exists _pd_employees")
    con.execute("drop table if exists _pd_names")
    con.execute("drop table if exists _pd_phones")
    return found
