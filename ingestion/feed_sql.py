"""A feed contract compiled to SQL: the typed value of every column and the rules a row must meet, as one
boolean per row (rows that break a rule are read again to list them)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ingestion.contracts import Column, Feed, plausible_window
from ingestion.warehouse import quote_ident, quote_literal

TRUE_TOKENS = ("true", "t", "1", "y", "yes")
FALSE_TOKENS = ("false", "f", "0", "n", "no")
EXTRA_TIMESTAMP_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y%m%d %H:%M:%S")


def _sql_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(quote_literal(v) for v in values) + ")"


def _number(t: str) -> str:
    """A finite double from trimmed text: DuckDB's cast also reads '1_0' as 10 and 'NaN'/'Infinity' as numbers."""
    return f"case when not contains({t}, '_') and isfinite(try_cast({t} as double)) then try_cast({t} as double) end"


def _parse_text(col: Column, t: str) -> str:
    """SQL that parses trimmed text `t` into the contract type; NULL when it cannot."""
    if col.type in ("string", "enum"):
        return t
    if col.type == "timestamp":
        fmts = "[" + ", ".join(quote_literal(f) for f in EXTRA_TIMESTAMP_FORMATS) + "]"
        return f"coalesce(try_cast({t} as timestamptz), cast(try_strptime({t}, {fmts}) as timestamptz))"
    if col.type == "date":
        return f"coalesce(try_cast({t} as date), cast(try_cast({t} as timestamp) as date))"
    if col.type == "month":
        return (
            f"case when regexp_full_match({t}, '\\d{{4}}-\\d{{2}}') then try_cast({t} || '-01' as date) "
            f"else date_trunc('month', try_cast({t} as date)) end"
        )
    if col.type == "int":
        d = _number(t)
        return f"case when {d} = floor({d}) then try_cast({d} as bigint) end"
    if col.type == "decimal":
        return _number(t)
    if col.type == "bool":
        return (
            f"case when lower({t}) in {_sql_list(TRUE_TOKENS)} then true "
            f"when lower({t}) in {_sql_list(FALSE_TOKENS)} then false end"
        )
    raise ValueError(f"unknown column type {col.type}")


INTEGER_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
)
NUMERIC_TYPES = (*INTEGER_TYPES, "FLOAT", "DOUBLE")


def is_nested(source_type: str) -> bool:
    """A struct, list, array, map or union as DuckDB reads it: never a plain value of a feed column."""
    t = source_type.upper()
    return "[" in t or t.startswith(("STRUCT", "MAP", "UNION", "LIST"))


def _parse_typed(col: Column, src: str, source_type: str) -> str:
    """Parse a column that the reader already typed (Parquet). Only a lossless conversion is a cast; anything else
    goes through the text rules (a double 0.4 is not an int, -1 is not a boolean, NaN is not an amount)."""
    t = source_type.upper()
    numeric = t in NUMERIC_TYPES or t.startswith("DECIMAL")
    if col.type == "month":
        return f"cast(date_trunc('month', try_cast({src} as date)) as date)"
    if col.type == "timestamp" and t.startswith(("TIMESTAMP", "DATE")):
        return f"cast({src} as timestamptz)"
    if col.type == "date" and t == "DATE":
        return src
    if col.type == "int" and t in INTEGER_TYPES:
        return f"try_cast({src} as bigint)"
    if col.type == "int" and numeric:
        d = f"cast({src} as double)"
        return f"case when isfinite({d}) and {d} = floor({d}) then try_cast({d} as bigint) end"
    if col.type == "decimal" and numeric:
        return f"case when isfinite(cast({src} as double)) then cast({src} as double) end"
    if col.type == "bool" and t == "BOOLEAN":
        return src
    if col.type in ("string", "enum"):
        return f"cast({src} as varchar)"
    return _parse_text(col, f"nullif(trim(cast({src} as varchar)), '')")


