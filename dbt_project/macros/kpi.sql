{#-
KPI marts (DESIGN §4). One macro builds kpi_<subject>_<grain> so the six marts are thin and share one
column list. Every indicator is computed from the facts of the whole period (never from monthly or
per-technician values): the mart adds up the exact monthly sums and counts of int_kpi_monthly_sums (one pass
over the facts of the touched months, decimal sums) over the period and divides once, so a quarter's mean is
the mean of all its facts, to the last digit.

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
with monthly_sums as (
    select * from {{ ref('int_kpi_monthly_sums') }}
),

-- the complaint rate is measured from the first month of the complaints feed on: before it (or with no
-- complaints feed at all) it is not measured, never 0 complaints (when that month moves, an incremental build
-- recomputes the months between: touched_months, macros/incremental.sql)
complaints_coverage as (
    select {{ period_start('month', 'min(received_date)') }} as measured_from from {{ ref('fct_complaints') }}
),
{%- if subject == 'technician' %}

technicians as (
    select * from {{ ref('dim_technicians') }}
),
{%- endif %}

-- the subject's sums and counts over the whole period (each stream's columns are null in the months it has no
-- rows, so a sum is null when the period has none)
period_sums as (
    -- counts as BIGINT and the NPS buckets as HUGEINT: the column types the marts have always had
    select
        {{ key }} as subject_id,
        {{ period_start(grain, 'period_start') }} as period_start,
        cast(sum(tickets_resolved) as bigint) as tickets_resolved,
        {{ mean_of_sums('handling_hours_sum', 'handling_hours_n') }} as avg_handling_time_hours,
        {{ mean_of_sums('handling_business_hours_sum', 'handling_business_hours_n') }}
            as avg_handling_time_business_hours,
        cast(sum(handling_hours_n) as bigint) as avg_handling_time_n,
        {{ mean_of_sums('repair_hours_sum', 'repair_hours_n') }} as mttr_hours,
        {{ mean_of_sums('repair_business_hours_sum', 'repair_business_hours_n') }} as mttr_business_hours,
        cast(sum(repair_hours_n) as bigint) as mttr_n,
        cast(sum(sla_met_count) as bigint) as sla_met_count,
        cast(sum(sla_n) as bigint) as sla_attainment_n,
        cast(sum(first_time_fix_count) as bigint) as first_time_fix_count,
        cast(sum(first_time_fix_n) as bigint) as first_time_fix_rate_n,
        cast(sum(reopened_count) as bigint) as reopened_count,
        cast(sum(reopen_n) as bigint) as reopen_rate_n,

        {{ mean_of_sums('first_response_hours_sum', 'first_response_hours_n') }} as first_response_time_hours,
        {{ mean_of_sums('first_response_business_hours_sum', 'first_response_business_hours_n') }}
            as first_response_time_business_hours,
        cast(sum(first_response_hours_n) as bigint) as first_response_time_n,

        cast(sum(satisfied_count) as bigint) as satisfied_count,
        cast(sum(overall_score_n) as bigint) as csat_n,
        {{ mean_of_sums('overall_score_sum', 'overall_score_n') }} as customer_rating,
        cast(sum(nps_promoters) as hugeint) as nps_promoters,
        cast(sum(nps_passives) as hugeint) as nps_passives,
        cast(sum(nps_detractors) as hugeint) as nps_detractors,
        cast(sum(nps_n) as bigint) as nps_n,
        {{ mean_of_sums('attitude_score_sum', 'attitude_score_n') }} as service_attitude,
        cast(sum(attitude_score_n) as bigint) as service_attitude_n,
        {{ mean_of_sums('technical_score_sum', 'technical_score_n') }} as technical_level,
        cast(sum(technical_score_n) as bigint) as technical_level_n,

        cast(sum(complaints_received) as bigint) as complaints_received,
        {{ mean_of_sums('acceptance_hours_sum', 'acceptance_hours_n') }} as complaint_acceptance_time_hours,
        {{ mean_of_sums('acceptance_business_hours_sum', 'acceptance_business_hours_n') }}
            as complaint_acceptance_time_business_hours,
        cast(sum(acceptance_hours_n) as bigint) as complaint_acceptance_time_n,
        cast(sum(problems_resolved) as bigint) as problems_resolved,

        {{ mean_of_sums('review_score_sum', 'review_score_n') }} as supervisor_review,
        cast(sum(review_score_n) as bigint) as supervisor_review_n
    from monthly_sums
    where {{ key }} is not null
        and {{ touched_filter(grain, 'period_start', starts) }}
    group by
        {{ key }},
        {{ period_start(grain, 'period_start') }}
),

