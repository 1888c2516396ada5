with source as (
    select * from {{ source('raw', 'technicians') }}
),

ranked as (
    select
        *,
        {{ newest_version_rank(['technician_id', 'valid_from'], 'updated_at') }} as version_rank
    from source
),

renamed as (
    select
        {{ clean_text('technician_id') }} as technician_id,
        valid_from,
        {{ clean_text('name') }} as technician_name,
        {{ clean_text('team_id') }} as team_id,
        {{ clean_text('team_name') }} as team_name,
        {{ clean_text('region') }} as region,
        {{ clean_code('level') }} as level,
        hire_date,
        leave_date,
        {{ clean_text('manager_id') }} as manager_id,
        {{ to_local_ts('updated_at') }} as updated_at,
        _loaded_at as loaded_at
    from ranked
    where version_rank = 1
)

select * from renamed
