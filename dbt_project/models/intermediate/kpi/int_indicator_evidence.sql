{{ config(materialized='view') }}
{#- The facts behind every indicator value (audit trail): filter by indicator_code, technician_id or
    team_id and activity_date within the period to list the rows a KPI value was computed from.
    A view (about 8 rows per ticket if stored). The rules are the `evidence` of each indicator of the
    catalogue (var('indicators'), dbt_project.yml; macros/kpi.sql indicator_evidence_rules), which the serving
    file's appraisal_evidence view is rendered from as well. -#}
{%- set facts = {
    'fct_service_tickets': ref('fct_service_tickets'),
    'fct_survey_responses': ref('fct_survey_responses'),
    'fct_complaints': ref('fct_complaints'),
    'fct_supervisor_reviews': ref('fct_supervisor_reviews'),
} %}
{%- set sources = var('evidence_sources') %}
with evidence as (
    {%- for rule in indicator_evidence_rules() %}
    {%- set source = sources[rule.fact] %}
    select
        '{{ rule.indicator_code }}' as indicator_code,
        technician_id,
        team_id,
        {{ rule.activity_date }} as activity_date,
        '{{ source.source_type }}' as source_type,
        {{ source.source_id }} as source_id
    from {{ facts[rule.fact] }}
    where {{ rule.condition }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
)

select * from evidence
