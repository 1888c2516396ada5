"""The quality suites of the warehouse, built from the checks of expectations/checks.py (the scope of a rule
and how it is validated are explained there): raw suites derived from the feed contracts, KPI mart suites
derived from the indicator catalogue, appraisal and training suites, and the registry `SUITES`.

Add a suite: build it with the helpers of expectations/checks.py and append it to `SUITES` (see
`training_mart_suites`).
"""

from __future__ import annotations

from collections.abc import Sequence

from expectations.checks import (
    Check,
    PeriodGrain,
    Severity,
    Suite,
    between,
    freshness,
    in_set,
    load_volume,
    newest_load_rows_loaded_once,
    not_null,
    reference_share,
    sql_rule,
    unique,
)
from ingestion.contracts import FEEDS, Feed
from ingestion.indicator_catalogue import Indicator, indicators, units

# ---------------------------------------------------------------------------------------------- raw suites

# feed -> (timestamp column of the newest record, max age in hours)
RAW_FRESHNESS: dict[str, tuple[str, float]] = {
    "tickets": ("updated_at", 48),
    "complaints": ("updated_at", 72),
    "surveys": ("responded_at", 72),
    "purchases": ("purchased_at", 24 * 7),
    "supervisor_reviews": ("period", 24 * 62),
}

# event feeds whose daily loads have comparable sizes (reference feeds arrive as small change files)
RAW_VOLUME_FEEDS = frozenset({"tickets", "complaints", "surveys", "purchases"})

# feed -> references whose unknown share is reported (warning): (column, table, column, max share)
RAW_REFERENCE_SHARES: dict[str, tuple[tuple[str, str, str, float], ...]] = {
    "tickets": (
        ("technician_id", "raw.technicians", "technician_id", 0.001),
        ("customer_id", "raw.customers", "customer_id", 0.01),
        ("product_id", "raw.products", "product_id", 0.01),
    ),
    "complaints": (
        ("technician_id", "raw.technicians", "technician_id", 0.001),
        ("customer_id", "raw.customers", "customer_id", 0.01),
        ("ticket_id", "raw.tickets", "ticket_id", 0.01),
    ),
    "surveys": (
        ("technician_id", "raw.technicians", "technician_id", 0.001),
        ("customer_id", "raw.customers", "customer_id", 0.01),
        ("ticket_id", "raw.tickets", "ticket_id", 0.01),
    ),
    "purchases": (
        ("customer_id", "raw.customers", "customer_id", 0.01),
        ("product_id", "raw.products", "product_id", 0.01),
    ),
    "supervisor_reviews": (("technician_id", "raw.technicians", "technician_id", 0.001),),
    "training_sessions": (("course_id", "raw.training_courses", "course_id", 0.0),),
    "training_attendance": (
        ("technician_id", "raw.technicians", "technician_id", 0.001),
        ("session_id", "raw.training_sessions", "session_id", 0.0),
    ),
}


def raw_suite(feed: Feed) -> Suite:
    """The contract's row rules again (a second line behind the loader) plus load-level rules."""
    checks: list[Check] = []
    for col in feed.columns:
        if col.required:
            checks.append(not_null(col.name))
        if col.type == "enum" and col.values:
            checks.append(in_set(col.name, col.values))
        if col.min is not None or col.max is not None:
            checks.append(between(col.name, col.min, col.max))
    checks.append(newest_load_rows_loaded_once())
    checks.append(not_null("_loaded_at", description="every row records when it was loaded"))
    for column, ref_table, ref_column, max_share in RAW_REFERENCE_SHARES.get(feed.name, ()):
        checks.append(reference_share(column, ref_table, ref_column, max_share))
    if feed.name in RAW_VOLUME_FEEDS:
        checks.append(load_volume())
    if feed.name in RAW_FRESHNESS:
        column, hours = RAW_FRESHNESS[feed.name]
        checks.append(freshness(column, hours))
    # raw tables are append-only and every row carries its load time: rows rules follow the new loads
    return Suite(name=f"raw_{feed.name}", table=f"raw.{feed.name}", checks=tuple(checks), increment_column="_loaded_at")


# ---------------------------------------------------------------------------------------------- KPI marts

# the indicators, their value columns and the range of each unit: the catalogue (ingestion/indicator_catalogue.py)


