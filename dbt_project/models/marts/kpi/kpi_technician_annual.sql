{#- KPI values per technician and year (columns: macros/kpi.sql, kpi_mart). -#}
{{ kpi_mart('technician', 'year') }}
