{#- KPI values per technician and month (columns: macros/kpi.sql, kpi_mart). -#}
{{ kpi_mart('technician', 'month') }}
