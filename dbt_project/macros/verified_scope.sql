{#-
Whole-history tests narrowed to what changed since the current publication (docs/incremental.md,
"Whole-history tests after a publication"). The orchestration reads the change windows recorded since that
publication from its audit (orchestration/transform.py verified_build_env) and passes their first month; this
run's own window comes from int_change_window.
-#}

{#- The first month (datetime.date) a whole-history consistency test must look at, or none for all months.
    The orchestration passes '<first month YYYY-MM-01, or none>:<epoch µs>' (env SERVICESCORE_DBT_UNVERIFIED_FROM):
    the first month of the change windows recorded after the current publication's mark (µs), and only when the
    dbt project is byte-identical to the one that publication was built with and no full window was recorded
    since: every month it published passed this run's tests then (a failed test blocks the publication), so only
    months recomputed since can differ. This run's window (tests run after models) is added when it was built
    after the mark. None (all months) when the variable is empty or malformed, or the window is a full one.
    Read only while executing, so the variable never invalidates dbt's partial parse. -#}
{% macro unverified_from_month() -%}
    {%- set window = ref('int_change_window') -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set parts = (env_var('SERVICESCORE_DBT_UNVERIFIED_FROM', '') | trim).split(':') -%}
    {%- if parts | length != 2 or not parts[1].isdigit()
            or not (parts[0] == 'none' or modules.re.fullmatch('[0-9]{4}-[0-9]{2}-01', parts[0])) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set months = [] if parts[0] == 'none' else [to_date(parts[0])] -%}
    {%- set rows = run_query(
        "select is_full_build, month_start from " ~ window ~ " where epoch_us(built_at) > " ~ parts[1]).rows -%}
    {%- for row in rows -%}
        {%- if row[0] -%}
            {{ return(none) }}
        {%- endif -%}
        {%- if row[1] is not none -%}
            {%- do months.append(to_date(row[1])) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if months | length == 0 -%}
        {#- nothing recomputed since the publication: nothing to check -#}
        {{ return(modules.datetime.date(9999, 12, 1)) }}
    {%- endif -%}
    {{ return(months | min) }}
{%- endmacro %}
