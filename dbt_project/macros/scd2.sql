{#- The dim_technicians version valid on a date. valid_to is exclusive; the first version of a
    technician also covers dates before its valid_from (events recorded before the roster row). -#}
{% macro scd2_valid_on(dim_alias, date_expression) -%}
    ({{ dim_alias }}.version_number = 1 or {{ date_expression }} >= {{ dim_alias }}.valid_from)
    and {{ date_expression }} < {{ dim_alias }}.valid_to
{%- endmacro %}

{#- Last day of the month / quarter / year that starts on period_start. -#}
{% macro period_end(grain, period_start) -%}
    cast({{ dbt.dateadd('day', -1, dbt.dateadd(grain, 1, period_start)) }} as date)
{%- endmacro %}

{% macro period_start(grain, date_expression) -%}
    cast({{ dbt.date_trunc(grain, date_expression) }} as date)
{%- endmacro %}

{#- '2026-05' / '2026-Q2' / '2026' -#}
{% macro period_label(grain, period_start) -%}
    {%- set year = dbt.cast(date_part_of('year', period_start), dbt.type_string()) -%}
    {%- set month = date_part_of('month', period_start) -%}
    {%- if grain == 'month' -%}
        {{ dbt.concat([year, "'-'", dbt.right(dbt.concat(["'0'", dbt.cast(month, dbt.type_string())]), "2")]) }}
    {%- elif grain == 'quarter' -%}
        {{ dbt.concat([year, "'-Q'", dbt.cast(date_part_of('quarter', period_start), dbt.type_string())]) }}
    {%- elif grain == 'year' -%}
        {{ year }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("period grain must be month, quarter or year, not " ~ grain) }}
    {%- endif -%}
{%- endmacro %}
