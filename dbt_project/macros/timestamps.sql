{#- Time-zone and time-of-day helpers. Adapter-specific syntax lives only here (dispatch per adapter). -#}

{#- A setting of the organisation's clock (var timezone / workday_start / workday_end, from the environment the
    orchestration sets, ingestion/organisation.py). Parsing needs no value; compiling without one is an error. -#}
{% macro organisation_setting(name, parse_value) -%}
    {%- set value = var(name) -%}
    {%- if not value and execute -%}
        {{ exceptions.raise_compiler_error(
            "dbt var '" ~ name ~ "' is empty: the organisation's clock comes from the environment (SERVICESCORE_DBT_"
            ~ (name | upper) ~ "), set by the pipeline's dbt step; to run dbt by hand use "
            ~ "`python -m ingestion.organisation dbt ...` (ingestion/organisation.py)") }}
    {%- endif -%}
    {{- return(value or parse_value) -}}
{%- endmacro %}

{% macro organisation_timezone() -%}{{ return(organisation_setting('timezone', 'UTC')) }}{%- endmacro %}

{#- An instant (timestamp with time zone) as naive local time in the organisation's zone (var('timezone')). -#}
{% macro to_local_ts(column) -%}
    {{ return(adapter.dispatch('to_local_ts')(column)) }}
{%- endmacro %}

{% macro default__to_local_ts(column) -%}
    convert_timezone('{{ organisation_timezone() }}', {{ column }})
{%- endmacro %}

{% macro duckdb__to_local_ts(column) -%}
    timezone('{{ organisation_timezone() }}', {{ column }})
{%- endmacro %}

{#- Seconds since local midnight of a naive local timestamp (fractional). -#}
{% macro seconds_of_day(column) -%}
    {{ return(adapter.dispatch('seconds_of_day')(column)) }}
{%- endmacro %}

{% macro default__seconds_of_day(column) -%}
    {{ dbt.datediff("cast(cast(" ~ column ~ " as date) as timestamp)", column, "second") }}
{%- endmacro %}

{% macro duckdb__seconds_of_day(column) -%}
    (epoch({{ column }}) - epoch(date_trunc('day', {{ column }})))
{%- endmacro %}

{#- Calendar hours between two timestamps (fractional). -#}
{% macro hours_between(start_column, end_column) -%}
    {{ return(adapter.dispatch('hours_between')(start_column, end_column)) }}
{%- endmacro %}

{% macro default__hours_between(start_column, end_column) -%}
    ({{ dbt.datediff(start_column, end_column, "second") }} / 3600.0)
{%- endmacro %}

{% macro duckdb__hours_between(start_column, end_column) -%}
    ((epoch({{ end_column }}) - epoch({{ start_column }})) / 3600.0)
{%- endmacro %}

{#- 'HH:MM' var as seconds since midnight (compile time). -#}
{% macro hhmm_to_seconds(value) -%}
    {%- set parts = (value | string).split(':') -%}
    {{- (parts[0] | int) * 3600 + (parts[1] | int) * 60 -}}
{%- endmacro %}

{% macro workday_start_seconds() -%}{{ hhmm_to_seconds(organisation_setting('workday_start', '00:00')) }}{%- endmacro %}
{% macro workday_end_seconds() -%}{{ hhmm_to_seconds(organisation_setting('workday_end', '00:00')) }}{%- endmacro %}

{#- ANSI extract(); isodow (1 = Monday .. 7 = Sunday) is adapter-specific. -#}
{% macro date_part_of(part, column) -%}
    {{ return(adapter.dispatch('date_part_of')(part, column)) }}
{%- endmacro %}

{% macro default__date_part_of(part, column) -%}
    extract({{ part }} from {{ column }})
{%- endmacro %}
