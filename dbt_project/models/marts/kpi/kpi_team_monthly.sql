{#- KPI values per team and month (columns: macros/kpi.sql, kpi_mart). -#}
{{ kpi_mart('team', 'month') }}
