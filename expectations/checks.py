"""The building blocks of the quality suites (docs/architecture.md, "Quality gate, publication and personal
data"): one `Suite` per warehouse table, each `Check` a Great Expectations 1.x expectation with a severity.
`error` failures block publication (mart checks are blocking asset checks); `warning` failures are reported and
do not block.

Row rules use GE's built-in column expectations; rules across rows or tables (volume of the newest load,
freshness, share of unknown references, drift, sums against another mart) are `UnexpectedRowsExpectation`
SQL queries over `{batch}` (the validated table) that return the offending rows or the one row of measured
numbers when the rule is broken, so the failing values show up as the check's sample. All queries run in
DuckDB; nothing is pulled into Python. SQL here is written in this module, never built from input data.

Raw suites are derived from the feed contracts (ingestion.contracts): required columns not null, enum
values, numeric ranges, one raw row per source row, plus volume / freshness / reference-share rules.

Scope of a rule (`Check.scope`): a `rows` rule judges each row on its own (not null, in a set, in a range,
the share of unknown references among the rows), so on an append-only table it holds for the whole table
once it held for every load; a `periods` rule judges each period of a period mart on its own (uniqueness of
a key that includes the period, a quota per team and period), so it holds for the mart once it held for each
period; a `table` rule's meaning depends on the whole table (volume of the newest load against the earlier
ones, freshness, uniqueness of a key without the period, comparisons across periods, other tables whose
changes the suite does not follow). expectations.runner validates the `rows` rules of a suite with an
`increment_column` (the raw suites: `_loaded_at`) on the rows loaded since the last validation of them that
passed, and the `rows` and `periods` rules of a suite with a `period_grain` (the KPI and appraisal period
marts, rebuilt by period: the change-window audit says which) on the periods rebuilt since then; `table` rules (and
`periods` rules of any other suite) always run on the whole table; see the runner's module doc. Helpers
default to the honest scope; `unique` and `sql_rule` default to `table` (safe).

The suites themselves: expectations/suites.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import great_expectations.expectations as gxe

Severity = Literal["error", "warning"]
Scope = Literal["rows", "periods", "table"]
# how a period mart's rows name their period: one grain (column period_start), or period_type + period_start
PeriodGrain = Literal["month", "quarter", "year", "period_type"]
PERIOD_GRAINS = ("month", "quarter", "year", "period_type")


@dataclass(frozen=True)
class Check:
    expectation: gxe.Expectation
    severity: Severity
    description: str
    # "rows": holds row by row (may be validated on new rows only); "periods": holds period by period (may be
    # validated on the rebuilt periods of a period mart only); "table": needs the whole table
    scope: Scope = "table"

    def __post_init__(self) -> None:
        if self.severity not in ("error", "warning"):
            raise ValueError(f"severity must be 'error' or 'warning', not {self.severity!r}")
        if self.scope not in ("rows", "periods", "table"):
            raise ValueError(f"scope must be 'rows', 'periods' or 'table', not {self.scope!r}")

    @property
    def expectation_type(self) -> str:
        return self.expectation.expectation_type

    @property
    def column(self) -> str | None:
        column = getattr(self.expectation, "column", None)
        if column:
            return str(column)
        column_list = getattr(self.expectation, "column_list", None)
        return ", ".join(column_list) if column_list else None


@dataclass(frozen=True)
class Suite:
    name: str
    table: str  # 'schema.table'
    checks: tuple[Check, ...] = field(default_factory=tuple)
    # an append-only table's load-time column: `rows` rules then validate only rows after the watermark
    increment_column: str | None = None
    # a period mart rebuilt by period (delete+insert; the change-window audit lists the months each run recomputed):
    # `rows` and `periods` rules then validate only the periods rebuilt since the watermark
    period_grain: PeriodGrain | None = None

    def __post_init__(self) -> None:
        if self.table.count(".") != 1:
            raise ValueError(f"suite {self.name}: table must be 'schema.table', not {self.table!r}")
        if self.period_grain is not None and self.period_grain not in PERIOD_GRAINS:
            raise ValueError(
                f"suite {self.name}: period_grain must be one of {PERIOD_GRAINS}, not {self.period_grain!r}"
            )
        if self.period_grain is not None and self.increment_column is not None:
            raise ValueError(f"suite {self.name}: an increment column or a period grain, not both")

    @property
    def incremental(self) -> bool:
        """Whether some rules may be validated on part of the table (see `scoped`)."""
        return self.increment_column is not None or self.period_grain is not None

    def scoped(self, check: Check) -> bool:
        """Whether `check` is validated on the suite's increment (the new loads or the rebuilt periods) when
        the suite has one: `rows` rules always; `periods` rules only on a period mart."""
        return check.scope == "rows" or (check.scope == "periods" and self.period_grain is not None)

    @property
    def schema_name(self) -> str:
        return self.table.split(".")[0]

    @property
    def table_name(self) -> str:
        return self.table.split(".")[1]

    @property
    def has_errors(self) -> bool:
        return any(c.severity == "error" for c in self.checks)


# ---------------------------------------------------------------------------------------------- helpers


def not_null(column: str, severity: Severity = "error", description: str | None = None) -> Check:
    return Check(
        gxe.ExpectColumnValuesToNotBeNull(column=column),
        severity,
        description or f"{column} is never empty",
        scope="rows",
    )


def between(
    column: str,
    min_value: float | None,
    max_value: float | None,
    severity: Severity = "error",
    description: str | None = None,
) -> Check:
    if min_value is None and max_value is None:
        raise ValueError(f"between({column}): give min_value or max_value")
    if description is None:
        if min_value is None:
            description = f"{column} <= {max_value:g}"
        elif max_value is None:
            description = f"{column} >= {min_value:g}"
        else:
            description = f"{column} within {min_value:g}..{max_value:g}"
    return Check(
        gxe.ExpectColumnValuesToBeBetween(column=column, min_value=min_value, max_value=max_value),
        severity,
        description,
        scope="rows",
    )


def in_set(
    column: str, values: Iterable[object], severity: Severity = "error", description: str | None = None
) -> Check:
    values = list(values)
    return Check(
        gxe.ExpectColumnValuesToBeInSet(column=column, value_set=values),
        severity,
        description or f"{column} is one of {', '.join(map(str, values))}",
        scope="rows",
    )


def unique(
    columns: Sequence[str], severity: Severity = "error", description: str | None = None, scope: Scope = "table"
) -> Check:
    """One row per value of `columns`. `scope="periods"` only when the columns include the period (a period
    mart's period_start, and period_type if it has one): two rows of different periods never collide."""
    columns = list(columns)
    if len(columns) == 1:
        expectation: gxe.Expectation = gxe.ExpectColumnValuesToBeUnique(column=columns[0])
    else:
        expectation = gxe.ExpectCompoundColumnsToBeUnique(column_list=columns)
    return Check(expectation, severity, description or f"one row per ({', '.join(columns)})", scope)


def sql_rule(query: str, description: str, severity: Severity = "error", scope: Scope = "table") -> Check:
    """A rule as SQL: `query` selects the rows that break it (from `{batch}` and, if needed, other tables).

    GE substitutes `{batch}` with an aliased subquery: never alias it again (`{batch} as b` is a syntax
    error); name it in a CTE (`with batch_rows as (select * from {batch})`) when a correlation is needed.
    `scope="rows"` only for a rule that holds for a table when it holds for each part of it, `scope="periods"`
    for one that holds when it holds for each period of a period mart (see the module doc); both only when the
    query reads nothing but `{batch}` (another table can change without the validated rows changing).
    """
    return Check(
        gxe.UnexpectedRowsExpectation(unexpected_rows_query=query, description=description),
        severity,
        description,
        scope,
    )


def reference_share(
    column: str, ref_table: str, ref_column: str, max_share: float, severity: Severity = "warning"
) -> Check:
    """Share of non-empty `column` values not found in `ref_table.ref_column` is at most `max_share`.

    A `rows` rule: on an incremental suite it is the share among the rows validated (the new loads), so a bad
    load is not diluted by the history; rows validated before are not re-judged when a reference arrives."""
    # the unknown rows are the rows with a value minus the rows whose value is found, counted by a semi join
    # (EXISTS): DuckDB builds its hash table on the batch values and pushes their min/max into the scan of
    # `ref_table` as a dynamic filter, so a few new rows probe only the row groups of the reference table that
    # can hold their values, where the former NOT EXISTS anti join read every id of the reference table. On a
    # whole table it is as fast as the anti join. Before that, a `sum(case when not exists ...)` in the select
    # list was planned as a mark join, slower still (figures in docs/benchmarks.md). GE runs the query twice
    # (its row count, then its rows), so every cost counts twice.
    query = f"""
with batch_values as (
    select {column} from {{batch}}
    where {column} is not null
),

known as (
    select count(*) as known_rows
    from batch_values
    where exists (
        select 1 from {ref_table} as ref where ref.{ref_column} = batch_values.{column}
    )
),

counted as (
    select
        known.known_rows,
        (select count(*) from batch_values) as rows_with_value
    from known
),

checked as (
    select
        rows_with_value - known_rows as unknown_rows,
        rows_with_value
    from counted
)

select
    unknown_rows,
    rows_with_value,
    cast(unknown_rows as double) / rows_with_value as unknown_share
from checked
where rows_with_value > 0
    and cast(unknown_rows as double) / rows_with_value > {max_share}
"""
    return sql_rule(query, f"share of {column} not in {ref_table} is at most {max_share:.1%}", severity, scope="rows")


def load_volume(
    min_ratio: float = 0.5,
    max_ratio: float = 2.0,
    window: int = 7,
    min_earlier_loads: int = 2,
    severity: Severity = "warning",
) -> Check:
    """Rows of the newest load (one load = one _file_hash) within [min_ratio, max_ratio] x the mean rows of
    the `window` loads before it. Needs `min_earlier_loads` earlier loads to judge."""
    query = f"""
with loads as (
    select
        _file_hash,
        min(_loaded_at) as loaded_at,
        count(*) as load_rows
    from {{batch}}
    group by _file_hash
),

ranked as (
    select
        _file_hash,
        load_rows,
        row_number() over (order by loaded_at desc, _file_hash desc) as load_rank
    from loads
),

newest as (
    select _file_hash, load_rows from ranked where load_rank = 1
),

earlier as (
    select
        avg(cast(load_rows as double)) as trailing_avg_rows,
        count(*) as earlier_loads
    from ranked
    where load_rank between 2 and {window + 1}
)

select
    newest._file_hash as newest_file_hash,
    newest.load_rows as newest_load_rows,
    earlier.trailing_avg_rows,
    earlier.earlier_loads,
    newest.load_rows / earlier.trailing_avg_rows as volume_ratio
from newest
cross join earlier
where earlier.earlier_loads >= {min_earlier_loads}
    and (
        newest.load_rows < {min_ratio} * earlier.trailing_avg_rows
        or newest.load_rows > {max_ratio} * earlier.trailing_avg_rows
    )
"""
    return sql_rule(
        query,
        f"newest load has {min_ratio:g}x..{max_ratio:g}x the mean rows of the {window} loads before it",
        severity,
    )


def newest_load_rows_loaded_once(severity: Severity = "error") -> Check:
    """Each source row (file hash, row number) of the newest load is in the table once. Scoped to the newest
    load so the nightly cost follows the new data (earlier loads were checked when they were new)."""
    # `not materialized`: the filter on the newest file hash then reaches the table scan (a dynamic join filter
    # that skips the row groups of other loads); a materialized CTE copied every row of the table first
    query = """
with batch_rows as not materialized (
    select _file_hash, _row_number, _loaded_at from {batch}
),

newest_load as (
    select _file_hash
    from batch_rows
    order by _loaded_at desc, _file_hash desc
    limit 1
)

select
    batch_rows._file_hash,
    batch_rows._row_number,
    count(*) as copies
from batch_rows
inner join newest_load
    on batch_rows._file_hash = newest_load._file_hash
group by batch_rows._file_hash, batch_rows._row_number
having count(*) > 1
"""
    return sql_rule(query, "each source row (file hash, row number) of the newest load is loaded once", severity)


def freshness(column: str, max_age_hours: float, severity: Severity = "warning") -> Check:
    """The newest `column` value is at most `max_age_hours` old at validation time (an empty table fails)."""
    query = f"""
select
    max({column}) as newest_value,
    current_timestamp as checked_at
from {{batch}}
having max({column}) is null
    or max({column}) < current_timestamp - interval '{int(max_age_hours * 3600)} seconds'
"""
    return sql_rule(query, f"newest {column} is at most {max_age_hours:g} hours old", severity)
