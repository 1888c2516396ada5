with calendar as (
    select * from {{ ref('int_work_calendar') }}
),

final as (
    select
        calendar_date,
        cast({{ date_part_of('year', 'calendar_date') }} as integer) as year_number,
        cast({{ date_part_of('quarter', 'calendar_date') }} as integer) as quarter_number,
        cast({{ date_part_of('month', 'calendar_date') }} as integer) as month_number,
        {{ period_start('month', 'calendar_date') }} as month_start,
        {{ period_start('quarter', 'calendar_date') }} as quarter_start,
        {{ period_start('year', 'calendar_date') }} as year_start,
        {{ period_label('month', 'calendar_date') }} as month_label,
        {{ period_label('quarter', 'calendar_date') }} as quarter_label,
        {{ period_label('year', 'calendar_date') }} as year_label,
        cast({{ date_part_of('isodow', 'calendar_date') }} as integer) as iso_day_of_week,
        {{ date_part_of('isodow', 'calendar_date') }} >= 6 as is_weekend,
        is_workday,
        is_holiday,
        holiday_name,
        is_makeup_workday,
        is_estimated,
        work_seconds / 3600.0 as work_hours
    from calendar
)

select * from final
