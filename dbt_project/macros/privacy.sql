{#- Personal data (docs/privacy.md; docs/architecture.md, "Quality gate, publication and personal data"): only
    masked names, keyed pseudonyms and scrubbed free text leave raw. The pseudonyms are not computed here: their
    key must never be in dbt's SQL, manifest or logs, so ingestion/privacy.py writes raw.customer_pseudonyms and
    staging joins it. -#}

{#- '张三丰' -> '张**': first character, the rest as stars. -#}
{% macro mask_name(column) -%}
    case
        when {{ column }} is null or trim({{ column }}) = '' then null
        else {{ dbt.concat(["substr(trim(" ~ column ~ "), 1, 1)",
                            "repeat('*', greatest(length(trim(" ~ column ~ ")) - 1, 1))"]) }}
    end
{%- endmacro %}

{#- `text` with every match of var('personal_data_patterns') replaced by its marker, in the list's order. -#}
{% macro scrub_patterns(text) -%}
    {#- a namespace: a plain `set` inside a for loop does not outlive its iteration -#}
    {%- set ns = namespace(expr=text) -%}
    {%- for p in var('personal_data_patterns') -%}
        {%- set ns.expr = "regexp_replace(" ~ ns.expr ~ ", '" ~ (p.regex | replace("'", "''")) ~ "', '"
                          ~ (p.marker | replace("'", "''")) ~ "', 'g')" -%}
    {%- endfor -%}
    {{ ns.expr }}
{%- endmacro %}

{#- The names to look for in free text: every name the customer archive has held (all versions), as found by a
    join on their first var('personal_name_min_length') characters. -#}
{% macro customer_names() -%}
    {%- set n = var('personal_name_min_length') -%}
    select distinct trim(name) as value, substr(trim(name), 1, {{ n }}) as head
    from {{ source('raw', 'customers') }}
    where length(trim(name)) >= {{ n }}
{%- endmacro %}

{#- `rows` (a CTE with one row per `key`): `key` and `column` scrubbed of personal data: the patterns' matches
    become their markers and any customer's name becomes '[name]' (longest first). A name is found by joining
    each position of the text on the names' first characters, then comparing the whole name there: cost in
    proportion to the text's length, not to texts × names. -#}
{% macro scrubbed_free_text(rows, key, column) -%}
    {%- set n = var('personal_name_min_length') -%}
    with patterned as (
        select {{ key }} as k, {{ scrub_patterns(column) }} as text
        from {{ rows }}
        where {{ column }} is not null
    ),

    positions as (
        select k, text, unnest(range(1, length(text) - {{ n }} + 2)) as i
        from patterned
        where length(text) >= {{ n }}
    ),

    names_found as (
        select k, string_agg(regexp_escape(value), '|' order by length(value) desc, value) as names_pattern
        from (
            select distinct positions.k, names.value
            from positions
            join ({{ customer_names() }}) as names
                on substr(positions.text, positions.i, {{ n }}) = names.head
            where substr(positions.text, positions.i, length(names.value)) = names.value
        ) as hits
        group by k
    )

    select
        patterned.k as {{ key }},
        case
            when names_found.names_pattern is null then patterned.text
            else regexp_replace(patterned.text, names_found.names_pattern, '[name]', 'g')
        end as {{ column }}
    from patterned
    left join names_found
        on patterned.k = names_found.k
{%- endmacro %}


{#- Every column of `rows` (a CTE with one row per `key`), `column` scrubbed (scrubbed_free_text). -#}
{% macro select_with_scrubbed_free_text(rows, key, column) -%}
    select {{ rows }}.* exclude ({{ column }}), scrubbed.{{ column }}
    from {{ rows }}
    left join ({{ scrubbed_free_text(rows, key, column) }}) as scrubbed
        on {{ rows }}.{{ key }} = scrubbed.{{ key }}
{%- endmacro %}
