{#- SCD2 roster: one row per technician version. valid_to is exclusive (the next version's
    valid_from), 9999-12-31 for the current version. -#}
with roster as (
    select * from {{ ref('stg_technicians__roster') }}
),

versions as (
    select
        *,
        row_number() over (partition by technician_id order by valid_from) as version_number,
        lead(valid_from) over (partition by technician_id order by valid_from) as next_valid_from
    from roster
),

final as (
    select
        technician_id,
        valid_from,
        coalesce(next_valid_from, cast('9999-12-31' as date)) as valid_to,
        cast(version_number as integer) as version_number,
        next_valid_from is null as is_current,
        technician_name,
        team_id,
        team_name,
        region,
        level,
        hire_date,
        leave_date,
        manager_id,
        updated_at
    from versions
)

select * from final
