{#- Body in macros/staging_customers.sql (stg_purchases__purchases_select): the same SELECT feeds the incremental
    builds of dim_customers, restricted to the purchases of the customers they recompute. -#}
{{ stg_purchases__purchases_select() }}
