{#-
Staging SELECTs of the three big event feeds: the newest version of each record, renamed, cast and cleaned.
Each macro is the body of its staging view (models/staging/<feed>/) AND, on an incremental build, the input
of its fact restricted to `keys_sql`, a query of record ids (macros/incremental.sql, fact_keys_to_refresh).
The restriction is applied to raw BEFORE the versions are ranked: a nightly build ranks only the versions of
the records it re-derives, not every version in raw.
-#}

{#- The raw rows of `feed`, all of them or only those of the record ids `keys_sql` returns. -#}
{% macro event_versions_source(feed, key, keys_sql=none) -%}
    select * from {{ source('raw', feed) }}
    {%- if keys_sql %}
    where {{ clean_text(key) }} in ({{ keys_sql }})
    {%- endif %}
{%- endmacro %}

{% macro stg_tickets__tickets_select(keys_sql=none) -%}
    with source as (
        {{ event_versions_source('tickets', 'ticket_id', keys_sql) }}
    ),

    ranked as (
        select
            *,
            {{ newest_version_rank(['ticket_id'], 'updated_at') }} as version_rank
        from source
    ),

    renamed as (
        select
            {{ clean_text('ticket_id') }} as ticket_id,
            {{ clean_text('technician_id') }} as technician_id,
            {{ clean_text('customer_id') }} as customer_id,
            {{ clean_text('product_id') }} as product_id,
            {{ clean_code('status') }} as status,
            {{ clean_code('service_type') }} as service_type,
            upper(trim(priority)) as priority,
            {{ clean_code('channel') }} as channel,
            {{ to_local_ts('created_at') }} as created_at,
            {{ to_local_ts('first_response_at') }} as first_response_at,
            {{ to_local_ts('resolved_at') }} as resolved_at,
            {{ to_local_ts('closed_at') }} as closed_at,
            {{ to_local_ts('updated_at') }} as updated_at,
            cast(onsite_visits as integer) as onsite_visits,
            first_time_fix,
            cast(reopened_count as integer) as reopened_count,
            {{ to_local_ts('sla_due_at') }} as sla_due_at,
            _loaded_at as loaded_at
        from ranked
        where version_rank = 1
    )

    select * from renamed
{%- endmacro %}

{% macro stg_surveys__responses_select(keys_sql=none) -%}
    with source as (
        {{ event_versions_source('surveys', 'response_id', keys_sql) }}
    ),

    ranked as (
        select
            *,
            {{ newest_version_rank(['response_id']) }} as version_rank
        from source
    ),

    renamed as (
        select
            {{ clean_text('response_id') }} as response_id,
            {{ clean_text('ticket_id') }} as ticket_id,
            {{ clean_text('technician_id') }} as technician_id,
            {{ clean_text('customer_id') }} as customer_id,
            {{ to_local_ts('sent_at') }} as sent_at,
            {{ to_local_ts('responded_at') }} as responded_at,
            cast(overall_score as integer) as overall_score,
            cast(attitude_score as integer) as attitude_score,
            cast(technical_score as integer) as technical_score,
            cast(timeliness_score as integer) as timeliness_score,
            cast(nps as integer) as nps_score,
            {{ clean_text('comment') }} as comment,
            _loaded_at as loaded_at
        from ranked
        where version_rank = 1
    )

    {#- the comment is free text: scrubbed of personal data before it leaves raw (macros/privacy.sql) -#}
    {{ select_with_scrubbed_free_text('renamed', 'response_id', 'comment') }}
{%- endmacro %}

{% macro stg_complaints__complaints_select(keys_sql=none) -%}
    with source as (
        {{ event_versions_source('complaints', 'complaint_id', keys_sql) }}
    ),

    ranked as (
        select
            *,
            {{ newest_version_rank(['complaint_id'], 'updated_at') }} as version_rank
        from source
    ),

    renamed as (
        select
            {{ clean_text('complaint_id') }} as complaint_id,
            {{ clean_text('ticket_id') }} as ticket_id,
            {{ clean_text('customer_id') }} as customer_id,
            {{ clean_text('technician_id') }} as technician_id,
            {{ clean_code('category') }} as category,
            {{ clean_code('severity') }} as severity,
            {{ clean_code('status') }} as status,
            resolution_confirmed,
            {{ to_local_ts('received_at') }} as received_at,
            {{ to_local_ts('accepted_at') }} as accepted_at,
            {{ to_local_ts('resolved_at') }} as resolved_at,
            {{ to_local_ts('updated_at') }} as updated_at,
            _loaded_at as loaded_at
        from ranked
        where version_rank = 1
    )

    select * from renamed
{%- endmacro %}
