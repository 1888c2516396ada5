{#-
Whole-history tests narrowed to what changed since the current publication (docs/incremental.md,
"Whole-history tests after a publication"). The watermark comes from the orchestration
(orchestration/transform.py verified_build_env), the build log and the facts' _built_at.
-#}

{#- The months of fact rows written since `since` (a timestamptz SQL expression), at every period date they
    count for now and the date of the version they replaced. Sorted list of datetime.date (first of month). -#}
{% macro fact_months_built_since(since) -%}
    {%- set tickets = graph_relation('fct_service_tickets') -%}
    {%- set responses = graph_relation('fct_survey_responses') -%}
    {%- set complaints = graph_relation('fct_complaints') -%}
    {%- set reviews = graph_relation('fct_supervisor_reviews') -%}
    {#- (fact, watermark column, period date columns): the created date of a ticket only drives
        first_response_time, so it has its own watermark (_created_built_at) -#}
    {%- set fact_dates = [
        (tickets, '_built_at', ['resolved_date', '_replaced_resolved_date']),
        (tickets, '_created_built_at', ['created_date', '_replaced_created_date']),
        (responses, '_built_at', ['responded_date', '_replaced_responded_date']),
        (complaints, '_built_at', ['received_date', '_replaced_received_date']),
        (reviews, '_built_at', ['period_start', '_replaced_period_start']),
    ] -%}
    {%- set branches = [] -%}
    {%- for relation, watermark, columns in fact_dates -%}
        {%- for column in columns -%}
            {%- do branches.append(
                "select distinct " ~ period_start('month', column) ~ " as month_start from " ~ relation
                ~ " where " ~ watermark ~ " > " ~ since ~ " and " ~ column ~ " is not null") -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- set months = [] -%}
    {%- for row in run_query(branches | join('\nunion\n')).rows -%}
        {%- do months.append(to_date(row[0])) -%}
    {%- endfor -%}
    {{ return(months | unique | sort) }}
{%- endmacro %}

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