def null_iff_zero_count(key_columns: Sequence[str], catalogue: Sequence[Indicator]) -> Check:
    """Each value is null exactly when its sample is 0; an indicator measured from a fact's first month on
    (measured_from) may also be null with a sample: it was not measured then."""
    keys = ", ".join(key_columns)
    branches = []
    for indicator in catalogue:
        code = indicator.code
        for value_column in indicator.value_columns:
            broken = (
                f"{value_column} is not null and coalesce({code}_n, 0) = 0"
                if indicator.measured_from
                else f"({value_column} is null) <> (coalesce({code}_n, 0) = 0)"
            )
            branches.append(f"""    select
        {keys},
        '{value_column}' as value_column,
        cast({value_column} as double) as value,
        {code}_n as sample_size
    from {{batch}}
    where {broken}""")
    query = "\n    union all\n".join(branches)
    return sql_rule(
        f"select * from (\n{query}\n) as broken",
        "each indicator value is null exactly when its count is 0",
        scope="rows",
    )


def kpi_suite(
    model: str, key_columns: Sequence[str], schema: str = "marts", period_grain: PeriodGrain = "month"
) -> Suite:
    """A KPI period mart (incremental by period, macros/kpi.sql): its row rules and the uniqueness of its key
    (which includes period_start) are validated on the periods rebuilt since the last passing validation."""
    checks: list[Check] = [not_null(k) for k in key_columns]
    checks.append(unique(key_columns, scope="periods" if "period_start" in key_columns else "table"))
    catalogue = indicators()
    # value ranges by unit, in the order of the catalogue's units; then every sample is a count
    for unit in units().values():
        for indicator in (i for i in catalogue if i.unit == unit.name):
            for column in indicator.value_columns:
                checks.append(between(column, unit.min, unit.max, description=f"{column} {unit.says}"))
    for indicator in catalogue:
        checks.append(
            between(indicator.sample_column, 0, None, description=f"{indicator.sample_column} is a count >= 0")
        )
    checks.append(null_iff_zero_count(key_columns, catalogue))
    return Suite(name=model, table=f"{schema}.{model}", checks=tuple(checks), period_grain=period_grain)


# ---------------------------------------------------------------------------------------------- appraisal

GRADES = ("A", "B", "C", "D")
APPRAISAL_KEY = ("technician_id", "period_type", "period_start", "method")


def grade_not_better_than_band(bands_table: str = "reference.grade_bands") -> Check:
    """A forced distribution may move a grade down, never up: grade X needs a score >= X's lower bound
    (min_score of X in the grade_bands seed). A `table` rule: it reads the seed, which can be edited without
    the mart being rebuilt (docs/incremental.md), and a whole validation then judges every period again."""
    query = f"""
with batch_rows as (
    select * from {{batch}}
)

select
    {", ".join(f"batch_rows.{k}" for k in APPRAISAL_KEY)},
    batch_rows.composite_score,
    batch_rows.grade,
    bands.min_score as grade_min_score
from batch_rows
inner join {bands_table} as bands
    on batch_rows.grade = bands.grade
where batch_rows.composite_score is null
    or batch_rows.composite_score < bands.min_score
"""
    return sql_rule(query, "grade is never better than its score band (grade_bands.min_score)")


def forced_distribution_respected() -> Check:
    """At most floor(forced_a_max_share x graded technicians) A per team, period and method; the final grade
    differs from the band grade only where the forced distribution moved an A down to B. A `periods` rule:
    each group lies in one period."""
    query = """
with batch_rows as (
    select * from {batch}
),

team_grades as (
    select
        team_id,
        period_type,
        period_start,
        method,
        max(forced_a_max_share) as forced_a_max_share,
        sum(case when status = 'graded' then 1 else 0 end) as graded_count,
        sum(case when grade = 'A' then 1 else 0 end) as a_count
    from batch_rows
    group by team_id, period_type, period_start, method
)

select
    team_id,
    period_type,
    period_start,
    method,
    cast(null as varchar) as technician_id,
    'more A than the forced distribution allows' as problem,
    a_count,
    graded_count,
    forced_a_max_share
from team_grades
where forced_a_max_share is not null
    and a_count > floor(forced_a_max_share * graded_count + 1e-9)

union all

select
    team_id,
    period_type,
    period_start,
    method,
    technician_id,
    'grade ' || coalesce(grade, 'null') || ' differs from band grade ' || coalesce(band_grade, 'null')
        as problem,
    null as a_count,
    null as graded_count,
    forced_a_max_share
from batch_rows
where grade is distinct from band_grade
    and not (coalesce(is_forced_down, false) and band_grade = 'A' and grade = 'B')
"""
    return sql_rule(
        query, "the forced distribution is respected (A quota per team; only A -> B moves)", scope="periods"
    )