def _checks(
    feed: Feed, text: dict[str, str], missing: dict[str, str], not_plain: dict[str, str] | None = None
) -> list[tuple[str, str, str]]:
    """(rule, SQL condition that is true when the row breaks it, SQL message expression).

    `text[col]`: the column's value as text (for messages); `missing[col]`: true when the file gives no value
    (cheap: it does not build the text of a typed value); `not_plain[col]`: true when the value is a JSON object or
    array, or a struct or list (such a value is rejected, never loaded as its text)."""
    window = plausible_window()
    until_run = f"now() + interval {quote_literal(window.tolerance)}"
    checks: list[tuple[str, str, str]] = []
    for col in feed.columns:
        c = quote_ident(col.name)
        t, absent = text[col.name], missing[col.name]
        name = quote_literal(col.name)
        if col.required:
            checks.append((f"required:{col.name}", absent, f"{name} || ': required value is missing'"))
        if not_plain and col.name in not_plain:
            checks.append(
                (
                    f"type:{col.name}",
                    not_plain[col.name],
                    f"{name} || ': ' || {t} || ' is not a plain value (a JSON object or array, or a struct or list)'",
                )
            )
        if col.type != "string" and col.type != "enum":
            checks.append(
                (
                    f"type:{col.name}",
                    f"not ({absent}) and {c} is null",
                    f"{name} || ': cannot read ''' || {t} || ''' as {col.type}'",
                )
            )
        if col.type == "enum" and col.values:
            checks.append(
                (
                    f"enum:{col.name}",
                    f"{c} is not null and {c} not in {_sql_list(col.values)}",
                    f"{name} || ': ''' || {c} || ''' is not one of {', '.join(col.values)}'",
                )
            )
        if col.min is not None:
            checks.append(
                (
                    f"range:{col.name}",
                    f"{c} < {col.min}",
                    f"{name} || ': ' || {t} || ' is below the minimum {col.min:g}'",
                )
            )
        if col.max is not None:
            checks.append(
                (
                    f"range:{col.name}",
                    f"{c} > {col.max}",
                    f"{name} || ': ' || {t} || ' is above the maximum {col.max:g}'",
                )
            )
        if col.is_temporal:
            since = f"{'timestamptz' if col.type == 'timestamp' else 'date'} {quote_literal(window.since)}"
            if col.future:
                upper_text = f"before {window.far_until}"
                too_late = f"{c} >= date {quote_literal(window.far_until)}"
            else:
                upper_text = f"up to the run time + {window.tolerance}"
                too_late = "false" if col.not_in_future else f"{c} > {until_run}"
            checks.append(
                (
                    f"plausible:{col.name}",
                    f"{c} < {since} or {too_late}",
                    f"{name} || ': ' || {t} || ' is outside the plausible window (from {window.since}, {upper_text})'",
                )
            )
        if col.not_in_future:
            checks.append((f"future:{col.name}", f"{c} > {until_run}", f"{name} || ': ' || {t} || ' is in the future'"))
    for rule in feed.rules:
        checks.append((f"rule:{rule.name}", f"not coalesce(({rule.predicate}), true)", quote_literal(rule.message)))
    for ref in feed.references:
        col = quote_ident(ref.column)
        checks.append(
            (
                f"reference:{ref.column}",
                f"{col} is not null and not exists (select 1 from raw.{quote_ident(ref.feed)} as r "
                f"where r.{quote_ident(ref.feed_column)} = c.{col})",
                f"{quote_literal(ref.column)} || ': unknown ' || {col} || ' (not in {ref.feed})'",
            )
        )
    # a later row (in file order) with the key of an earlier row of its file: the earliest such row of each key
    # is in _dups (dups_sql), nearly always empty
    checks.append(
        (
            "duplicate_key",
            "c._ordinal > d.__dup_first",
            "'same key "
            + ("and " + feed.version_column + " " if feed.version_column else "")
            + "as an earlier row of this file'",
        )
    )
    return checks


def _dup_key_columns(feed: Feed) -> list[str]:
    return list(feed.key) + ([feed.version_column] if feed.version_column else [])


@dataclass(frozen=True)
class CompiledFeed:
    """The contract of a feed compiled to SQL over one source (see compile_feed)."""

    dups_sql: str  # SELECT: the earliest row of each key that occurs more than once in a file (for temp _dups)
    checked_sql: str  # SELECT: __file, _ordinal, the typed columns, _ok (true when the row breaks no rule)
    rejected_sql: str  # SELECT: __file, _ordinal, _problems ('rule|message' list), _record of rows breaking a rule


