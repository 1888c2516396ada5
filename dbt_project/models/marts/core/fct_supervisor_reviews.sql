{#- One row per supervisor review (one score per technician and month); the technician's team on the
    last day of the reviewed month.
    Incremental (delete+insert on review_id): see macros/incremental.sql and docs/incremental.md. -#}
-- depends_on: {{ ref('stg_technicians__roster') }}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='review_id',
    on_schema_change='fail',
) }}
{%- set since = fact_refresh_since() %}
with reviews as (
    select * from {{ ref('stg_supervisor_reviews__reviews') }} as staged
    {%- if since %}
    where {{ fact_rows_to_refresh('review_id', dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'staged.period_start')), since) }}
    {%- endif %}
),

technicians as (
    select * from {{ ref('dim_technicians') }}
),

periods as (
    select
        *,
        {{ period_end('month', 'period_start') }} as period_end
    from reviews
),

derived as (
    select
        periods.review_id,
        periods.technician_id,
        technicians.team_id,
        periods.reviewer_id,
        periods.period_start,
        periods.period_end,
        periods.score,
        periods.reviewed_at,
        periods.comment,
        periods.loaded_at as _loaded_at
    from periods
    left join technicians
        on periods.technician_id = technicians.technician_id
        and {{ scd2_valid_on('technicians', 'periods.period_end') }}
),

final as (
    select
        derived.*,
        {{ replaced_date('derived.period_start', 'previous', 'period_start') }} as _replaced_period_start,
        {{ fact_built_at('previous', 'derived', 'review_id', ['team_id']) }} as _built_at
    from derived
    {%- if is_incremental() %}
    left join {{ this }} as previous
        on derived.review_id = previous.review_id
    {%- endif %}
)

select * from final
