{#- KPI values per technician and quarter: one row per technician and quarter, every indicator of the catalogue
    computed from the sums of the whole quarter (how, and the attribution rules: macros/kpi.sql). The column lists
    come from the catalogue (kpi_sum_columns, kpi_value_expressions, kpi_value_columns). -#}
{{ period_mart_config('period_start', 'quarter') }}
{%- set starts = touched_period_starts('quarter') %}
with monthly_sums as (
    select * from {{ ref('int_kpi_monthly_sums') }}
),
{%- for coverage in kpi_coverages() %}

-- an indicator with measured_from is measured from the first month of that fact on: before it (or with no such
-- feed at all) it is not measured, never 0 (when that month moves, an incremental build recomputes the months
-- between: touched_months, macros/incremental.sql)
{{ kpi_coverage_name(coverage) }} as (
    select {{ period_start('month', 'min(' ~ coverage.date ~ ')') }} as measured_from
    from {{ ref(coverage.fact) }}
),
{%- endfor %}

technicians as (
    select * from {{ ref('dim_technicians') }}
),

-- the technician's sums and counts over the whole quarter (each stream's columns are null in the months it has no
-- rows, so a sum is null when the quarter has none); the columns come from the indicator catalogue
period_sums as (
    select
        technician_id as subject_id,
        {{ period_start('quarter', 'period_start') }} as period_start,
        {{ kpi_sum_columns() }}
    from monthly_sums
    where technician_id is not null
        and {{ touched_filter('quarter', 'period_start', starts) }}
    group by
        technician_id,
        {{ period_start('quarter', 'period_start') }}
),

-- each indicator's value, sample and published counts (kpi_value_expressions)
period_values as (
    select
        period_sums.subject_id,
        period_sums.period_start,
        {{ period_end('quarter', 'period_start') }} as period_end,
        {{ period_label('quarter', 'period_start') }} as period_label,
        {{ kpi_select_list(kpi_value_expressions()) }}
    from period_sums
    {% for coverage in kpi_coverages() -%}
    cross join {{ kpi_coverage_name(coverage) }}
    {% endfor -%}
),

final as (
    select
        period_values.subject_id as technician_id,
        technicians.team_id,
        period_values.period_start,
        period_values.period_end,
        period_values.period_label,
        {{ kpi_value_columns('period_values') }}
    from period_values
    left join technicians
        on period_values.subject_id = technicians.technician_id
        and {{ scd2_valid_on('technicians', 'period_values.period_end') }}
)

select * from final
