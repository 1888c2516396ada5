with source as (
    select * from {{ source('raw', 'purchases') }}
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
