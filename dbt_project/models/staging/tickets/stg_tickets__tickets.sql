{#- Body in macros/staging_events.sql (stg_tickets__tickets_select): the same SELECT feeds the fact's
    incremental builds, restricted to the records they re-derive. -#}
{{ stg_tickets__tickets_select() }}
