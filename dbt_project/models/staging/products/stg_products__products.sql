with source as (
    select * from {{ source('raw', 'products') }}
),

ranked as (
    select
        *,
        {{ newest_version_rank(['product_id'], 'updated_at') }} as version_rank
    from source
),

renamed as (
    select
        {{ clean_text('product_id') }} as product_id,
        {{ clean_text('category') }} as category,
        {{ clean_text('model') }} as model,
        cast(complexity as integer) as complexity,
        {{ to_local_ts('updated_at') }} as updated_at
    from ranked
    where version_rank = 1
)

select * from renamed
