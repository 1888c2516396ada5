{#- Long form of the six KPI marts, read by the appraisal: one row per subject, period, indicator and
    (for duration indicators) hours basis. Generated from the fixed code list in macros/kpi.sql.
    Incremental: recomputes only the touched periods (macros/incremental.sql). -#}
{{ period_mart_config(['period_type', 'period_start']) }}
with unpivoted as (
    {{ kpi_long_form() }}
)

select * from unpivoted
