{#- Which scheduled session each need would go to, and whether it gets a seat.
    1. Eligible sessions of a need: sessions of its recommended course with status planned or held that start
       1..coverage_horizon_days days after the need's period end.
    2. Each need takes the earliest eligible session (starts_at, then session_id): session_choice = 1.
    3. Seats are per technician, not per need: the technicians sent to a session are ordered by their most
       urgent need (priority_rank), then the earliest need period, then technician_id; seat_number <= capacity
       (null capacity = unlimited) is within capacity. A need that does not get a seat is not moved to a later
       session (one pass, no spill-over). -#}
with needs as (
    select * from {{ ref('training_needs') }}
),

sessions as (
    select * from {{ ref('stg_training_sessions__sessions') }}
),

settings as (
    select * from {{ ref('int_training_settings') }}
),

scheduled as (
    select
        session_id,
        course_id,
        starts_at,
        cast(starts_at as date) as session_date,
        capacity,
        status
    from sessions
    where status in ('planned', 'held')
),

eligible as (
    select
        needs.need_id,
        needs.technician_id,
        needs.priority_rank,
        needs.period_end,
        scheduled.session_id,
        scheduled.course_id,
        scheduled.starts_at,
        scheduled.session_date,
        scheduled.capacity,
        scheduled.status as session_status,
        cast(
            {{ dbt.datediff('needs.period_end', 'scheduled.session_date', 'day') }}
            as integer
        ) as days_after_period_end,
        row_number() over (
            partition by needs.need_id
            order by scheduled.starts_at, scheduled.session_id
        ) as session_choice
    from needs
    inner join scheduled
        on needs.recommended_course_id = scheduled.course_id
        and needs.period_end < scheduled.session_date
    cross join settings
    where {{ dbt.datediff('needs.period_end', 'scheduled.session_date', 'day') }}
        <= settings.coverage_horizon_days
),

chosen as (
    select * from eligible
    where session_choice = 1
),

seat_requests as (
    select
        session_id,
        technician_id,
        min(priority_rank) as best_priority_rank,
        min(period_end) as earliest_period_end
    from chosen
    group by session_id, technician_id
),

seats as (
    select
        session_id,
        technician_id,
        row_number() over (
            partition by session_id
            order by best_priority_rank, earliest_period_end, technician_id
        ) as seat_number
    from seat_requests
),

final as (
    select
        chosen.need_id,
        chosen.technician_id,
        chosen.session_id,
        chosen.course_id,
        chosen.session_status,
        chosen.starts_at,
        chosen.session_date,
        chosen.days_after_period_end,
        chosen.capacity,
        cast(seats.seat_number as integer) as seat_number,
        chosen.capacity is null or seats.seat_number <= chosen.capacity as is_within_capacity
    from chosen
    inner join seats
        on chosen.session_id = seats.session_id
        and chosen.technician_id = seats.technician_id
)

select * from final
