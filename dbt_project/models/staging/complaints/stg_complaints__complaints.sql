with source as (
    select * from {{ source('raw', 'complaints') }}
),

ranked as (
    select
        *,
        {{ newest_version_rank(['complaint_id'], 'updated_at') }} as version_rank
    from source
),

renamed as (
    select
        {{ clean_text('complaint_id') }} as complaint_id,
        {{ clean_text('ticket_id') }} as ticket_id,
        {{ clean_text('customer_id') }} as customer_id,
        {{ clean_text('technician_id') }} as technician_id,
        {{ clean_code('category') }} as category,
        {{ clean_code('severity') }} as severity,
        {{ clean_code('status') }} as status,
        resolution_confirmed,
        {{ to_local_ts('received_at') }} as received_at,
        {{ to_local_ts('accepted_at') }} as accepted_at,
        {{ to_local_ts('resolved_at') }} as resolved_at,
        {{ to_local_ts('updated_at') }} as updated_at,
        _loaded_at as loaded_at
    from ranked
    where version_rank = 1
)

select * from renamed
