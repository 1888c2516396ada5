{#- One row per course and indicator it is meant to improve (the ';'-separated indicator_codes of the
    course split with dbt.split_part over positions 1..max_indicators), with the indicator's direction and
    unit from the indicator settings (constant across methods and effective periods). -#}
{%- set max_indicators = 15 -%}
with courses as (
    select * from {{ ref('stg_training_courses__courses') }}
),

indicator_settings as (
    select * from {{ ref('indicator_settings') }}
),

positions as (
    {%- for position in range(1, max_indicators + 1) %}
    select {{ position }} as indicator_position
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

split as (
    select
        courses.course_id,
        positions.indicator_position,
        trim({{ dbt.split_part('courses.indicator_codes', "';'", 'positions.indicator_position') }})
            as indicator_code
    from courses
    cross join positions
    where courses.indicator_codes is not null
),

deduplicated as (
    select
        course_id,
        indicator_code,
        min(indicator_position) as indicator_position
    from split
    where indicator_code is not null
        and indicator_code <> ''
    group by course_id, indicator_code
),

indicators as (
    select
        indicator_code,
        max(name_en) as indicator_name_en,
        max(name_zh) as indicator_name_zh,
        max(direction) as direction,
        max(unit) as unit
    from indicator_settings
    group by indicator_code
),

final as (
    select
        deduplicated.course_id,
        deduplicated.indicator_code,
        cast(deduplicated.indicator_position as integer) as indicator_position,
        indicators.indicator_name_zh,
        indicators.indicator_name_en,
        indicators.direction,
        indicators.unit,
        indicators.indicator_code is not null as is_known_indicator
    from deduplicated
    left join indicators
        on deduplicated.indicator_code = indicators.indicator_code
)

select * from final
