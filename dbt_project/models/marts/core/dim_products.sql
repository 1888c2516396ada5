with products as (
    select * from {{ ref('stg_products__products') }}
),

final as (
    select
        product_id,
        category,
        model,
        complexity,
        updated_at
    from products
)

select * from final
