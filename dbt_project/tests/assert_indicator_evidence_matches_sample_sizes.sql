{#- The audit trail explains every monthly value: the facts listed in int_indicator_evidence for a
    subject, month and indicator are exactly as many as the value's sample_size (complaint_rate: its
    sample is the resolved tickets, the complaints are the numerator). Returns the mismatches.
    Scope: every month, or (nightly runs of the orchestration) the months recomputed since the current
    publication, whose months all passed this test (unverified_from_month in macros/verified_scope.sql): the
    evidence is ~8 rows per fact, ~80 M rows at tier L, too many to group in every nightly. -#}
{%- set check_from = unverified_from_month() %}
with evidence as (
    select * from {{ ref('int_indicator_evidence') }}
    {%- if check_from is not none %}
    where activity_date >= {{ date_literal(check_from) }}
    {%- endif %}
),

values_monthly as (
    select * from {{ ref('int_indicator_values') }}
    where period_type = 'month'
        and (hours_basis is null or hours_basis = 'calendar')
        and sample_size > 0
        {%- if check_from is not none %}
        and period_start >= {{ date_literal(check_from) }}
        {%- endif %}
),

evidence_counts as (
    select
        'technician' as subject_type,
        technician_id as subject_id,
        indicator_code,
        {{ period_start('month', 'activity_date') }} as period_start,
        count(*) as evidence_count
    from evidence
    where not (indicator_code = 'complaint_rate' and source_type = 'complaint')
    group by
        technician_id,
        indicator_code,
        {{ period_start('month', 'activity_date') }}

    union all

    select
        'team' as subject_type,
        team_id as subject_id,
        indicator_code,
        {{ period_start('month', 'activity_date') }} as period_start,
        count(*) as evidence_count
    from evidence
    where not (indicator_code = 'complaint_rate' and source_type = 'complaint')
        and team_id is not null
    group by
        team_id,
        indicator_code,
        {{ period_start('month', 'activity_date') }}
),

compared as (
    select
        coalesce(values_monthly.subject_type, evidence_counts.subject_type) as subject_type,
        coalesce(values_monthly.subject_id, evidence_counts.subject_id) as subject_id,
        coalesce(values_monthly.indicator_code, evidence_counts.indicator_code) as indicator_code,
        coalesce(values_monthly.period_start, evidence_counts.period_start) as period_start,
        values_monthly.sample_size,
        evidence_counts.evidence_count
    from values_monthly
    full outer join evidence_counts
        on values_monthly.subject_type = evidence_counts.subject_type
        and values_monthly.subject_id = evidence_counts.subject_id
        and values_monthly.indicator_code = evidence_counts.indicator_code
        and values_monthly.period_start = evidence_counts.period_start
)

select *
from compared
where coalesce(sample_size, 0) <> coalesce(evidence_count, 0)
