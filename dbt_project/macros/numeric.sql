{#-
Order-independent arithmetic on non-integer doubles.

DuckDB adds the rows of an aggregate in whatever order its threads finish, and a sum of doubles depends on that
order (noise around 1e-13). Noise of that size flips a cent rounding further down: measured at tier M, two
`dbt build --full-refresh` of the same raw data gave 13 different composite scores, 4 different reward-list rows
and 396 different improvement-list rows, so a rebuild could publish a "restatement" of a closed period with no
new data. The values are cast to DECIMAL(38, 18) before they are added (18 decimals keep every digit a double
of these magnitudes carries, so the mean equals the exact one to ~1e-16 relative; up to 1e20 fits): DuckDB adds
decimals exactly as 128-bit integers, so the result no longer depends on the order; stable_avg divides the exact
sum, as a DOUBLE, by the count. The cost is small beside a build (docs/benchmarks.md).
Integer-valued doubles (ratings cast to double) add exactly anyway; they use the same macros for uniformity.
-#}

{#- The mean: the exact sum as a DOUBLE over the count of non-null values (null when there is none). The one
    definition of a mean in the project: mean_of_sums computes the same double from stored exact sums (a KPI
    quarter from its months, int_kpi_monthly_sums), so both ways give the same number to the last bit. (DuckDB's own
    avg() of a decimal divides in extended precision and differs from this in the last bit in about a quarter of
    the means, measured at tier L; this formula is the one a stored sum can repeat.) -#}
{% macro stable_avg(expression) -%}
    {{ stable_sum(expression) }} / count({{ expression }})
{%- endmacro %}

{#- The exact sum as a DOUBLE. -#}
{% macro stable_sum(expression) -%}
    cast({{ exact_sum(expression) }} as double)
{%- endmacro %}

{#- The exact sum as a DECIMAL(38, 18), to be stored and added up again (int_kpi_monthly_sums): sums of these
    sums stay exact whatever the grouping. -#}
{% macro exact_sum(expression) -%}
    sum(cast({{ expression }} as decimal(38, 18)))
{%- endmacro %}

{#- The mean of the values behind stored exact sums (exact_sum, and count() of the same values): the sum of the
    sums over the sum of the counts, null when there is no value. The sum of decimal sums is exact, so this is the
    very double stable_avg gives over the values themselves, whatever the grouping. -#}
{% macro mean_of_sums(sum_expression, count_expression) -%}
    case
        when sum({{ count_expression }}) > 0
            then cast(sum({{ sum_expression }}) as double) / sum({{ count_expression }})
    end
{%- endmacro %}
