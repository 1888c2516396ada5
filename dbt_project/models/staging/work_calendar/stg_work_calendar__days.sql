with source as (
    select * from {{ source('raw', 'work_calendar') }}
),

renamed as (
    select
        calendar_date,
        coalesce(is_workday, false) as is_workday,
        coalesce(is_holiday, false) as is_holiday,
        {{ clean_text('holiday_name') }} as holiday_name,
        coalesce(is_makeup_workday, false) as is_makeup_workday,
        coalesce(is_estimated, false) as is_estimated
    from source
)

select * from renamed
