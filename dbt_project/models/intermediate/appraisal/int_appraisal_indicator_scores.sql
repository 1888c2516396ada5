{#-
    One row per active technician, period, method and indicator in force: the value, whether it is rated,
    its score on the curve and its share of the renormalised weight.

    Rated: a value exists and sample_size >= min_sample. Not rated rows keep their configured weight but get
    weight_used = 0 and contribution = 0; the rated weights are renormalised to 100.
    Rounding (so that contributions add up to the composite exactly):
      score        = round(curve, 2)
      raw contribution = score * weight / rated_weight; the composite is round(sum of raw contributions, 2)
      contribution = the raw contribution rounded to cents by the largest-remainder method: every raw
                     contribution is floored to the cent, and the cents still missing to reach the rounded
                     composite go to the largest remainders (ties: indicator_code). So the contributions
                     (decimal(9, 2)) sum to the composite exactly and each is within 0.01 of its raw value.
      weight_used  = round(100 * weight / rated_weight, 4)        (shown; contribution uses the exact ratio)
-#}
{{ period_mart_config(['period_type', 'period_start']) }}
{%- set months = touched_months() %}
with

roster as (
    select * from {{ ref('int_appraisal_roster') }}
    where {{ touched_period_filter(months=months) }}
),

settings_by_period as (
    select * from {{ ref('int_appraisal_settings_by_period') }}
    where {{ touched_period_filter(months=months) }}
),

indicator_values as (
    select * from {{ ref('int_indicator_values') }}
    where subject_type = 'technician'
        and {{ touched_period_filter(months=months) }}
),

technician_indicators as (
    select
        roster.technician_id,
        roster.team_id,
        roster.period_type,
        roster.period_start,
        roster.period_end,
        roster.period_label,
        settings_by_period.method,
        settings_by_period.indicator_code,
        settings_by_period.indicator_name_zh,
        settings_by_period.indicator_name_en,
        settings_by_period.category,
        settings_by_period.kind,
        settings_by_period.unit,
        settings_by_period.direction,
        settings_by_period.hours_basis,
        settings_by_period.target,
        settings_by_period.threshold,
        settings_by_period.weight,
        settings_by_period.total_weight,
        settings_by_period.min_sample,
        settings_by_period.indicator_effective_from,
        settings_by_period.settings_effective_from,
        settings_by_period.scoring_effective_from,
        settings_by_period.below_threshold_slope,
        settings_by_period.min_rated_weight_share,
        settings_by_period.forced_a_max_share,
        indicator_values.indicator_code is not null as has_value_row,
        indicator_values.value,
        indicator_values.sample_size
    from roster
    inner join settings_by_period
        on roster.period_type = settings_by_period.period_type
        and roster.period_start = settings_by_period.period_start
    left join indicator_values
        on roster.technician_id = indicator_values.subject_id
        and roster.period_type = indicator_values.period_type
        and roster.period_start = indicator_values.period_start
        and settings_by_period.indicator_code = indicator_values.indicator_code
        and coalesce(settings_by_period.hours_basis, 'none') = coalesce(indicator_values.hours_basis, 'none')
),

rated as (
    select
        *,
        case
            when not has_value_row or coalesce(sample_size, 0) = 0 then 'no_data'
            -- a sample but no value: the sources do not measure it (complaint_rate without complaints)
            when value is null then 'not_measured'
            when sample_size < min_sample then 'below_min_sample'
        end as not_rated_reason
    from technician_indicators
),

scored as (
    select
        *,
        not_rated_reason is null as is_rated,
        case
            when not_rated_reason is null
                then cast(
                        round(
                            {{ score_curve('value', 'target', 'threshold', 'direction', 'below_threshold_slope') }},
                            2
                        ) as decimal(5, 2)
                    )
        end as score
    from rated
),

-- The cent allocation works on narrow rows and is joined back: a window operator sorts every column its input
-- carries, and scored has ~35 of them.
allocation_rows as (
    select
        technician_id,
        period_type,
        period_start,
        method,
        indicator_code,
        is_rated,
        score,
        weight
    from scored
),

weighted as (
    select
        *,
        sum(case when is_rated then weight else 0 end) over (
            partition by technician_id, period_type, period_start, method
        ) as rated_weight
    from allocation_rows
),

contribution_cents as (
    select
        *,
        case when is_rated then score * weight * 100.0 / rated_weight end as raw_cents
    from weighted
),

floored_cents as (
    select
        *,
        floor(raw_cents + 0.000001) as floor_cents,
        raw_cents - floor(raw_cents + 0.000001) as remainder_cents,
        -- added as decimals: a sum of doubles depends on the order of the rows (macros/numeric.sql)
        round(cast(sum(cast(raw_cents as decimal(38, 18))) over (
            partition by technician_id, period_type, period_start, method
        ) as double), 0) as composite_cents,
        -- the same window as the composite (one sort): the cents the floors add up to
        sum(floor(raw_cents + 0.000001)) over (
            partition by technician_id, period_type, period_start, method
        ) as floor_cents_total
    from contribution_cents
),

allocated_cents as (
    select
        technician_id,
        period_type,
        period_start,
        method,
        indicator_code,
        rated_weight,
        floor_cents,
        composite_cents - floor_cents_total as missing_cents,
        row_number() over (
            partition by technician_id, period_type, period_start, method, is_rated
            order by remainder_cents desc, indicator_code asc
        ) as remainder_rank
    from floored_cents
),

allocated as (
    select
        scored.*,
        allocated_cents.rated_weight,
        allocated_cents.floor_cents,
        allocated_cents.missing_cents,
        allocated_cents.remainder_rank
    from scored
    inner join allocated_cents
        on scored.technician_id = allocated_cents.technician_id
        and scored.period_type = allocated_cents.period_type
        and scored.period_start = allocated_cents.period_start
        and scored.method = allocated_cents.method
        and scored.indicator_code = allocated_cents.indicator_code
)

select
    technician_id,
    team_id,
    period_type,
    period_start,
    period_end,
    period_label,
    method,
    indicator_code,
    indicator_name_zh,
    indicator_name_en,
    category,
    kind,
    unit,
    direction,
    hours_basis,
    value,
    sample_size,
    min_sample,
    target,
    threshold,
    is_rated,
    not_rated_reason,
    score,
    weight,
    case
        when is_rated then cast(round(100.0 * weight / rated_weight, 4) as decimal(9, 4))
        else cast(0 as decimal(9, 4))
    end as weight_used,
    case
        when is_rated
            then cast(
                    (floor_cents + case when remainder_rank <= missing_cents then 1 else 0 end) / 100.0
                    as decimal(9, 2)
                )
        else cast(0 as decimal(9, 2))
    end as contribution,
    rated_weight,
    total_weight,
    below_threshold_slope,
    min_rated_weight_share,
    forced_a_max_share,
    indicator_effective_from,
    settings_effective_from,
    scoring_effective_from
from allocated
