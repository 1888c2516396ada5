{#- KPI values per team and year (columns: macros/kpi.sql, kpi_mart). -#}
{{ kpi_mart('team', 'year') }}
