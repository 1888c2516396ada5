{#-
Order-independent arithmetic on non-integer doubles.

DuckDB adds the rows of an aggregate in whatever order its threads finish, and a sum of doubles depends on that
order (noise around 1e-13). Noise of that size flips a cent rounding further down: measured at tier M, two
`dbt build --full-refresh` of the same raw data gave 13 different composite scores, 4 different reward-list rows
and 396 different improvement-list rows, so a rebuild could publish a "restatement" of a closed period with no
new data. The values are cast to DECIMAL(18, 9) before they are added (nine decimals: 3.6 µs of an hour, 1e-9
of a rate; the magnitudes here stay far below 1e9): DuckDB adds decimals exactly as 128-bit integers, so the
result no longer depends on the order. avg() of a decimal still returns a DOUBLE.
Integer-valued doubles (ratings cast to double) add exactly anyway; they use the same macros for uniformity.
-#}

{% macro stable_avg(expression) -%}
    avg(cast({{ expression }} as decimal(18, 9)))
{%- endmacro %}

{#- The exact sum as a DOUBLE. -#}
{% macro stable_sum(expression) -%}
    cast(sum(cast({{ expression }} as decimal(18, 9))) as double)
{%- endmacro %}
