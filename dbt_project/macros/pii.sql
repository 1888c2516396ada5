{#- Personal data (DESIGN §8): only masked or hashed values leave raw. -#}

{#- '张三丰' -> '张**': first character, the rest as stars. -#}
{% macro mask_name(column) -%}
    case
        when {{ column }} is null or trim({{ column }}) = '' then null
        else {{ dbt.concat(["substr(trim(" ~ column ~ "), 1, 1)",
                            "repeat('*', greatest(length(trim(" ~ column ~ ")) - 1, 1))"]) }}
    end
{%- endmacro %}

{#- Digits of a phone number only ('+86 138-0013-8000' -> '8613800138000'). -#}
{% macro phone_digits(column) -%}
    {{ return(adapter.dispatch('phone_digits')(column)) }}
{%- endmacro %}

{% macro default__phone_digits(column) -%}
    regexp_replace({{ column }}, '[^0-9]', '')
{%- endmacro %}

{% macro duckdb__phone_digits(column) -%}
    regexp_replace({{ column }}, '[^0-9]', '', 'g')
{%- endmacro %}

{#- Salted SHA-256 (hex) of a value; the salt comes from SERVICESCORE_PII_SALT. -#}
{% macro hash_pii(column) -%}
    {{ return(adapter.dispatch('hash_pii')(column)) }}
{%- endmacro %}

{% macro default__hash_pii(column) -%}
    sha2({{ dbt.concat(["'" ~ env_var('SERVICESCORE_PII_SALT', 'servicescore') ~ "'", column]) }}, 256)
{%- endmacro %}

{% macro duckdb__hash_pii(column) -%}
    sha256({{ dbt.concat(["'" ~ env_var('SERVICESCORE_PII_SALT', 'servicescore') ~ "'", column]) }})
{%- endmacro %}

{#- '13800138000' -> '*******8000' (only the last four digits stay visible). -#}
{% macro mask_phone(column) -%}
    case
        when {{ phone_digits(column) }} is null or {{ phone_digits(column) }} = '' then null
        else {{ dbt.concat(["repeat('*', greatest(length(" ~ phone_digits(column) ~ ") - 4, 0))",
                            dbt.right(phone_digits(column), "4")]) }}
    end
{%- endmacro %}
