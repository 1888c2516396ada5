with source as (
    select * from {{ source('raw', 'tickets') }}
),

ranked as (
    select
        *,
        {{ newest_version_rank(['ticket_id'], 'updated_at') }} as version_rank
    from source
),

renamed as (
    select
        {{ clean_text('ticket_id') }} as ticket_id,
        {{ clean_text('technician_id') }} as technician_id,
        {{ clean_text('customer_id') }} as customer_id,
        {{ clean_text('product_id') }} as product_id,
        {{ clean_code('status') }} as status,
        {{ clean_code('service_type') }} as service_type,
        upper(trim(priority)) as priority,
        {{ clean_code('channel') }} as channel,
        {{ to_local_ts('created_at') }} as created_at,
        {{ to_local_ts('first_response_at') }} as first_response_at,
        {{ to_local_ts('resolved_at') }} as resolved_at,
        {{ to_local_ts('closed_at') }} as closed_at,
        {{ to_local_ts('updated_at') }} as updated_at,
        cast(onsite_visits as integer) as onsite_visits,
        first_time_fix,
        cast(reopened_count as integer) as reopened_count,
        _loaded_at as loaded_at
    from ranked
    where version_rank = 1
)

select * from renamed
