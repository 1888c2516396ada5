with source as (
    select * from {{ source('raw', 'training_sessions') }}
),

ranked as (
    select
        *,
        {{ newest_version_rank(['session_id'], 'updated_at') }} as version_rank
    from source
),

renamed as (
    select
        {{ clean_text('session_id') }} as session_id,
        {{ clean_text('course_id') }} as course_id,
        {{ to_local_ts('starts_at') }} as starts_at,
        {{ to_local_ts('ends_at') }} as ends_at,
        {{ clean_text('trainer') }} as trainer,
        cast(capacity as integer) as capacity,
        {{ clean_code('status') }} as status,
        {{ to_local_ts('updated_at') }} as updated_at
    from ranked
    where version_rank = 1
)

select * from renamed
