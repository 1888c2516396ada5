with source as (
    select * from {{ source('raw', 'supervisor_reviews') }}
),

ranked as (
    select
        *,
        {{ newest_version_rank(['review_id']) }} as version_rank
    from source
),

renamed as (
    select
        {{ clean_text('review_id') }} as review_id,
        {{ clean_text('technician_id') }} as technician_id,
        {{ clean_text('reviewer_id') }} as reviewer_id,
        cast({{ dbt.date_trunc('month', 'period') }} as date) as period_start,
        cast(score as double) as score,
        {{ clean_text('comment') }} as comment,
        {{ to_local_ts('reviewed_at') }} as reviewed_at,
        _loaded_at as loaded_at
    from ranked
    where version_rank = 1
)

{#- the comment is free text: scrubbed of personal data before it leaves raw (macros/privacy.sql) -#}
{{ select_with_scrubbed_free_text('renamed', 'review_id', 'comment') }}
