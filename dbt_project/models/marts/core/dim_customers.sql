{#- Customer archive (masked): profile, purchases and warranty status as of var('as_of_date')
    (default: today), service history. -#}
{%- set as_of = "cast('" ~ var('as_of_date') ~ "' as date)" if var('as_of_date', none) else "cast(" ~ dbt.current_timestamp() ~ " as date)" -%}
with customers as (
    select * from {{ ref('stg_customers__customers') }}
),

purchases as (
    select * from {{ ref('stg_purchases__purchases') }}
),

tickets as (
    select * from {{ ref('fct_service_tickets') }}
),

complaints as (
    select * from {{ ref('fct_complaints') }}
),

responses as (
    select * from {{ ref('fct_survey_responses') }}
),

purchase_summary as (
    select
        customer_id,
        count(*) as purchases_count,
        min(purchased_at) as first_purchase_at,
        max(purchased_at) as last_purchase_at,
        max(warranty_until) as latest_warranty_until,
        sum(case when warranty_until >= cast({{ as_of }} as date) then 1 else 0 end) as active_warranties_count
    from purchases
    group by customer_id
),

ticket_summary as (
    select
        customer_id,
        count(*) as tickets_count,
        max(created_at) as last_service_at
    from tickets
    where customer_id is not null
    group by customer_id
),

complaint_summary as (
    select
        customer_id,
        count(*) as complaints_count
    from complaints
    where customer_id is not null
    group by customer_id
),

survey_summary as (
    select
        customer_id,
        count(*) as survey_responses_count,
        avg(cast(overall_score as double)) as mean_satisfaction
    from responses
    where customer_id is not null
    group by customer_id
),

final as (
    select
        customers.customer_id,
        customers.customer_name_masked,
        customers.phone_hash,
        customers.phone_masked,
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
        cast({{ as_of }} as date) as warranty_as_of_date,
        coalesce(ticket_summary.tickets_count, 0) as tickets_count,
        ticket_summary.last_service_at,
        coalesce(complaint_summary.complaints_count, 0) as complaints_count,
        coalesce(survey_summary.survey_responses_count, 0) as survey_responses_count,
        survey_summary.mean_satisfaction
    from customers
    left join purchase_summary
        on customers.customer_id = purchase_summary.customer_id
    left join ticket_summary
        on customers.customer_id = ticket_summary.customer_id
    left join complaint_summary
        on customers.customer_id = complaint_summary.customer_id
    left join survey_summary
        on customers.customer_id = survey_summary.customer_id
)

select * from final