def score_drift(max_shift_points: float, severity: Severity = "warning") -> Check:
    """A `table` rule: it compares each period with the one before it."""
    query = f"""
with period_means as (
    select
        period_type,
        method,
        period_start,
        avg(composite_score) as mean_composite,
        count(composite_score) as scored
    from {{batch}}
    group by period_type, method, period_start
),

compared as (
    select
        period_type,
        method,
        period_start,
        mean_composite,
        scored,
        lag(period_start) over (partition by period_type, method order by period_start) as previous_period_start,
        lag(mean_composite) over (partition by period_type, method order by period_start) as previous_mean
    from period_means
)

select
    period_type,
    method,
    period_start,
    previous_period_start,
    mean_composite,
    previous_mean,
    mean_composite - previous_mean as shift_points
from compared
where previous_mean is not null
    and abs(mean_composite - previous_mean) > {max_shift_points}
"""
    return sql_rule(
        query,
        f"mean composite score moves by at most {max_shift_points:g} points between consecutive periods",
        severity,
    )


def appraisal_scores_suite(schema: str = "marts", drift_points: float = 10.0) -> Suite:
    checks = [
        *(not_null(k) for k in APPRAISAL_KEY),
        unique(
            APPRAISAL_KEY, description="exactly one row per technician, period type, period and method", scope="periods"
        ),
        in_set("period_type", ("month", "quarter", "year")),
        between("composite_score", 0, 100, description="composite_score within 0..100"),
        in_set("grade", GRADES),
        in_set("status", ("graded", "insufficient_data")),
        between("rank_in_team", 1, None, description="rank_in_team >= 1"),
        between("rank_overall", 1, None, description="rank_overall >= 1"),
        between("rated_weight_share", 0, 1, description="rated_weight_share within 0..1"),
        grade_not_better_than_band(),
        forced_distribution_respected(),
        sql_rule(
            f"""
select {", ".join(APPRAISAL_KEY)}, status, composite_score, grade
from {{batch}}
where status = 'graded'
    and (grade is null or composite_score is null)
""",
            "a graded row has a grade and a composite score",
            scope="rows",
        ),
        score_drift(drift_points),
    ]
    return Suite(
        name="appraisal_scores", table=f"{schema}.appraisal_scores", checks=tuple(checks), period_grain="period_type"
    )


def appraisal_breakdown_suite(schema: str = "marts", tolerance: float = 1e-6) -> Suite:
    keys = ", ".join(APPRAISAL_KEY)
    join = " and ".join(f"sums.{k} = scores.{k}" for k in APPRAISAL_KEY)
    checks = [
        *(not_null(k) for k in (*APPRAISAL_KEY, "indicator_code")),
        unique((*APPRAISAL_KEY, "indicator_code"), scope="periods"),
        between("score", 0, 100, description="indicator score within 0..100"),
        between("weight_used", 0, None, description="weight_used >= 0"),
        # a `table` rule: it reads every row of another mart (appraisal_scores), which a period scope of this
        # suite's table does not bound
        sql_rule(
            f"""
with sums as (
    select
        {keys},
        sum(coalesce(contribution, 0)) as contribution_sum
    from {{batch}}
    group by {keys}
)

select
    {", ".join(f"scores.{k}" for k in APPRAISAL_KEY)},
    scores.composite_score,
    sums.contribution_sum
from {schema}.appraisal_scores as scores
left join sums
    on {join}
where scores.composite_score is not null
    and (sums.contribution_sum is null or abs(sums.contribution_sum - scores.composite_score) > {tolerance})
""",
            f"contributions sum to the composite score (within {tolerance:g})",
        ),
        sql_rule(
            f"""
select {keys}, indicator_code, sample_size, min_sample
from {{batch}}
where is_rated
    and (sample_size is null or sample_size < min_sample)
""",
            "no rated indicator has fewer observations than its minimum sample",
            scope="rows",
        ),
        sql_rule(
            f"""
select {keys}, indicator_code, score, contribution
from {{batch}}
where not is_rated
    and coalesce(contribution, 0) <> 0
""",
            "a not-rated indicator contributes nothing",
            scope="rows",
        ),
    ]
    return Suite(
        name="appraisal_score_breakdown",
        table=f"{schema}.appraisal_score_breakdown",
        checks=tuple(checks),
        period_grain="period_type",
    )


def training_mart_suites() -> list[Suite]:
    """Suites for the training marts (expectations/training_suites.py)."""
    from expectations.training_suites import training_suites

    return training_suites()


# ---------------------------------------------------------------------------------------------- registry

RAW_SUITES: tuple[Suite, ...] = tuple(raw_suite(feed) for feed in FEEDS.values())
MART_SUITES: tuple[Suite, ...] = (
    kpi_suite("kpi_technician_monthly", ("technician_id", "period_start")),
    appraisal_scores_suite(),
    appraisal_breakdown_suite(),
    *training_mart_suites(),
)
SUITES: dict[str, Suite] = {s.name: s for s in (*RAW_SUITES, *MART_SUITES)}
