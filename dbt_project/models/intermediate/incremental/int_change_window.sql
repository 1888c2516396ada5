{#- This dbt run's change window (docs/incremental.md, "The change window"): the months every period mart
    recomputes, decided once per run from what changed since the last complete run (change_window_months in
    macros/incremental.sql). One row per month; one row with month_start null when nothing changed
    (is_full_build false) or when every period is recomputed (is_full_build true: no instant given, first build,
    --full-refresh). The orchestration appends the rows to its audit after the build (ingestion/change_window.py),
    so the quality suites and the publication read the same months. -#}
{{ config(materialized='table') }}
{%- set since = change_window_since() %}
{%- set months = change_window_months(since) %}
with window_months as (
    {%- if months %}
    {%- for month in months %}
    select {{ date_literal(month) }} as month_start
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
    {%- else %}
    select cast(null as date) as month_start
    {%- endif %}
)

select
    month_start,
    {{ 'true' if months is none else 'false' }} as is_full_build,
    {{ since if since else 'cast(null as ' ~ dbt.type_timestamp() ~ ')' }} as changed_since,
    {{ build_timestamp() }} as built_at
from window_months
