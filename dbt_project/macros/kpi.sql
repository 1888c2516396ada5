{#-
KPI marts (DESIGN §4). One macro builds kpi_<subject>_<grain> so the six marts are thin and share one
column list. Every indicator is computed from the facts of the whole period (never from monthly or
per-technician values): one grouped pass per fact table, then a join of the small aggregates.

Period attribution (local dates): resolution indicators and the complaint-rate denominator -> resolved_date;
first_response_time -> created_date; survey indicators -> responded_date; complaint indicators and the
complaint-rate numerator -> received_date; supervisor_review -> the reviewed month.
Team attribution: the facts carry the technician's team at the event (SCD2), team marts group by it.
Technician marts report team_id = the technician's team on the last day of the period.
-#}

{#- The fixed indicator list: code and kind (duration indicators have _hours and _business_hours). -#}
{% macro kpi_indicators() -%}
    {{ return([
        {'code': 'csat', 'is_duration': false},
        {'code': 'customer_rating', 'is_duration': false},
        {'code': 'nps', 'is_duration': false},
        {'code': 'avg_handling_time', 'is_duration': true},
        {'code': 'mttr', 'is_duration': true},
        {'code': 'first_response_time', 'is_duration': true},
        {'code': 'sla_attainment', 'is_duration': false},
        {'code': 'service_attitude', 'is_duration': false},
        {'code': 'technical_level', 'is_duration': false},
        {'code': 'first_time_fix_rate', 'is_duration': false},
        {'code': 'reopen_rate', 'is_duration': false},
        {'code': 'complaint_acceptance_time', 'is_duration': true},
        {'code': 'problem_resolution_rate', 'is_duration': false},
        {'code': 'complaint_rate', 'is_duration': false},
        {'code': 'supervisor_review', 'is_duration': false},
    ]) }}
{%- endmacro %}

{% macro kpi_ratio(numerator, denominator, scale='1.0') -%}
    case when {{ denominator }} > 0 then {{ scale }} * {{ numerator }} / {{ denominator }} end
{%- endmacro %}

{% macro kpi_mart(subject, grain) -%}
{%- if subject not in ('technician', 'team') -%}
    {{ exceptions.raise_compiler_error("kpi_mart subject must be technician or team, not " ~ subject) }}
{%- endif -%}
{%- set key = 'technician_id' if subject == 'technician' else 'team_id' -%}
{{ period_mart_config('period_start', grain) }}
{%- set starts = touched_period_starts(grain) %}
with tickets as (
    select * from {{ ref('fct_service_tickets') }}
),

complaints as (
    select * from {{ ref('fct_complaints') }}
),

responses as (
    select * from {{ ref('fct_survey_responses') }}
),

reviews as (
    select * from {{ ref('fct_supervisor_reviews') }}
),
{%- if subject == 'technician' %}

technicians as (
    select * from {{ ref('dim_technicians') }}
),
{%- endif %}

resolved_tickets as (
    select
        {{ key }} as subject_id,
        {{ period_start(grain, 'resolved_date') }} as period_start,
        count(*) as tickets_resolved,
        {{ stable_avg('handling_hours') }} as avg_handling_time_hours,
        {{ stable_avg('handling_business_hours') }} as avg_handling_time_business_hours,
        count(handling_hours) as avg_handling_time_n,
        {{ stable_avg('case when is_repair then handling_hours end') }} as mttr_hours,
        {{ stable_avg('case when is_repair then handling_business_hours end') }} as mttr_business_hours,
        count(case when is_repair then handling_hours end) as mttr_n,
        sum(case when is_sla_met then 1 else 0 end) as sla_met_count,
        count(is_sla_met) as sla_attainment_n,
        sum(case when is_repair and is_first_time_fix then 1 else 0 end) as first_time_fix_count,
        count(case when is_repair then is_first_time_fix end) as first_time_fix_rate_n,
        sum(case when is_reopened then 1 else 0 end) as reopened_count
    from tickets
    where is_resolved
        and {{ key }} is not null
        and {{ touched_filter(grain, 'resolved_date', starts) }}
    group by
        {{ key }},
        {{ period_start(grain, 'resolved_date') }}
),

responded_tickets as (
    select
        {{ key }} as subject_id,
        {{ period_start(grain, 'created_date') }} as period_start,
        {{ stable_avg('first_response_hours') }} as first_response_time_hours,
        {{ stable_avg('first_response_business_hours') }} as first_response_time_business_hours,
        count(*) as first_response_time_n
    from tickets
    where first_response_hours is not null
        and {{ key }} is not null
        and {{ touched_filter(grain, 'created_date', starts) }}
    group by
        {{ key }},
        {{ period_start(grain, 'created_date') }}
),

survey_results as (
    select
        {{ key }} as subject_id,
        {{ period_start(grain, 'responded_date') }} as period_start,
        sum(case when is_satisfied then 1 else 0 end) as satisfied_count,
        count(overall_score) as csat_n,
        {{ stable_avg('cast(overall_score as double)') }} as customer_rating,
        sum(case when nps_bucket = 'promoter' then 1 else 0 end) as nps_promoters,
        sum(case when nps_bucket = 'passive' then 1 else 0 end) as nps_passives,
        sum(case when nps_bucket = 'detractor' then 1 else 0 end) as nps_detractors,
        count(nps_bucket) as nps_n,
        {{ stable_avg('cast(attitude_score as double)') }} as service_attitude,
        count(attitude_score) as service_attitude_n,
        {{ stable_avg('cast(technical_score as double)') }} as technical_level,
        count(technical_score) as technical_level_n
    from responses
    where {{ key }} is not null
        and {{ touched_filter(grain, 'responded_date', starts) }}
    group by
        {{ key }},
        {{ period_start(grain, 'responded_date') }}
),

complaint_results as (
    select
        {{ key }} as subject_id,
        {{ period_start(grain, 'received_date') }} as period_start,
        count(*) as complaints_received,
        {{ stable_avg('acceptance_hours') }} as complaint_acceptance_time_hours,
        {{ stable_avg('acceptance_business_hours') }} as complaint_acceptance_time_business_hours,
        count(acceptance_hours) as complaint_acceptance_time_n,
        sum(case when is_problem_resolved then 1 else 0 end) as problems_resolved
    from complaints
    where {{ key }} is not null
        and {{ touched_filter(grain, 'received_date', starts) }}
    group by
        {{ key }},
        {{ period_start(grain, 'received_date') }}
),

review_results as (
    select
        {{ key }} as subject_id,
        {{ period_start(grain, 'period_start') }} as period_start,
        {{ stable_avg('score') }} as supervisor_review,
        count(score) as supervisor_review_n
    from reviews
    where {{ key }} is not null
        and {{ touched_filter(grain, 'period_start', starts) }}
    group by
        {{ key }},
        {{ period_start(grain, 'period_start') }}
),

subject_periods as (
    select subject_id, period_start from resolved_tickets
    union
    select subject_id, period_start from responded_tickets
    union
    select subject_id, period_start from survey_results
    union
    select subject_id, period_start from complaint_results
    union
    select subject_id, period_start from review_results
),

periods as (
    select
        subject_id,
        period_start,
        {{ period_end(grain, 'period_start') }} as period_end,
        {{ period_label(grain, 'period_start') }} as period_label
    from subject_periods
),

final as (
    select
        periods.subject_id as {{ key }},
        {%- if subject == 'technician' %}
        technicians.team_id,
        {%- endif %}
        periods.period_start,
        periods.period_end,
        periods.period_label,

        -- customer satisfaction (month of responded_at)
        {{ kpi_ratio('survey_results.satisfied_count', 'survey_results.csat_n') }} as csat,
        coalesce(survey_results.csat_n, 0) as csat_n,
        survey_results.customer_rating,
        coalesce(survey_results.csat_n, 0) as customer_rating_n,
        {{ kpi_ratio('(survey_results.nps_promoters - survey_results.nps_detractors)', 'survey_results.nps_n', '100.0') }}
            as nps,
        coalesce(survey_results.nps_n, 0) as nps_n,
        coalesce(survey_results.nps_promoters, 0) as nps_promoters,
        coalesce(survey_results.nps_passives, 0) as nps_passives,
        coalesce(survey_results.nps_detractors, 0) as nps_detractors,

        -- processing efficiency (month of resolved_at; first response: month of created_at)
        resolved_tickets.avg_handling_time_hours,
        resolved_tickets.avg_handling_time_business_hours,
        coalesce(resolved_tickets.avg_handling_time_n, 0) as avg_handling_time_n,
        resolved_tickets.mttr_hours,
        resolved_tickets.mttr_business_hours,
        coalesce(resolved_tickets.mttr_n, 0) as mttr_n,
        responded_tickets.first_response_time_hours,
        responded_tickets.first_response_time_business_hours,
        coalesce(responded_tickets.first_response_time_n, 0) as first_response_time_n,
        {{ kpi_ratio('resolved_tickets.sla_met_count', 'resolved_tickets.sla_attainment_n') }} as sla_attainment,
        coalesce(resolved_tickets.sla_attainment_n, 0) as sla_attainment_n,

        -- service quality
        survey_results.service_attitude,
        coalesce(survey_results.service_attitude_n, 0) as service_attitude_n,
        survey_results.technical_level,
        coalesce(survey_results.technical_level_n, 0) as technical_level_n,
        {{ kpi_ratio('resolved_tickets.first_time_fix_count', 'resolved_tickets.first_time_fix_rate_n') }}
            as first_time_fix_rate,
        coalesce(resolved_tickets.first_time_fix_rate_n, 0) as first_time_fix_rate_n,
        {{ kpi_ratio('resolved_tickets.reopened_count', 'resolved_tickets.tickets_resolved') }} as reopen_rate,
        coalesce(resolved_tickets.tickets_resolved, 0) as reopen_rate_n,

        -- complaint handling (month of received_at)
        complaint_results.complaint_acceptance_time_hours,
        complaint_results.complaint_acceptance_time_business_hours,
        coalesce(complaint_results.complaint_acceptance_time_n, 0) as complaint_acceptance_time_n,
        {{ kpi_ratio('complaint_results.problems_resolved', 'complaint_results.complaints_received') }}
            as problem_resolution_rate,
        coalesce(complaint_results.complaints_received, 0) as problem_resolution_rate_n,
        {{ kpi_ratio('coalesce(complaint_results.complaints_received, 0)', 'resolved_tickets.tickets_resolved', '100.0') }}
            as complaint_rate,
        coalesce(resolved_tickets.tickets_resolved, 0) as complaint_rate_n,

        -- qualitative
        review_results.supervisor_review,
        coalesce(review_results.supervisor_review_n, 0) as supervisor_review_n,

        -- volumes
        coalesce(resolved_tickets.tickets_resolved, 0) as tickets_resolved,
        coalesce(complaint_results.complaints_received, 0) as complaints_received
    from periods
    left join resolved_tickets
        on periods.subject_id = resolved_tickets.subject_id
        and periods.period_start = resolved_tickets.period_start
    left join responded_tickets
        on periods.subject_id = responded_tickets.subject_id
        and periods.period_start = responded_tickets.period_start
    left join survey_results
        on periods.subject_id = survey_results.subject_id
        and periods.period_start = survey_results.period_start
    left join complaint_results
        on periods.subject_id = complaint_results.subject_id
        and periods.period_start = complaint_results.period_start
    left join review_results
        on periods.subject_id = review_results.subject_id
        and periods.period_start = review_results.period_start
    {%- if subject == 'technician' %}
    left join technicians
        on periods.subject_id = technicians.technician_id
        and {{ scd2_valid_on('technicians', 'periods.period_end') }}
    {%- endif %}
)

select * from final
{%- endmacro %}

{#- Long form of the six KPI marts: one row per subject, period and indicator (duration indicators
    once per hours basis). The code list is fixed here, never read from data. -#}
{% macro kpi_long_form() -%}
{%- set marts = [
    ('technician', 'month', 'kpi_technician_monthly'),
    ('technician', 'quarter', 'kpi_technician_quarterly'),
    ('technician', 'year', 'kpi_technician_annual'),
    ('team', 'month', 'kpi_team_monthly'),
    ('team', 'quarter', 'kpi_team_quarterly'),
    ('team', 'year', 'kpi_team_annual'),
] -%}
{%- set months = touched_months() -%}
{%- set branches = [] -%}
{%- for subject, grain, mart in marts -%}
    {%- set subject_column = 'technician_id' if subject == 'technician' else 'team_id' -%}
    {%- for indicator in kpi_indicators() -%}
        {%- set bases = [('calendar', indicator.code ~ '_hours'), ('business', indicator.code ~ '_business_hours')]
            if indicator.is_duration else [(none, indicator.code)] -%}
        {%- for basis, value_column in bases -%}
            {%- set branch -%}
    select
        '{{ subject }}' as subject_type,
        {{ subject_column }} as subject_id,
        team_id,
        '{{ grain }}' as period_type,
        period_start,
        period_end,
        period_label,
        '{{ indicator.code }}' as indicator_code,
        {% if basis %}'{{ basis }}'{% else %}cast(null as {{ dbt.type_string() }}){% endif %} as hours_basis,
        cast({{ value_column }} as double) as value,
        cast({{ indicator.code }}_n as bigint) as sample_size
    from {{ ref(mart) }}
    where {{ _period_start_in('period_start', roll_up_months(months, grain)) }}
            {%- endset -%}
            {%- do branches.append(branch) -%}
        {%- endfor -%}
    {%- endfor -%}
{%- endfor -%}
{{ branches | join('\n    union all\n') }}
{%- endmacro %}
