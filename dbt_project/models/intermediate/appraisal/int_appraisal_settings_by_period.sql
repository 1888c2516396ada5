{#-
    The settings in force for each appraised period: one row per period, method and indicator, with the
    indicator settings and scoring settings whose effective period contains the period_start.
    settings_effective_from = the latest effective_from among the indicator rows of the method in force
    (the "settings version" a period was scored with).
-#}
{{ period_mart_config(['period_type', 'period_start']) }}
{%- set months = touched_months() %}
with

indicator_values as (
    select * from {{ ref('int_indicator_values') }}
),

indicator_settings as (
    select * from {{ ref('indicator_settings') }}
),

appraisal_settings as (
    select * from {{ ref('appraisal_settings') }}
),

periods as (
    select distinct
        period_type,
        period_start,
        period_end,
        period_label
    from indicator_values
    where subject_type = 'technician'
        and {{ touched_period_filter(months=months) }}
),

indicator_settings_in_force as (
    select
        periods.period_type,
        periods.period_start,
        periods.period_end,
        periods.period_label,
        indicator_settings.method,
        indicator_settings.indicator_code,
        indicator_settings.name_zh as indicator_name_zh,
        indicator_settings.name_en as indicator_name_en,
        indicator_settings.category,
        indicator_settings.kind,
        indicator_settings.unit,
        indicator_settings.direction,
        indicator_settings.hours_basis,
        indicator_settings.target,
        indicator_settings.threshold,
        indicator_settings.weight,
        indicator_settings.min_sample,
        indicator_settings.effective_from
    from periods
    inner join indicator_settings
        on periods.period_start >= indicator_settings.effective_from
        and (indicator_settings.effective_to is null or periods.period_start <= indicator_settings.effective_to)
)

select
    indicator_settings_in_force.period_type,
    indicator_settings_in_force.period_start,
    indicator_settings_in_force.period_end,
    indicator_settings_in_force.period_label,
    indicator_settings_in_force.method,
    indicator_settings_in_force.indicator_code,
    indicator_settings_in_force.indicator_name_zh,
    indicator_settings_in_force.indicator_name_en,
    indicator_settings_in_force.category,
    indicator_settings_in_force.kind,
    indicator_settings_in_force.unit,
    indicator_settings_in_force.direction,
    indicator_settings_in_force.hours_basis,
    indicator_settings_in_force.target,
    indicator_settings_in_force.threshold,
    indicator_settings_in_force.weight,
    indicator_settings_in_force.min_sample,
    indicator_settings_in_force.effective_from as indicator_effective_from,
    max(indicator_settings_in_force.effective_from) over (
        partition by
            indicator_settings_in_force.period_type,
            indicator_settings_in_force.period_start,
            indicator_settings_in_force.method
    ) as settings_effective_from,
    sum(indicator_settings_in_force.weight) over (
        partition by
            indicator_settings_in_force.period_type,
            indicator_settings_in_force.period_start,
            indicator_settings_in_force.method
    ) as total_weight,
    appraisal_settings.effective_from as scoring_effective_from,
    appraisal_settings.below_threshold_slope,
    appraisal_settings.min_rated_weight_share,
    appraisal_settings.forced_a_max_share
from indicator_settings_in_force
inner join appraisal_settings
    on indicator_settings_in_force.period_start >= appraisal_settings.effective_from
    and (
        appraisal_settings.effective_to is null
        or indicator_settings_in_force.period_start <= appraisal_settings.effective_to
    )
