{#-
    The appraisal score curve (docs/architecture.md, "Appraisal and scoring"), as one SQL expression on a 0-100 scale:

      higher is better                      lower is better (mirrored)
      value >= target            -> 100     value <= target
      threshold <= value < target-> 60 + 40 * (value - threshold) / (target - threshold)
                                            60 + 40 * (threshold - value) / (threshold - target)
      value < threshold          -> max(0, 60 - slope * 100 * (threshold - value) / |threshold|)
                                            max(0, 60 - slope * 100 * (value - threshold) / |threshold|)

    slope = points lost per 1 % of the threshold beyond it (appraisal_settings.below_threshold_slope).
    The settings validator guarantees target is on the better side of threshold and threshold <> 0.
    Returns null when value is null. Unrounded (double); callers round.
-#}
{% macro score_curve(value, target, threshold, direction, slope) -%}
    case
        when {{ value }} is null then null
        when {{ direction }} = 'higher' and {{ value }} >= {{ target }} then 100.0
        when {{ direction }} = 'lower' and {{ value }} <= {{ target }} then 100.0
        when {{ direction }} = 'higher' and {{ value }} >= {{ threshold }}
            then 60.0 + 40.0 * ({{ value }} - {{ threshold }}) / ({{ target }} - {{ threshold }})
        when {{ direction }} = 'lower' and {{ value }} <= {{ threshold }}
            then 60.0 + 40.0 * ({{ threshold }} - {{ value }}) / ({{ threshold }} - {{ target }})
        when {{ direction }} = 'higher'
            then {{ scoring_floor_at_zero(
                "60.0 - " ~ slope ~ " * 100.0 * (" ~ threshold ~ " - " ~ value ~ ") / abs(" ~ threshold ~ ")"
            ) }}
        else {{ scoring_floor_at_zero(
                "60.0 - " ~ slope ~ " * 100.0 * (" ~ value ~ " - " ~ threshold ~ ") / abs(" ~ threshold ~ ")"
            ) }}
    end
{%- endmacro %}

{#- max(0, x) written with case: portable (greatest() is missing on some engines). -#}
{% macro scoring_floor_at_zero(expression) -%}
    case when ({{ expression }}) < 0 then 0.0 else ({{ expression }}) end
{%- endmacro %}

{#- A text key of several columns joined by '|', for the one-column primary keys of the appraisal marts. -#}
{% macro scoring_key(columns) -%}
    {%- set parts = [] -%}
    {%- for column in columns -%}
        {%- if not loop.first %}{% do parts.append("'|'") %}{% endif -%}
        {%- do parts.append("cast(" ~ column ~ " as " ~ dbt.type_string() ~ ")") -%}
    {%- endfor -%}
    {{ dbt.concat(parts) }}
{%- endmacro %}
