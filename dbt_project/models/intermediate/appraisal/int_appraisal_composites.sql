{#-
    One row per active technician, period and method: composite score, status, band grade, forced
    distribution and ranks.

    composite_score   = sum of the rounded contributions (exactly what the breakdown shows); null when no
                        indicator is rated.
    status            = graded when rated_weight / total_weight >= min_rated_weight_share, else
                        insufficient_data (no grade, no rank; the composite is still shown).
    band_grade        = the band with the highest min_score <= composite_score.
    forced distribution (when forced_a_max_share is set): within a team, period and method the graded
                        technicians are ordered by composite_score desc, then rated_weight desc, then
                        technician_id asc (the tie rule); only the first floor(share x graded count) (+1e-6 against float error) may keep
                        the top grade, the others in the top band get the next band (A -> B).
    rank_in_team, rank_overall: standard competition rank (1, 2, 2, 4) on composite_score among graded
                        technicians of the team / of everyone, per period and method.
-#}
{{ period_mart_config(['period_type', 'period_start']) }}
{%- set months = touched_months() %}
with

indicator_scores as (
    select * from {{ ref('int_appraisal_indicator_scores') }}
    where {{ touched_period_filter(months=months) }}
),

grade_bands as (
    select * from {{ ref('grade_bands') }}
),

ordered_bands as (
    select
        grade,
        grade_name_zh,
        grade_name_en,
        min_score,
        row_number() over (order by min_score desc) as band_order
    from grade_bands
),

composites as (
    select
        technician_id,
        team_id,
        period_type,
        period_start,
        period_end,
        period_label,
        method,
        case when max(rated_weight) > 0 then cast(sum(contribution) as decimal(9, 2)) end as composite_score,
        max(rated_weight) as rated_weight,
        max(total_weight) as total_weight,
        sum(case when is_rated then 1 else 0 end) as rated_indicator_count,
        count(*) as indicator_count,
        max(min_rated_weight_share) as min_rated_weight_share,
        max(forced_a_max_share) as forced_a_max_share,
        max(settings_effective_from) as settings_effective_from,
        max(scoring_effective_from) as scoring_effective_from
    from indicator_scores
    group by
        technician_id,
        team_id,
        period_type,
        period_start,
        period_end,
        period_label,
        method
),

with_status as (
    select
        *,
        cast(round(rated_weight / total_weight, 4) as decimal(7, 4)) as rated_weight_share,
        case
            when rated_weight / total_weight >= min_rated_weight_share then 'graded'
            else 'insufficient_data'
        end as status
    from composites
),

banded as (
    select
        with_status.*,
        ordered_bands.grade as band_grade,
        ordered_bands.band_order,
        row_number() over (
            partition by
                with_status.technician_id, with_status.period_type, with_status.period_start, with_status.method
            order by ordered_bands.min_score desc
        ) as band_match_rank
    from with_status
    left join ordered_bands
        on with_status.status = 'graded'
        and with_status.composite_score >= ordered_bands.min_score
),

ranked as (
    select
        *,
        row_number() over (
            partition by period_type, period_start, method, team_id, status
            order by composite_score desc, rated_weight desc, technician_id asc
        ) as tie_order_in_team,
        count(*) over (
            partition by period_type, period_start, method, team_id, status
        ) as team_graded_count,
        rank() over (
            partition by period_type, period_start, method, team_id, status
            order by composite_score desc
        ) as rank_in_team_all,
        rank() over (
            partition by period_type, period_start, method, status
            order by composite_score desc
        ) as rank_overall_all
    from banded
    where band_match_rank = 1
),

forced as (
    select
        ranked.*,
        coalesce(
            ranked.status = 'graded'
            and ranked.band_order = 1
            and ranked.forced_a_max_share is not null
            and ranked.tie_order_in_team > floor(ranked.forced_a_max_share * ranked.team_graded_count + 0.000001),
            false
        ) as is_forced_down
    from ranked
)

select
    forced.technician_id,
    forced.team_id,
    forced.period_type,
    forced.period_start,
    forced.period_end,
    forced.period_label,
    forced.method,
    forced.status,
    forced.composite_score,
    forced.band_grade,
    final_band.grade,
    final_band.grade_name_zh,
    final_band.grade_name_en,
    forced.is_forced_down,
    case when forced.status = 'graded' then forced.rank_in_team_all end as rank_in_team,
    case when forced.status = 'graded' then forced.rank_overall_all end as rank_overall,
    case when forced.status = 'graded' then forced.tie_order_in_team end as tie_order_in_team,
    case when forced.status = 'graded' then forced.team_graded_count end as team_graded_count,
    forced.rated_weight,
    forced.total_weight,
    forced.rated_weight_share,
    forced.rated_indicator_count,
    forced.indicator_count,
    forced.min_rated_weight_share,
    forced.forced_a_max_share,
    forced.settings_effective_from,
    forced.scoring_effective_from
from forced
left join ordered_bands as final_band
    on final_band.band_order = case when forced.is_forced_down then forced.band_order + 1 else forced.band_order end
