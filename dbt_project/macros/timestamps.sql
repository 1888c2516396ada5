{#- Time-zone and time-of-day helpers. Adapter-specific syntax lives only here (dispatch per adapter). -#}

{#- An instant (timestamp with time zone) as naive local time in var('timezone'). -#}
{% macro to_local_ts(column) -%}
    {{ return(adapter.dispatch('to_local_ts')(column)) }}
{%- endmacro %}

{% macro default__to_local_ts(column) -%}
    convert_timezone('{{ var("timezone") }}', {{ column }})
{%- endmacro %}

{% macro duckdb__to_local_ts(column) -%}
    timezone('{{ var("timezone") }}', {{ column }})
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

{% macro workday_start_seconds() -%}{{ hhmm_to_seconds(var('workday_start')) }}{%- endmacro %}
{% macro workday_end_seconds() -%}{{ hhmm_to_seconds(var('workday_end')) }}{%- endmacro %}

{#- ANSI extract(); isodow (1 = Monday .. 7 = Sunday) is adapter-specific. -#}
{% macro date_part_of(part, column) -%}
    {{ return(adapter.dispatch('date_part_of')(part, column)) }}
{%- endmacro %}

{% macro default__date_part_of(part, column) -%}
    extract({{ part }} from {{ column }})
{%- endmacro %}
