{#- One row per survey response; NPS bucket; the technician's team when the customer responded.
    Incremental (delete+insert on response_id): see macros/incremental.sql and docs/incremental.md. -#}
-- depends_on: {{ ref('stg_technicians__roster') }}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='response_id',
    on_schema_change='fail',
) }}
{%- set since = fact_refresh_since() %}
with responses as (
    {%- if since %}
    {%- set keys = fact_keys_to_refresh('surveys', 'response_id', 'cast(staged.responded_at as date)', since) %}
    select * from ({{ stg_surveys__responses_select(keys) }}) as staged
    where {{ fact_rows_to_refresh('response_id', 'cast(staged.responded_at as date)', since) }}
    {%- else %}
    select * from {{ ref('stg_surveys__responses') }} as staged
    {%- endif %}
),

technicians as (
    select * from {{ ref('dim_technicians') }}
),

bucketed as (
    select
        *,
        cast(responded_at as date) as responded_date,
        overall_score >= 4 as is_satisfied,
        case
            when nps_score is null then null
            when nps_score >= 9 then 'promoter'
            when nps_score >= 7 then 'passive'
            else 'detractor'
        end as nps_bucket
    from responses
),

derived as (
    select
        bucketed.response_id,
        bucketed.ticket_id,
        bucketed.technician_id,
        technicians.team_id,
        bucketed.customer_id,
        bucketed.sent_at,
        bucketed.responded_at,
        bucketed.responded_date,
        bucketed.overall_score,
        bucketed.attitude_score,
        bucketed.technical_score,
        bucketed.timeliness_score,
        bucketed.nps_score,
        bucketed.nps_bucket,
        bucketed.is_satisfied,
        bucketed.comment,
        bucketed.loaded_at as _loaded_at
    from bucketed
    left join technicians
        on bucketed.technician_id = technicians.technician_id
        and {{ scd2_valid_on('technicians', 'bucketed.responded_date') }}
),

final as (
    select
        derived.*,
        {{ replaced_date('derived.responded_date', 'previous', 'responded_date') }} as _replaced_responded_date,
        {{ fact_built_at('previous', 'derived', 'response_id', ['team_id']) }} as _built_at
    from derived
    {%- if is_incremental() %}
    left join {{ this }} as previous
        on derived.response_id = previous.response_id
    {%- endif %}
)

select * from final
