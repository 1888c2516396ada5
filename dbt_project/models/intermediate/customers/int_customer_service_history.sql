{#- Service history per customer, from the facts: tickets, latest ticket, complaints, survey responses and their
    mean overall score. One row per customer with at least one of them (dim_customers gives the others zeros).
    Incremental (delete+insert on customer_id): a build recomputes the whole history of the customers
    service_history_customers() lists (macros/incremental.sql: customers of fact rows built since the model's
    last build, and of every raw version of those records); a customer left with no rows gets zero counts, which
    the post-hook deletes. No instant (first build, `--full-refresh`): every customer. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='customer_id',
    on_schema_change='fail',
    post_hook=[
        "delete from {{ this }} where tickets_count = 0 and complaints_count = 0 and survey_responses_count = 0",
    ],
) }}
{%- set since = model_change_since() %}
with tickets as (
    select * from {{ ref('fct_service_tickets') }}
),

complaints as (
    select * from {{ ref('fct_complaints') }}
),

responses as (
    select * from {{ ref('fct_survey_responses') }}
),
{%- if since %}

changed_customers as (
    {{ service_history_customers(since) }}
),
{%- endif %}

ticket_summary as (
    select
        customer_id,
        count(*) as tickets_count,
        max(created_at) as last_service_at
    from tickets
    where customer_id is not null
    {%- if since %}
        and customer_id in (select customer_id from changed_customers)
    {%- endif %}
    group by customer_id
),

complaint_summary as (
    select
        customer_id,
        count(*) as complaints_count
    from complaints
    where customer_id is not null
    {%- if since %}
        and customer_id in (select customer_id from changed_customers)
    {%- endif %}
    group by customer_id
),

survey_summary as (
    select
        customer_id,
        count(*) as survey_responses_count,
        {{ stable_avg("cast(overall_score as double)") }} as mean_satisfaction
    from responses
    where customer_id is not null
    {%- if since %}
        and customer_id in (select customer_id from changed_customers)
    {%- endif %}
    group by customer_id
),

customers as (
    {%- if since %}
    select customer_id from changed_customers where customer_id is not null
    {%- else %}
    select customer_id from ticket_summary
    union
    select customer_id from complaint_summary
    union
    select customer_id from survey_summary
    {%- if is_incremental() %}
    union
    -- no watermark on an existing table: also the customers it holds that the facts no longer name
    select customer_id from {{ this }}
    {%- endif %}
    {%- endif %}
),

final as (
    select
        customers.customer_id,
        coalesce(ticket_summary.tickets_count, 0) as tickets_count,
        ticket_summary.last_service_at,
        coalesce(complaint_summary.complaints_count, 0) as complaints_count,
        coalesce(survey_summary.survey_responses_count, 0) as survey_responses_count,
        survey_summary.mean_satisfaction
    from customers
    left join ticket_summary
        on customers.customer_id = ticket_summary.customer_id
    left join complaint_summary
        on customers.customer_id = complaint_summary.customer_id
    left join survey_summary
        on customers.customer_id = survey_summary.customer_id
)

select * from final
