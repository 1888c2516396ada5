{#-
Staging SELECTs of the customer archive and the purchases: the newest version of each record, renamed, cast and
cleaned. Each macro is the body of its staging view (models/staging/<feed>/) AND, on an incremental build of
dim_customers, its input restricted to `keys_sql`, a query of record ids (customer_id, purchase_id): as for the
event feeds (macros/staging_events.sql), only the raw versions of those records are ranked.
-#}

{#- name and phone are personal data: the name leaves raw masked, the phone only as its keyed pseudonym
    (raw.customer_pseudonyms, written by ingestion/privacy.py with a key dbt never sees). -#}
{% macro stg_customers__customers_select(keys_sql=none) -%}
    with source as (
        {{ event_versions_source('customers', 'customer_id', keys_sql) }}
    ),

    ranked as (
        select
            *,
            {{ newest_version_rank(['customer_id'], 'updated_at') }} as version_rank
        from source
    ),

    renamed as (
        select
            {{ clean_text('customer_id') }} as customer_id,
            {{ mask_name('name') }} as customer_name_masked,
            pseudonyms.phone_pseudonym,
            {{ clean_text('city') }} as city,
            {{ clean_code('segment') }} as segment,
            {{ to_local_ts('created_at') }} as created_at,
            {{ to_local_ts('updated_at') }} as updated_at,
            _loaded_at as loaded_at
        from ranked
        left join {{ source('raw', 'customer_pseudonyms') }} as pseudonyms
            on ranked.phone = pseudonyms.phone
        where version_rank = 1
    )

    select * from renamed
{%- endmacro %}

{% macro stg_purchases__purchases_select(keys_sql=none) -%}
    with source as (
        {{ event_versions_source('purchases', 'purchase_id', keys_sql) }}
    ),

    ranked as (
        select
            *,
            {{ newest_version_rank(['purchase_id'], 'updated_at') }} as version_rank
        from source
    ),

    renamed as (
        select
            {{ clean_text('purchase_id') }} as purchase_id,
            {{ clean_text('customer_id') }} as customer_id,
            {{ clean_text('product_id') }} as product_id,
            {{ to_local_ts('purchased_at') }} as purchased_at,
            warranty_until,
            cast(amount as double) as amount,
            {{ to_local_ts('updated_at') }} as updated_at
        from ranked
        where version_rank = 1
    )

    select * from renamed
{%- endmacro %}
