-- The physical floor of ServiceScore (issue 8): one plain DuckDB script, no orchestration, that reads the
-- landing files, keeps the newest version of each record and computes kpi_technician_monthly directly,
-- with the column definitions of marts.kpi_technician_monthly (dbt_project/models/marts/kpi/kpi_technician_monthly.sql,
-- its column lists: macros/kpi.sql; facts: models/marts/core/fct_*.sql; business hours: macros/business_hours.sql).
--
-- Run it from a data folder (paths are relative to the working directory):
--     cd <data dir> && duckdb < benchmarks/floor.sql          (or: python benchmarks/run.py, which does this)
-- It reads:
--     landing/{tickets,complaints,surveys}/*.csv|*.parquet     (CSV for tier S, Parquet for tiers M and L)
--     landing/supervisor_reviews/*.csv
--     floor_input/technicians/*.csv   the roster files transcoded to UTF-8 with the pipeline's own functions
--                                     (ingestion.landing.detect_encoding + transcode_to_utf8): the first roster
--                                     file is GB18030 and DuckDB reads GB18030 only through the `encodings`
--                                     extension, which cannot be downloaded here. A few thousand rows.
--     floor_input/work_calendar.parquet  calendar_date, is_workday: the same days the pipeline writes to
--                                     raw.work_calendar (ingestion.work_calendar.calendar_frame: the organisation's
--                                     holidays, make-up working days and working weekdays)
--     floor_input/sla_targets.csv     a copy of the seed dbt_project/seeds/sla_targets.csv
--     floor_input/organisation.csv    the organisation's clock of the data folder (ingestion/organisation.py):
--                                     timezone, workday_start_seconds, workday_end_seconds
-- benchmarks/run.py prepares floor_input/ before the timed part (it is reference data, not the feeds).
-- It writes the table kpi_technician_monthly (in the database the script runs in) and prints its row count.
--
-- Rows the loader would reject are dropped here with the same predicates (required columns, enum values and
-- ranges of the columns the KPIs use, the contract's row rules, technician_id known in the roster), so that a
-- rejected newer version leaves the older one in place, as in the pipeline. Not repeated here: the
-- `not_in_future` rule, checks of columns the KPIs do not read (channel, severity, timeliness_score, ...),
-- and malformed values (a malformed CSV value makes this script fail instead). Ties on updated_at are broken by
-- the later file, then the later row of the file (Parquet) -- the pipeline breaks them by load time, then
-- row number; the landing files of one run load in day order, so the order is the same.

set variable organisation_timezone = (select timezone from read_csv('floor_input/organisation.csv', header = true));
set variable workday_start_seconds = (
    select cast(workday_start_seconds as bigint) from read_csv('floor_input/organisation.csv', header = true)
);
set variable workday_end_seconds = (
    select cast(workday_end_seconds as bigint) from read_csv('floor_input/organisation.csv', header = true)
);
set TimeZone = getvariable('organisation_timezone');

-- ------------------------------------------------------------------ reference data
create or replace temp table roster as
with source as (
    select * from read_csv(
        'floor_input/technicians/*.csv', all_varchar = true, header = true, filename = true
    )
),

typed as (
    select
        nullif(trim(technician_id), '') as technician_id,
        cast(valid_from as date) as valid_from,
        nullif(trim(team_id), '') as team_id,
        timezone(getvariable('organisation_timezone'), cast(updated_at as timestamptz)) as updated_at,
        filename
    from source
),

newest as (
    select *
    from typed
    qualify row_number() over (
        partition by technician_id, valid_from
        order by updated_at desc nulls last, filename desc
    ) = 1
)

select
    technician_id,
    valid_from,
    coalesce(
        lead(valid_from) over (partition by technician_id order by valid_from),
        cast('9999-12-31' as date)
    ) as valid_to,
    row_number() over (partition by technician_id order by valid_from) as version_number,
    team_id
from newest;

create or replace temp table calendar as
select
    calendar_date,
    is_workday,
    coalesce(
        sum(case when is_workday then getvariable('workday_end_seconds') - getvariable('workday_start_seconds') else 0 end) over (
            order by calendar_date rows between unbounded preceding and 1 preceding
        ),
        0
    ) as cum_work_seconds_before
from read_parquet('floor_input/work_calendar.parquet');

create or replace temp table sla_targets as
select priority, cast(target_hours as double) as target_hours, hours_basis
from read_csv('floor_input/sla_targets.csv', header = true);

-- Business seconds "clock" at a local timestamp (the working day, e.g. 09:00-18:00 = 32400..64800 s of the day).
create or replace temp macro business_seconds(ts, cum_before, is_workday) as
    cum_before + case
        when is_workday then least(
            greatest(epoch(ts) - epoch(date_trunc('day', ts)), getvariable('workday_start_seconds')),
            getvariable('workday_end_seconds')
        ) - getvariable('workday_start_seconds')
        else 0
    end;

-- CSV timestamps: naive local wall time or ISO-8601 with an offset -> local wall time.
create or replace temp macro local_ts(text_value) as
    timezone(getvariable('organisation_timezone'), cast(nullif(text_value, '') as timestamptz));

-- ------------------------------------------------------------------ tickets
create or replace temp table tickets as
with csv_rows as (
    select
        nullif(trim(ticket_id), '') as ticket_id,
        local_ts(created_at) as created_at,
        local_ts(first_response_at) as first_response_at,
        local_ts(resolved_at) as resolved_at,
        local_ts(closed_at) as closed_at,
        local_ts(updated_at) as updated_at,
        nullif(lower(trim(status)), '') as status,
        nullif(lower(trim(service_type)), '') as service_type,
        nullif(upper(trim(priority)), '') as priority,
        nullif(trim(technician_id), '') as technician_id,
        cast(onsite_visits as bigint) as onsite_visits,
        cast(first_time_fix as boolean) as first_time_fix,
        cast(reopened_count as bigint) as reopened_count,
        filename,
        cast(0 as bigint) as file_row_number
    from (
        -- with no CSV file read_csv(allow_empty) has no columns: the typed empty row gives them
        select * from read_csv(
            'landing/tickets/*.csv', all_varchar = true, header = true, filename = true, allow_empty = true,
            columns = {
                'ticket_id': 'varchar', 'created_at': 'varchar', 'first_response_at': 'varchar',
                'resolved_at': 'varchar', 'closed_at': 'varchar', 'updated_at': 'varchar', 'status': 'varchar',
                'service_type': 'varchar', 'priority': 'varchar', 'channel': 'varchar',
                'technician_id': 'varchar', 'customer_id': 'varchar', 'product_id': 'varchar',
                'onsite_visits': 'varchar', 'first_time_fix': 'varchar', 'reopened_count': 'varchar'
            }
        )
        union all by name
        select
            cast(null as varchar) as ticket_id,
            cast(null as varchar) as created_at,
            cast(null as varchar) as first_response_at,
            cast(null as varchar) as resolved_at,
            cast(null as varchar) as closed_at,
            cast(null as varchar) as updated_at,
            cast(null as varchar) as status,
            cast(null as varchar) as service_type,
            cast(null as varchar) as priority,
            cast(null as varchar) as channel,
            cast(null as varchar) as technician_id,
            cast(null as varchar) as customer_id,
            cast(null as varchar) as product_id,
            cast(null as varchar) as onsite_visits,
            cast(null as varchar) as first_time_fix,
            cast(null as varchar) as reopened_count,
            cast(null as varchar) as filename
        where false
    )
),

parquet_source as (
    select * from read_parquet(
        'landing/tickets/*.parquet', filename = true, file_row_number = true, allow_empty = true
    )
    union all by name
    select
        cast(null as varchar) as ticket_id,
        cast(null as timestamp) as created_at,
        cast(null as timestamp) as first_response_at,
        cast(null as timestamp) as resolved_at,
        cast(null as timestamp) as closed_at,
        cast(null as timestamp) as updated_at,
        cast(null as varchar) as status,
        cast(null as varchar) as service_type,
        cast(null as varchar) as priority,
        cast(null as varchar) as technician_id,
        cast(null as bigint) as onsite_visits,
        cast(null as boolean) as first_time_fix,
        cast(null as bigint) as reopened_count,
        cast(null as varchar) as filename,
        cast(null as bigint) as file_row_number
    where false
),

parquet_rows as (
    select
        nullif(trim(ticket_id), '') as ticket_id,
        cast(created_at as timestamp) as created_at,
        cast(first_response_at as timestamp) as first_response_at,
        cast(resolved_at as timestamp) as resolved_at,
        cast(closed_at as timestamp) as closed_at,
        cast(updated_at as timestamp) as updated_at,
        nullif(lower(trim(status)), '') as status,
        nullif(lower(trim(service_type)), '') as service_type,
        nullif(upper(trim(priority)), '') as priority,
        nullif(trim(technician_id), '') as technician_id,
        cast(onsite_visits as bigint) as onsite_visits,
        cast(first_time_fix as boolean) as first_time_fix,
        cast(reopened_count as bigint) as reopened_count,
        filename,
        cast(file_row_number as bigint) as file_row_number
    from parquet_source
),

valid_rows as (
    select *
    from (select * from csv_rows union all select * from parquet_rows)
    where ticket_id is not null
        and created_at is not null
        and updated_at is not null
        and status is not null
        and service_type is not null
        and status in ('open', 'in_progress', 'resolved', 'closed', 'cancelled')
        and service_type in ('repair', 'maintenance', 'technical_support', 'installation')
        and priority in ('P1', 'P2', 'P3', 'P4')
        and (onsite_visits is null or onsite_visits between 0 and 100)
        and (reopened_count is null or reopened_count between 0 and 100)
        and technician_id in (select technician_id from roster)
        and (first_response_at is null or first_response_at >= created_at)
        and (resolved_at is null or resolved_at >= created_at)
        and (closed_at is null or resolved_at is null or closed_at >= resolved_at)
        and (status not in ('resolved', 'closed') or resolved_at is not null)
),

newest as (
    select *
    from valid_rows
    qualify row_number() over (
        partition by ticket_id
        order by updated_at desc nulls last, filename desc, file_row_number desc
    ) = 1
)

select
    newest.technician_id,
    cast(newest.created_at as date) as created_date,
    cast(newest.resolved_at as date) as resolved_date,
    newest.status in ('resolved', 'closed') and newest.resolved_at is not null as is_resolved,
    newest.service_type = 'repair' as is_repair,
    coalesce(newest.first_time_fix, newest.onsite_visits <= 1) as is_first_time_fix,
    coalesce(newest.reopened_count, 0) > 0 as is_reopened,
    (epoch(newest.first_response_at) - epoch(newest.created_at)) / 3600.0 as first_response_hours,
    (business_seconds(newest.first_response_at, response_day.cum_work_seconds_before, response_day.is_workday)
        - business_seconds(newest.created_at, created_day.cum_work_seconds_before, created_day.is_workday))
        / 3600.0 as first_response_business_hours,
    (epoch(newest.resolved_at) - epoch(newest.created_at)) / 3600.0 as handling_hours_raw,
    (business_seconds(newest.resolved_at, resolved_day.cum_work_seconds_before, resolved_day.is_workday)
        - business_seconds(newest.created_at, created_day.cum_work_seconds_before, created_day.is_workday))
        / 3600.0 as handling_business_hours_raw,
    sla_targets.target_hours as sla_target_hours,
    sla_targets.hours_basis as sla_hours_basis
from newest
left join calendar as created_day
    on cast(newest.created_at as date) = created_day.calendar_date
left join calendar as response_day
    on cast(newest.first_response_at as date) = response_day.calendar_date
left join calendar as resolved_day
    on cast(newest.resolved_at as date) = resolved_day.calendar_date
left join sla_targets
    on newest.priority = sla_targets.priority;

-- ------------------------------------------------------------------ complaints
create or replace temp table complaints as
with csv_rows as (
    select
        nullif(trim(complaint_id), '') as complaint_id,
        local_ts(received_at) as received_at,
        local_ts(accepted_at) as accepted_at,
        local_ts(resolved_at) as resolved_at,
        local_ts(updated_at) as updated_at,
        nullif(trim(technician_id), '') as technician_id,
        nullif(lower(trim(category)), '') as category,
        nullif(lower(trim(status)), '') as status,
        cast(resolution_confirmed as boolean) as resolution_confirmed,
        filename,
        cast(0 as bigint) as file_row_number
    from (
        -- with no CSV file read_csv(allow_empty) has no columns: the typed empty row gives them
        select * from read_csv(
            'landing/complaints/*.csv', all_varchar = true, header = true, filename = true, allow_empty = true,
            columns = {
                'complaint_id': 'varchar', 'received_at': 'varchar', 'accepted_at': 'varchar',
                'resolved_at': 'varchar', 'updated_at': 'varchar', 'ticket_id': 'varchar',
                'customer_id': 'varchar', 'technician_id': 'varchar', 'category': 'varchar',
                'severity': 'varchar', 'status': 'varchar', 'resolution_confirmed': 'varchar'
            }
        )
        union all by name
        select
            cast(null as varchar) as complaint_id,
            cast(null as varchar) as received_at,
            cast(null as varchar) as accepted_at,
            cast(null as varchar) as resolved_at,
            cast(null as varchar) as updated_at,
            cast(null as varchar) as ticket_id,
            cast(null as varchar) as customer_id,
            cast(null as varchar) as technician_id,
            cast(null as varchar) as category,
            cast(null as varchar) as severity,
            cast(null as varchar) as status,
            cast(null as varchar) as resolution_confirmed,
            cast(null as varchar) as filename
        where false
    )
),

parquet_source as (
    select * from read_parquet(
        'landing/complaints/*.parquet', filename = true, file_row_number = true, allow_empty = true
    )
    union all by name
    select
        cast(null as varchar) as complaint_id,
        cast(null as timestamp) as received_at,
        cast(null as timestamp) as accepted_at,
        cast(null as timestamp) as resolved_at,
        cast(null as timestamp) as updated_at,
        cast(null as varchar) as technician_id,
        cast(null as varchar) as category,
        cast(null as varchar) as status,
        cast(null as boolean) as resolution_confirmed,
        cast(null as varchar) as filename,
        cast(null as bigint) as file_row_number
    where false
),

parquet_rows as (
    select
        nullif(trim(complaint_id), '') as complaint_id,
        cast(received_at as timestamp) as received_at,
        cast(accepted_at as timestamp) as accepted_at,
        cast(resolved_at as timestamp) as resolved_at,
        cast(updated_at as timestamp) as updated_at,
        nullif(trim(technician_id), '') as technician_id,
        nullif(lower(trim(category)), '') as category,
        nullif(lower(trim(status)), '') as status,
        cast(resolution_confirmed as boolean) as resolution_confirmed,
        filename,
        cast(file_row_number as bigint) as file_row_number
    from parquet_source
),

valid_rows as (
    select *
    from (select * from csv_rows union all select * from parquet_rows)
    where complaint_id is not null
        and received_at is not null
        and updated_at is not null
        and category in ('attitude', 'quality', 'timeliness', 'price', 'other')
        and status in ('received', 'accepted', 'resolved', 'closed', 'withdrawn')
        and technician_id in (select technician_id from roster)
        and (accepted_at is null or accepted_at >= received_at)
        and (resolved_at is null or resolved_at >= received_at)
),

newest as (
    select *
    from valid_rows
    qualify row_number() over (
        partition by complaint_id
        order by updated_at desc nulls last, filename desc, file_row_number desc
    ) = 1
)

select
    newest.technician_id,
    cast(newest.received_at as date) as received_date,
    (epoch(newest.accepted_at) - epoch(newest.received_at)) / 3600.0 as acceptance_hours,
    (business_seconds(newest.accepted_at, accepted_day.cum_work_seconds_before, accepted_day.is_workday)
        - business_seconds(newest.received_at, received_day.cum_work_seconds_before, received_day.is_workday))
        / 3600.0 as acceptance_business_hours,
    (newest.resolved_at is not null or newest.status in ('resolved', 'closed'))
        and coalesce(newest.resolution_confirmed, false) as is_problem_resolved
from newest
left join calendar as received_day
    on cast(newest.received_at as date) = received_day.calendar_date
left join calendar as accepted_day
    on cast(newest.accepted_at as date) = accepted_day.calendar_date;

-- ------------------------------------------------------------------ survey responses (no version column: the later file wins)
create or replace temp table responses as
with csv_rows as (
    select
        nullif(trim(response_id), '') as response_id,
        nullif(trim(technician_id), '') as technician_id,
        local_ts(sent_at) as sent_at,
        local_ts(responded_at) as responded_at,
        cast(overall_score as bigint) as overall_score,
        cast(attitude_score as bigint) as attitude_score,
        cast(technical_score as bigint) as technical_score,
        cast(nps as bigint) as nps,
        nullif(trim(ticket_id), '') as ticket_id,
        filename,
        cast(0 as bigint) as file_row_number
    from (
        -- with no CSV file read_csv(allow_empty) has no columns: the typed empty row gives them
        select * from read_csv(
            'landing/surveys/*.csv', all_varchar = true, header = true, filename = true, allow_empty = true,
            columns = {
                'response_id': 'varchar', 'ticket_id': 'varchar', 'technician_id': 'varchar',
                'customer_id': 'varchar', 'sent_at': 'varchar', 'responded_at': 'varchar',
                'overall_score': 'varchar', 'attitude_score': 'varchar', 'technical_score': 'varchar',
                'timeliness_score': 'varchar', 'nps': 'varchar', 'comment': 'varchar'
            }
        )
        union all by name
        select
            cast(null as varchar) as response_id,
            cast(null as varchar) as ticket_id,
            cast(null as varchar) as technician_id,
            cast(null as varchar) as customer_id,
            cast(null as varchar) as sent_at,
            cast(null as varchar) as responded_at,
            cast(null as varchar) as overall_score,
            cast(null as varchar) as attitude_score,
            cast(null as varchar) as technical_score,
            cast(null as varchar) as timeliness_score,
            cast(null as varchar) as nps,
            cast(null as varchar) as comment,
            cast(null as varchar) as filename
        where false
    )
),

parquet_source as (
    select * from read_parquet(
        'landing/surveys/*.parquet', filename = true, file_row_number = true, allow_empty = true
    )
    union all by name
    select
        cast(null as varchar) as response_id,
        cast(null as varchar) as technician_id,
        cast(null as timestamp) as sent_at,
        cast(null as timestamp) as responded_at,
        cast(null as bigint) as overall_score,
        cast(null as bigint) as attitude_score,
        cast(null as bigint) as technical_score,
        cast(null as bigint) as nps,
        cast(null as varchar) as ticket_id,
        cast(null as varchar) as filename,
        cast(null as bigint) as file_row_number
    where false
),

parquet_rows as (
    select
        nullif(trim(response_id), '') as response_id,
        nullif(trim(technician_id), '') as technician_id,
        cast(sent_at as timestamp) as sent_at,
        cast(responded_at as timestamp) as responded_at,
        cast(overall_score as bigint) as overall_score,
        cast(attitude_score as bigint) as attitude_score,
        cast(technical_score as bigint) as technical_score,
        cast(nps as bigint) as nps,
        nullif(trim(ticket_id), '') as ticket_id,
        filename,
        cast(file_row_number as bigint) as file_row_number
    from parquet_source
),

valid_rows as (
    select *
    from (select * from csv_rows union all select * from parquet_rows)
    where response_id is not null
        and ticket_id is not null
        and responded_at is not null
        and overall_score between 1 and 5
        and (attitude_score is null or attitude_score between 1 and 5)
        and (technical_score is null or technical_score between 1 and 5)
        and (nps is null or nps between 0 and 10)
        and technician_id in (select technician_id from roster)
        and (sent_at is null or responded_at >= sent_at)
),

newest as (
    select *
    from valid_rows
    qualify row_number() over (
        partition by response_id
        order by filename desc, file_row_number desc
    ) = 1
)

select
    technician_id,
    cast(responded_at as date) as responded_date,
    overall_score,
    attitude_score,
    technical_score,
    overall_score >= 4 as is_satisfied,
    case
        when nps is null then null
        when nps >= 9 then 'promoter'
        when nps >= 7 then 'passive'
        else 'detractor'
    end as nps_bucket
from newest;

-- ------------------------------------------------------------------ supervisor reviews (CSV at every tier)
create or replace temp table reviews as
with source as (
    select * from read_csv(
        'landing/supervisor_reviews/*.csv', all_varchar = true, header = true, filename = true,
        allow_empty = true,
        columns = {
            'review_id': 'varchar', 'technician_id': 'varchar', 'period': 'varchar',
            'reviewer_id': 'varchar', 'score': 'varchar', 'comment': 'varchar', 'reviewed_at': 'varchar'
        }
    )
),

valid_rows as (
    select
        nullif(trim(review_id), '') as review_id,
        nullif(trim(technician_id), '') as technician_id,
        cast(strptime(left(trim(period), 7), '%Y-%m') as date) as period_start,
        cast(score as double) as score,
        filename
    from source
    where nullif(trim(review_id), '') is not null
        and nullif(trim(reviewer_id), '') is not null
        and nullif(trim(period), '') is not null
        and cast(score as double) between 1 and 5
        and nullif(trim(technician_id), '') in (select technician_id from roster)
)

select *
from valid_rows
qualify row_number() over (partition by review_id order by filename desc) = 1;

-- ------------------------------------------------------------------ kpi_technician_monthly
create or replace table kpi_technician_monthly as
with resolved_tickets as (
    select
        technician_id as subject_id,
        cast(date_trunc('month', resolved_date) as date) as period_start,
        count(*) as tickets_resolved,
        avg(handling_hours_raw) as avg_handling_time_hours,
        avg(handling_business_hours_raw) as avg_handling_time_business_hours,
        count(handling_hours_raw) as avg_handling_time_n,
        avg(case when is_repair then handling_hours_raw end) as mttr_hours,
        avg(case when is_repair then handling_business_hours_raw end) as mttr_business_hours,
        count(case when is_repair then handling_hours_raw end) as mttr_n,
        sum(
            case
                when sla_target_hours is null then 0
                when sla_hours_basis = 'business' and handling_business_hours_raw <= sla_target_hours then 1
                when sla_hours_basis <> 'business' and handling_hours_raw <= sla_target_hours then 1
                else 0
            end
        ) as sla_met_count,
        count(
            case
                when sla_target_hours is null then null
                when sla_hours_basis = 'business' then handling_business_hours_raw
                else handling_hours_raw
            end
        ) as sla_attainment_n,
        sum(case when is_repair and is_first_time_fix then 1 else 0 end) as first_time_fix_count,
        count(case when is_repair then is_first_time_fix end) as first_time_fix_rate_n,
        sum(case when is_reopened then 1 else 0 end) as reopened_count
    from tickets
    where is_resolved
        and technician_id is not null
    group by all
),

responded_tickets as (
    select
        technician_id as subject_id,
        cast(date_trunc('month', created_date) as date) as period_start,
        avg(first_response_hours) as first_response_time_hours,
        avg(first_response_business_hours) as first_response_time_business_hours,
        count(*) as first_response_time_n
    from tickets
    where first_response_hours is not null
        and technician_id is not null
    group by all
),

survey_results as (
    select
        technician_id as subject_id,
        cast(date_trunc('month', responded_date) as date) as period_start,
        sum(case when is_satisfied then 1 else 0 end) as satisfied_count,
        count(overall_score) as csat_n,
        avg(cast(overall_score as double)) as customer_rating,
        sum(case when nps_bucket = 'promoter' then 1 else 0 end) as nps_promoters,
        sum(case when nps_bucket = 'passive' then 1 else 0 end) as nps_passives,
        sum(case when nps_bucket = 'detractor' then 1 else 0 end) as nps_detractors,
        count(nps_bucket) as nps_n,
        avg(cast(attitude_score as double)) as service_attitude,
        count(attitude_score) as service_attitude_n,
        avg(cast(technical_score as double)) as technical_level,
        count(technical_score) as technical_level_n
    from responses
    where technician_id is not null
    group by all
),

complaint_results as (
    select
        technician_id as subject_id,
        cast(date_trunc('month', received_date) as date) as period_start,
        count(*) as complaints_received,
        avg(acceptance_hours) as complaint_acceptance_time_hours,
        avg(acceptance_business_hours) as complaint_acceptance_time_business_hours,
        count(acceptance_hours) as complaint_acceptance_time_n,
        sum(case when is_problem_resolved then 1 else 0 end) as problems_resolved
    from complaints
    where technician_id is not null
    group by all
),

review_results as (
    select
        technician_id as subject_id,
        period_start,
        avg(score) as supervisor_review,
        count(score) as supervisor_review_n
    from reviews
    where technician_id is not null
    group by all
),

periods as (
    select
        subject_id,
        period_start,
        cast(period_start + interval 1 month - interval 1 day as date) as period_end,
        strftime(period_start, '%Y-%m') as period_label
    from (
        select subject_id, period_start from resolved_tickets
        union
        select subject_id, period_start from responded_tickets
        union
        select subject_id, period_start from survey_results
        union
        select subject_id, period_start from complaint_results
        union
        select subject_id, period_start from review_results
    )
)

select
    periods.subject_id as technician_id,
    roster.team_id,
    periods.period_start,
    periods.period_end,
    periods.period_label,
    case when s.csat_n > 0 then 1.0 * s.satisfied_count / s.csat_n end as csat,
    coalesce(s.csat_n, 0) as csat_n,
    s.customer_rating,
    coalesce(s.csat_n, 0) as customer_rating_n,
    case when s.nps_n > 0 then 100.0 * (s.nps_promoters - s.nps_detractors) / s.nps_n end as nps,
    coalesce(s.nps_n, 0) as nps_n,
    coalesce(s.nps_promoters, 0) as nps_promoters,
    coalesce(s.nps_passives, 0) as nps_passives,
    coalesce(s.nps_detractors, 0) as nps_detractors,
    r.avg_handling_time_hours,
    r.avg_handling_time_business_hours,
    coalesce(r.avg_handling_time_n, 0) as avg_handling_time_n,
    r.mttr_hours,
    r.mttr_business_hours,
    coalesce(r.mttr_n, 0) as mttr_n,
    f.first_response_time_hours,
    f.first_response_time_business_hours,
    coalesce(f.first_response_time_n, 0) as first_response_time_n,
    case when r.sla_attainment_n > 0 then 1.0 * r.sla_met_count / r.sla_attainment_n end as sla_attainment,
    coalesce(r.sla_attainment_n, 0) as sla_attainment_n,
    s.service_attitude,
    coalesce(s.service_attitude_n, 0) as service_attitude_n,
    s.technical_level,
    coalesce(s.technical_level_n, 0) as technical_level_n,
    case when r.first_time_fix_rate_n > 0 then 1.0 * r.first_time_fix_count / r.first_time_fix_rate_n end
        as first_time_fix_rate,
    coalesce(r.first_time_fix_rate_n, 0) as first_time_fix_rate_n,
    case when r.tickets_resolved > 0 then 1.0 * r.reopened_count / r.tickets_resolved end as reopen_rate,
    coalesce(r.tickets_resolved, 0) as reopen_rate_n,
    c.complaint_acceptance_time_hours,
    c.complaint_acceptance_time_business_hours,
    coalesce(c.complaint_acceptance_time_n, 0) as complaint_acceptance_time_n,
    case when c.complaints_received > 0 then 1.0 * c.problems_resolved / c.complaints_received end
        as problem_resolution_rate,
    coalesce(c.complaints_received, 0) as problem_resolution_rate_n,
    case when r.tickets_resolved > 0 then 100.0 * coalesce(c.complaints_received, 0) / r.tickets_resolved end
        as complaint_rate,
    coalesce(r.tickets_resolved, 0) as complaint_rate_n,
    v.supervisor_review,
    coalesce(v.supervisor_review_n, 0) as supervisor_review_n,
    coalesce(r.tickets_resolved, 0) as tickets_resolved,
    coalesce(c.complaints_received, 0) as complaints_received
from periods
left join resolved_tickets as r
    on periods.subject_id = r.subject_id
    and periods.period_start = r.period_start
left join responded_tickets as f
    on periods.subject_id = f.subject_id
    and periods.period_start = f.period_start
left join survey_results as s
    on periods.subject_id = s.subject_id
    and periods.period_start = s.period_start
left join complaint_results as c
    on periods.subject_id = c.subject_id
    and periods.period_start = c.period_start
left join review_results as v
    on periods.subject_id = v.subject_id
    and periods.period_start = v.period_start
left join roster
    on periods.subject_id = roster.technician_id
    and (roster.version_number = 1 or periods.period_end >= roster.valid_from)
    and periods.period_end < roster.valid_to;

select count(*) as kpi_technician_monthly_rows from kpi_technician_monthly;
