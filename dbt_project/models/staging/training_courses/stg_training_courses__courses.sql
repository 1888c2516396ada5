with source as (
    select * from {{ source('raw', 'training_courses') }}
),

ranked as (
    select
        *,
        {{ newest_version_rank(['course_id']) }} as version_rank
    from source
),

renamed as (
    select
        {{ clean_text('course_id') }} as course_id,
        {{ clean_text('title') }} as title,
        {{ clean_code('topic') }} as topic,
        cast(hours as double) as course_hours,
        {{ clean_code('indicators') }} as indicator_codes,
        coalesce(is_onboarding, false) as is_onboarding
    from ranked
    where version_rank = 1
)

select * from renamed
