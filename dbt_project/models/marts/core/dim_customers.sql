{#- Customer archive (masked): profile, purchases and warranty status as of var('as_of_date') (default: the day
    the dbt run started), service history (int_customer_service_history).
    Incremental (delete+insert on customer_id): a build recomputes the customers dim_customers_to_refresh() lists
    (macros/incremental.sql: profile or purchases loaded since the last complete run, a purchase whose warranty
    ends between the stored as-of date and the new one, service history changed), and a post-hook sets every
    row's warranty_as_of_date: every row's warranty status is as of the build, as in a full rebuild. No change-window
    instant, or stored profiles that no longer match raw (pseudonym key, time zone, masking changed): every customer. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='customer_id',
    on_schema_change='fail',
    post_hook=[
        "update {{ this }} set warranty_as_of_date = {{ warranty_as_of() }}
            where warranty_as_of_date is distinct from {{ warranty_as_of() }}",
    ],
) }}
{%- set as_of = warranty_as_of() %}
{%- set service_history_relation = ref('int_customer_service_history') %}
{%- set since = dim_customers_since() %}
with
{%- if since %}

changed_customers as (
    {{ dim_customers_to_refresh(since, as_of, service_history_relation) }}
),

customers as (
    {{ stg_customers__customers_select('select customer_id from changed_customers') }}
),

purchases as (
    {#- every purchase one of whose versions names a changed customer: the newest version decides whose it is -#}
    {{ stg_purchases__purchases_select(
        'select ' ~ clean_text('purchase_id') ~ ' from ' ~ source('raw', 'purchases')
        ~ ' where ' ~ clean_text('customer_id') ~ ' in (select customer_id from changed_customers)') }}
),
{%- else %}

customers as (
    select * from {{ ref('stg_customers__customers') }}
),

purchases as (
    select * from {{ ref('stg_purchases__purchases') }}
),
{%- endif %}

service_history as (
    select * from {{ service_history_relation }}
),

purchase_summary as (
    select
        customer_id,
        count(*) as purchases_count,
        min(purchased_at) as first_purchase_at,
        max(purchased_at) as last_purchase_at,
        max(warranty_until) as latest_warranty_until,
        sum(case when warranty_until >= {{ as_of }} then 1 else 0 end) as active_warranties_count
    from purchases
    group by customer_id
),

final as (
    select
        customers.customer_id,
        customers.customer_name_masked,
        customers.phone_pseudonym,
        customers.city,
        customers.segment,
        customers.created_at,
        coalesce(purchase_summary.purchases_count, 0) as purchases_count,
        purchase_summary.first_purchase_at,
        purchase_summary.last_purchase_at,
        purchase_summary.latest_warranty_until,
        coalesce(purchase_summary.active_warranties_count, 0) as active_warranties_count,
        case
            when purchase_summary.customer_id is null then 'no_purchase'
            when purchase_summary.active_warranties_count > 0 then 'in_warranty'
            when purchase_summary.latest_warranty_until is null then 'no_warranty'
            else 'expired'
        end as warranty_status,
        {{ as_of }} as warranty_as_of_date,
        coalesce(service_history.tickets_count, 0) as tickets_count,
        service_history.last_service_at,
        coalesce(service_history.complaints_count, 0) as complaints_count,
        coalesce(service_history.survey_responses_count, 0) as survey_responses_count,
        service_history.mean_satisfaction
    from customers
    left join purchase_summary
        on customers.customer_id = purchase_summary.customer_id
    left join service_history
        on customers.customer_id = service_history.customer_id
)

select * from final
