{#-
Change-data-capture: rank the versions of a record, newest first (1 = the version that wins).
Order: the version column (updated_at) descending, nulls last; then the later load; then the later
row of the same file. Feeds without a version column: the later load wins.
-#}
{% macro newest_version_rank(key_columns, version_column=none) -%}
    row_number() over (
        partition by {{ key_columns | join(', ') }}
        order by
            {%- if version_column %}
            {{ version_column }} desc nulls last,
            {%- endif %}
            _loaded_at desc nulls last,
            _row_number desc
    )
{%- endmacro %}

{#- Trimmed text, empty as null. -#}
{% macro clean_text(column) -%}
    nullif(trim({{ column }}), '')
{%- endmacro %}

{#- Trimmed lower-case code, empty as null. -#}
{% macro clean_code(column) -%}
    nullif(lower(trim({{ column }})), '')
{%- endmacro %}
