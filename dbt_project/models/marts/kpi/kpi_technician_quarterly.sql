{#- KPI values per technician and quarter (columns: macros/kpi.sql, kpi_mart). -#}
{{ kpi_mart('technician', 'quarter') }}
