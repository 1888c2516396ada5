{#- KPI values per team and quarter (columns: macros/kpi.sql, kpi_mart). -#}
{{ kpi_mart('team', 'quarter') }}
