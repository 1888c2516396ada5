{#- The training settings seed as one typed row; settings_key is unique-tested so a second row fails. -#}
with settings as (
    select * from {{ ref('training_settings') }}
),

final as (
    select
        'training' as settings_key,
        appraisal_method,
        cast(bottom_quartile_share as double) as bottom_quartile_share,
        cast(bottom_quartile_min_rated as integer) as bottom_quartile_min_rated,
        cast(onboarding_window_days as integer) as onboarding_window_days,
        cast(coverage_horizon_days as integer) as coverage_horizon_days,
        cast(outcome_window_months as integer) as outcome_window_months,
        cast(min_group_size as integer) as min_group_size,
        outcome_hours_basis
    from settings
)

select * from final
