{#- Body in macros/staging_customers.sql (stg_customers__customers_select): the same SELECT feeds the incremental
    builds of dim_customers, restricted to the customers they recompute. Name and phone are personal data: only
    masked / hashed values leave raw. -#}
{{ stg_customers__customers_select() }}
