{#-
Order-independent arithmetic on non-integer doubles.

DuckDB adds the rows of an aggregate in whatever order its threads finish, and a sum of doubles depends on that
order (noise around 1e-13). Noise of that size flips a cent rounding further down: measured at tier M, two
`dbt build --full-refresh` of the same raw data gave 13 different composite scores, 4 different reward-list rows
and 396 different improvement-list rows, so a rebuild could publish a "restatement" of a closed period with no
new data. The values are cast to DECIMAL(38, 18) before they are added (18 decimals keep every digit a double
of these magnitudes carries, so the mean equals the exact one to ~1e-16 relative; up to 1e20 fits): DuckDB adds
decimals exactly as 128-bit integers, so the result no longer depends on the order. avg() of a decimal still
returns a DOUBLE. Cost: ~0.02 s per million values and average at tier L (2 threads), a few seconds of a full
build.
Integer-valued doubles (ratings cast to double) add exactly anyway; they use the same macros for uniformity.
-#}

{% macro stable_avg(expression) -%}
    avg(cast({{ expression }} as decimal(38, 18)))
{%- endmacro %}

{#- The exact sum as a DOUBLE. -#}
{% macro stable_sum(expression) -%}
    cast(sum(cast({{ expression }} as decimal(38, 18))) as double)
{%- endmacro %}
