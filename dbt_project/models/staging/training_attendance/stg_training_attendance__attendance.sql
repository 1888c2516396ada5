with source as (
    select * from {{ source('raw', 'training_attendance') }}
),

ranked as (
    select
        *,
        {{ newest_version_rank(['session_id', 'technician_id']) }} as version_rank
    from source
),

renamed as (
    select
        {{ clean_text('session_id') }} as session_id,
        {{ clean_text('technician_id') }} as technician_id,
        attended as is_attended,
        cast(pre_score as double) as pre_score,
        cast(post_score as double) as post_score,
        passed as is_passed,
        cast(feedback_score as integer) as feedback_score
    from ranked
    where version_rank = 1
)

select * from renamed
