with source as (
    select * from {{ source('raw', 'surveys') }}
),

ranked as (
    select
        *,
        {{ newest_version_rank(['response_id']) }} as version_rank
    from source
),

renamed as (
    select
        {{ clean_text('response_id') }} as response_id,
        {{ clean_text('ticket_id') }} as ticket_id,
        {{ clean_text('technician_id') }} as technician_id,
        {{ clean_text('customer_id') }} as customer_id,
        {{ to_local_ts('sent_at') }} as sent_at,
        {{ to_local_ts('responded_at') }} as responded_at,
        cast(overall_score as integer) as overall_score,
        cast(attitude_score as integer) as attitude_score,
        cast(technical_score as integer) as technical_score,
        cast(timeliness_score as integer) as timeliness_score,
        cast(nps as integer) as nps_score,
        {{ clean_text('comment') }} as comment,
        _loaded_at as loaded_at
    from ranked
    where version_rank = 1
)

select * from renamed
