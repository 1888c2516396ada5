{#- name and phone are personal data: only masked / hashed values leave raw. -#}
with source as (
    select * from {{ source('raw', 'customers') }}
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
        case
            when {{ phone_digits('phone') }} is null or {{ phone_digits('phone') }} = '' then null
            else {{ hash_pii(phone_digits('phone')) }}
        end as phone_hash,
        {{ mask_phone('phone') }} as phone_masked,
        {{ clean_text('city') }} as city,
        {{ clean_code('segment') }} as segment,
        {{ to_local_ts('created_at') }} as created_at,
        {{ to_local_ts('updated_at') }} as updated_at,
        _loaded_at as loaded_at
    from ranked
    where version_rank = 1
)

select * from renamed
