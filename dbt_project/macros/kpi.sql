{#-
KPI marts (docs/architecture.md, indicators). The six marts kpi_<subject>_<grain> (models/marts/kpi/) write their
SQL out; what they take from here is what the indicator catalogue (var('indicators'), dbt_project.yml) decides:
the period sums, the coverage CTEs and the value columns, so the six share one column list. Every indicator is
computed from the facts of the whole period (never from monthly or per-technician values): the mart adds up the
exact monthly sums and counts of int_kpi_monthly_sums (one pass over the facts of the touched months, decimal
sums) over the period and divides once, so a quarter's mean is the mean of all its facts, to the last digit.

Period attribution (local dates): resolution indicators and the complaint-rate denominator -> resolved_date;
first_response_time -> created_date; survey indicators -> responded_date; complaint indicators and the
complaint-rate numerator -> received_date; supervisor_review -> the reviewed month.
Team attribution: the facts carry the technician's team at the event (SCD2), team marts group by it.
Technician marts report team_id = the technician's team on the last day of the period.
-#}

{#- The indicator catalogue (var('indicators'), dbt_project.yml): each entry with is_duration (unit hours) and
    its mart columns. The one list; ingestion/indicator_catalogue.py reads the same var for Python. -#}
{% macro kpi_indicators() -%}
    {%- set out = [] -%}
    {%- for indicator in var('indicators') -%}
        {%- set is_duration = indicator.unit == 'hours' -%}
        {%- do out.append({
            'code': indicator.code,
            'is_duration': is_duration,
            'value_columns': [indicator.code ~ '_hours', indicator.code ~ '_business_hours']
                if is_duration else [indicator.code],
            'value': indicator.value,
            'counts': indicator.get('counts') or [],
            'measured_from': indicator.get('measured_from'),
            'evidence': indicator.evidence,
        }) -%}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro %}

{#- Every evidence rule of the catalogue, with its indicator_code: which fact rows are behind which value. -#}
{% macro indicator_evidence_rules() -%}
    {%- set out = [] -%}
    {%- for indicator in kpi_indicators() -%}
        {%- for rule in indicator.evidence -%}
            {%- do out.append({'indicator_code': indicator.code, 'fact': rule.fact,
                               'activity_date': rule.activity_date, 'condition': rule.condition}) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro %}

{#- The volumes every KPI mart carries besides the indicators (int_kpi_monthly_sums columns). -#}
{% macro kpi_volumes() -%}
    {{ return(['tickets_resolved', 'complaints_received']) }}
{%- endmacro %}

{#- The period sums a KPI mart adds up from int_kpi_monthly_sums, as [(expression, alias)]: the volumes and every
    count an indicator's value reads (summed once however many indicators read it), and each mean, computed
    here from the sums of the stored exact sums and counts (mean_of_sums). -#}
{% macro kpi_period_sums() -%}
    {%- set columns = [] -%}
    {%- set seen = [] -%}
    {%- set counts = [] -%}
    {%- for column in kpi_volumes() -%}
        {%- do counts.append((column, 'bigint')) -%}
    {%- endfor -%}
    {%- for indicator in kpi_indicators() -%}
        {%- if 'ratio' in indicator.value -%}
            {%- set ratio = indicator.value.ratio -%}
            {%- if modules.re.fullmatch('[a-z][a-z0-9_]*', ratio.numerator) -%}
                {%- do counts.append((ratio.numerator, 'bigint')) -%}
            {%- endif -%}
            {%- do counts.append((ratio.denominator, 'bigint')) -%}
        {%- else -%}
            {%- set mean = indicator.value.mean -%}
            {%- do counts.append((mean.n, 'bigint')) -%}
        {%- endif -%}
        {%- for count in indicator.counts -%}
            {%- do counts.append((count.column, count.get('type', 'bigint'))) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- for column, type in counts if column not in seen -%}
        {%- do seen.append(column) -%}
        {%- do columns.append(('cast(sum(' ~ column ~ ') as ' ~ type ~ ')', column)) -%}
    {%- endfor -%}
    {%- for indicator in kpi_indicators() if 'mean' in indicator.value -%}
        {%- set mean = indicator.value.mean -%}
        {%- do columns.append((mean_of_sums(mean.sum, mean.n), indicator.value_columns[0])) -%}
        {%- if indicator.is_duration -%}
            {%- do columns.append((mean_of_sums(mean.business_sum, mean.business_n), indicator.value_columns[1])) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(columns) }}
{%- endmacro %}

{#- The name of the CTE that holds the first measured month of a measured_from {fact, date}. -#}
{% macro kpi_coverage_name(measured_from) -%}
    {{- 'coverage_' ~ measured_from.fact ~ '_' ~ measured_from.date -}}
{%- endmacro %}

{#- The indicator columns of a KPI mart from the period sums, as [(expression, alias)], in catalogue order: each
    indicator's value column(s), its sample <code>_n and its published counts; then the volumes. A ratio is null
    when its denominator is 0, a mean when its count is; an indicator with measured_from is null before the
    first month of that fact (not measured, never 0). -#}
{% macro kpi_value_expressions() -%}
    {%- set columns = [] -%}
    {%- for indicator in kpi_indicators() -%}
        {%- if 'ratio' in indicator.value -%}
            {%- set ratio = indicator.value.ratio -%}
            {%- set value = kpi_ratio(ratio.numerator, ratio.denominator, ratio.get('scale', '1.0')) -%}
            {%- if indicator.measured_from -%}
                {%- set value = 'case when period_start >= ' ~ kpi_coverage_name(indicator.measured_from)
                    ~ '.measured_from then ' ~ value ~ ' end' -%}
            {%- endif -%}
            {%- do columns.append((value, indicator.code)) -%}
            {%- do columns.append(('coalesce(' ~ ratio.denominator ~ ', 0)', indicator.code ~ '_n')) -%}
        {%- else -%}
            {%- for column in indicator.value_columns -%}
                {%- do columns.append((column, column)) -%}
            {%- endfor -%}
            {%- do columns.append(('coalesce(' ~ indicator.value.mean.n ~ ', 0)', indicator.code ~ '_n')) -%}
        {%- endif -%}
        {%- for count in indicator.counts if count.get('published') -%}
            {%- do columns.append(('coalesce(' ~ count.column ~ ', 0)', count.column)) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- for column in kpi_volumes() -%}
        {%- do columns.append(('coalesce(' ~ column ~ ', 0)', column)) -%}
    {%- endfor -%}
    {{ return(columns) }}
{%- endmacro %}

{% macro kpi_ratio(numerator, denominator, scale='1.0') -%}
    case when {{ denominator }} > 0 then {{ scale }} * {{ numerator }} / {{ denominator }} end
{%- endmacro %}

{#- The distinct measured_from entries ({fact, date}) of the catalogue, in catalogue order: a KPI mart writes one
    coverage CTE (kpi_coverage_name) for each, from ref(coverage.fact). -#}
{% macro kpi_coverages() -%}
    {%- set coverages = [] -%}
    {%- for indicator in kpi_indicators() if indicator.measured_from and indicator.measured_from not in coverages -%}
        {%- do coverages.append(indicator.measured_from) -%}
    {%- endfor -%}
    {{ return(coverages) }}
{%- endmacro %}

{#- A select list from [(expression, alias)]: `expression as alias`, one a line, comma-separated (no comma after
    the last), continuation lines indented by `indent` spaces (the models' select-list indent). -#}
{% macro kpi_select_list(columns, indent=8) -%}
    {%- set items = [] -%}
    {%- for expression, alias in columns -%}
        {%- do items.append(expression ~ ' as ' ~ alias) -%}
    {%- endfor -%}
    {{- items | join(',\n' ~ ' ' * indent) -}}
{%- endmacro %}

{#- The period sums of a KPI mart's period_sums CTE (kpi_period_sums) as a select list. -#}
{% macro kpi_sum_columns() -%}
    {{- kpi_select_list(kpi_period_sums()) -}}
{%- endmacro %}

{#- The value columns of a KPI mart (kpi_value_expressions), qualified by `relation`: the final select list. -#}
{% macro kpi_value_columns(relation, indent=8) -%}
    {%- set items = [] -%}
    {%- for _, alias in kpi_value_expressions() -%}
        {%- do items.append(relation ~ '.' ~ alias) -%}
    {%- endfor -%}
    {{- items | join(',\n' ~ ' ' * indent) -}}
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
