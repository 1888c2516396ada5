{#-
Whole-history tests narrowed to what changed since the current publication (docs/incremental.md,
"Whole-history tests after a publication"). The watermark comes from the orchestration
(orchestration/transform.py verified_build_env), the build log and the facts' _built_at.
-#}

{#- The first month (datetime.date) a whole-history consistency test must look at, or none for all months.
    The orchestration passes the build-log watermark of the current publication as '<epoch µs>:<log rows>'
    (env SERVICESCORE_DBT_VERIFIED_BUILD, orchestration/transform.py verified_build_env), and only when the dbt
    project is byte-identical to the one that publication was built with: every month it published passed this
    run's tests then (a failed test blocks the publication), so only months recomputed since can differ:
      * months `model_name` logged since the watermark (this build's months included: tests run after models),
      * months of fact rows written since (fact_months_built_since: a fact rebuilt without the model, e.g.
        a partial `dbt build --select`, still counts).
    None (all months) when the variable is empty or malformed, the log is missing, the log up to the watermark
    no longer has the recorded number of rows (reset or rewritten), or a full build happened since. Read only
    while executing, so the variable never invalidates dbt's partial parse. -#}
{% macro unverified_from_month(model_name) -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set mark = env_var('SERVICESCORE_DBT_VERIFIED_BUILD', '') | trim -%}
    {%- set parts = mark.split(':') -%}
    {%- if parts | length != 2 or not parts[0].isdigit() or not parts[1].isdigit() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set since_us = parts[0] | int -%}
    {%- set log = incremental_log_relation() -%}
    {%- if adapter.get_relation(database=log.database, schema=log.schema, identifier=log.identifier) is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set kept = incremental_scalar(
        "select count(*) from " ~ log ~ " where epoch_us(built_at) <= " ~ since_us) -%}
    {%- if kept is none or (kept | int) != (parts[1] | int) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set full = incremental_scalar(
        "select coalesce(bool_or(is_full_build), false) from " ~ log ~ " where epoch_us(built_at) > " ~ since_us
        ~ " and model_name = '" ~ model_name ~ "'") -%}
    {%- if full -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set months = fact_months_built_since("(make_timestamp(" ~ since_us ~ ") at time zone 'UTC')") -%}
    {%- set logged = run_query(
        "select distinct month_start from " ~ log ~ " where epoch_us(built_at) > " ~ since_us
        ~ " and model_name = '" ~ model_name ~ "' and month_start is not null") -%}
    {%- for row in logged.rows -%}
        {%- do months.append(to_date(row[0])) -%}
    {%- endfor -%}
    {%- if months | length == 0 -%}
        {#- nothing recomputed since the publication: nothing to check -#}
        {{ return(modules.datetime.date(9999, 12, 1)) }}
    {%- endif -%}
    {{ return(months | min) }}
{%- endmacro %}