def compile_feed(
    feed: Feed,
    source_sql: str,
    source_types: dict[str, str],
    record_columns: list[str],
    jsonl: bool = False,
    lines: bool = False,
    xlsx: bool = False,
) -> CompiledFeed:
    """The contract as SQL over one reader: what finds duplicated keys, what types every column and tells whether
    the row meets the contract, and what lists the rules a rejected row breaks.

    `source_sql` yields the columns as read plus `__file` (the file DuckDB read the row from) and `__row` (the
    row's 1-based position in that file), for one file or for many files read by one reader; with `lines`, also
    `__line` (the physical line the row starts on); JSON lines also `__malformed` (the line, when it is not JSON)
    and `__nested` (the columns whose value is a JSON object or array).
    `record_columns` are the columns as read, kept as the JSON `_record` of a rejected row.

    Every row gets one cheap boolean (_ok, the AND of all rules over the typed columns); the list of the rules a
    row breaks, with its messages and its JSON record, is built only for the rows that break one (rejected_sql
    filters on _ok first). Columns that the reader already typed (Parquet) are not turned into text but for
    those messages."""
    typed_cols = ["s.__malformed as __malformed", "s.__nested as __nested"] if jsonl else []
    if xlsx:
        typed_cols.append("s.__uncached as __uncached")
    text: dict[str, str] = {}
    missing: dict[str, str] = {}
    not_plain: dict[str, str] = {}
    for col in feed.columns:
        src = f"s.{quote_ident(col.name)}"
        stype = source_types.get(col.name)
        t_col = quote_ident("__t_" + col.name)
        if jsonl:
            not_plain[col.name] = f"list_contains(__nested, {quote_literal(col.name)})"
        if stype is None:
            text[col.name], missing[col.name] = "cast(null as varchar)", "true"
            parsed = f"cast(null as {col.raw_type})"
        elif is_nested(stype):  # a struct or list column: every value of it is rejected
            typed_cols.append(f"{src} as {t_col}")
            text[col.name], missing[col.name] = f"cast({t_col} as varchar)", f"{t_col} is null"
            not_plain[col.name] = f"{t_col} is not null"
            parsed = f"cast(null as {col.raw_type})"
        elif stype.upper() == "VARCHAR":
            expr = f"nullif(trim({src}), '')"
            typed_cols.append(f"{expr} as {t_col}")
            text[col.name], missing[col.name] = t_col, f"{t_col} is null"
            parsed = f"cast({_parse_text(col, expr)} as {col.raw_type})"
        else:
            typed_cols.append(f"{src} as {t_col}")
            text[col.name], missing[col.name] = f"cast({t_col} as varchar)", f"{t_col} is null"
            parsed = _parse_typed(col, src, stype)
        typed_cols.append(f"{parsed} as {quote_ident(col.name)}")
    checks = _checks(feed, text, missing, not_plain)
    if jsonl:
        checks.insert(0, ("malformed_line", "__malformed is not null", "'line is not a valid JSON object'"))
    if xlsx:
        checks.insert(
            0,
            (
                "formula_not_calculated",
                "__uncached is not null",
                "'formula cell(s) without a calculated value in column(s) ' || __uncached || ' (the "
                "workbook was saved without calculating them; open it in Excel and save it again)'",
            ),
        )
    # one expression (not split into conjuncts): DuckDB evaluates it over the typed columns computed once, above
    # the join with _dups, instead of pushing each conjunct down into the reader with the casts inlined
    ok = "coalesce(" + " and ".join(f"not coalesce({cond}, false)" for _rule, cond, _msg in checks) + ", false)"
    problems = ", ".join(
        f"case when {cond} then {quote_literal(rule)} || '|' || ({msg}) end" for rule, cond, msg in checks
    )
    record = "{" + ", ".join(f"{quote_literal(c)}: s.{quote_ident(c)}" for c in record_columns) + "}"
    out_cols = ", ".join(f"c.{quote_ident(c)}" for c in feed.column_names)
    key_cols = [quote_ident(k) for k in _dup_key_columns(feed)]
    line = "s.__line" if lines else "cast(null as bigint)"
    typed = (
        f"select s.__file, s.__row as _ordinal, {line} as _line, {record} as _source, {', '.join(typed_cols)} "
        f"from ({source_sql}) as s"
    )
    dups = (
        "select __file as __dup_file, "
        + "".join(f"{k} as {quote_ident(f'__dup_k{i}')}, " for i, k in enumerate(key_cols))
        + f"min(_ordinal) as __dup_first from ({typed}) group by all having count(*) > 1"
    )
    joined = f"from ({typed}) as c left join _dups as d on c.__file = d.__dup_file" + "".join(
        f" and c.{k} is not distinct from d.{quote_ident(f'__dup_k{i}')}" for i, k in enumerate(key_cols)
    )
    checked = f"select c.__file, c._ordinal, {out_cols}, {ok} as _ok {joined}"
    # the JSON record is only made for rejected rows (to_json of every row is the costliest part of a load)
    rejected = f"""
with bad as (
    select c.__file, c._ordinal, c._line, c._source,
        list_filter([{problems}], lambda x: x is not null) as _problems
    {joined}
    where not {ok}
)
select __file, _ordinal, _line, _problems, cast(to_json(_source) as varchar) as _record from bad
"""
    return CompiledFeed(dups, checked, rejected)


# --- readers: one SELECT over all the files of a batch ---------------------------------------------------------