periods as (
    select
        *,
        {{ period_end(grain, 'period_start') }} as period_end,
        {{ period_label(grain, 'period_start') }} as period_label
    from period_sums
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
        {{ kpi_ratio('periods.satisfied_count', 'periods.csat_n') }} as csat,
        coalesce(periods.csat_n, 0) as csat_n,
        periods.customer_rating,
        coalesce(periods.csat_n, 0) as customer_rating_n,
        {{ kpi_ratio('(periods.nps_promoters - periods.nps_detractors)', 'periods.nps_n', '100.0') }} as nps,
        coalesce(periods.nps_n, 0) as nps_n,
        coalesce(periods.nps_promoters, 0) as nps_promoters,
        coalesce(periods.nps_passives, 0) as nps_passives,
        coalesce(periods.nps_detractors, 0) as nps_detractors,

        -- processing efficiency (month of resolved_at; first response: month of created_at)
        periods.avg_handling_time_hours,
        periods.avg_handling_time_business_hours,
        coalesce(periods.avg_handling_time_n, 0) as avg_handling_time_n,
        periods.mttr_hours,
        periods.mttr_business_hours,
        coalesce(periods.mttr_n, 0) as mttr_n,
        periods.first_response_time_hours,
        periods.first_response_time_business_hours,
        coalesce(periods.first_response_time_n, 0) as first_response_time_n,
        {{ kpi_ratio('periods.sla_met_count', 'periods.sla_attainment_n') }} as sla_attainment,
        coalesce(periods.sla_attainment_n, 0) as sla_attainment_n,

        -- service quality
        periods.service_attitude,
        coalesce(periods.service_attitude_n, 0) as service_attitude_n,
        periods.technical_level,
        coalesce(periods.technical_level_n, 0) as technical_level_n,
        {{ kpi_ratio('periods.first_time_fix_count', 'periods.first_time_fix_rate_n') }} as first_time_fix_rate,
        coalesce(periods.first_time_fix_rate_n, 0) as first_time_fix_rate_n,
        {{ kpi_ratio('periods.reopened_count', 'periods.reopen_rate_n') }} as reopen_rate,
        coalesce(periods.reopen_rate_n, 0) as reopen_rate_n,

        -- complaint handling (month of received_at)
        periods.complaint_acceptance_time_hours,
        periods.complaint_acceptance_time_business_hours,
        coalesce(periods.complaint_acceptance_time_n, 0) as complaint_acceptance_time_n,
        {{ kpi_ratio('periods.problems_resolved', 'periods.complaints_received') }} as problem_resolution_rate,
        coalesce(periods.complaints_received, 0) as problem_resolution_rate_n,
        case when periods.period_start >= complaints_coverage.measured_from then
            {{ kpi_ratio('coalesce(periods.complaints_received, 0)', 'periods.tickets_resolved', '100.0') }}
        end as complaint_rate,
        coalesce(periods.tickets_resolved, 0) as complaint_rate_n,

        -- qualitative
        periods.supervisor_review,
        coalesce(periods.supervisor_review_n, 0) as supervisor_review_n,

        -- volumes
        coalesce(periods.tickets_resolved, 0) as tickets_resolved,
        coalesce(periods.complaints_received, 0) as complaints_received
    from periods
    cross join complaints_coverage
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
