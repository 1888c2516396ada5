{#- The build log of the period marts, int_customer_service_history and dim_customers (macros/incremental.sql):
    one row per model build and month it recomputed (month_start null and is_full_build true for a full build).
    Written by each of those models' post-hook; this model only creates the table (empty) and keeps its rows on
    incremental runs. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
) }}

select
    cast(null as {{ dbt.type_string() }}) as model_name,
    {{ build_timestamp() }} as built_at,
    cast(null as boolean) as is_full_build,
    cast(null as date) as month_start
where 1 = 0
