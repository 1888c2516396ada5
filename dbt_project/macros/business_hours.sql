{#-
Business hours without exploding intervals into days.

int_work_calendar holds, per calendar date, `cum_work_seconds_before`: the working seconds of all
earlier days in the calendar. The working-second "clock" at a local timestamp t is

    F(t) = cum_work_seconds_before(date(t))
           + (if date(t) is a workday: clamp(seconds_of_day(t), workday_start, workday_end) - workday_start)

and the business duration between a and b is F(b) - F(a). The caller joins int_work_calendar once
per timestamp column (an equi-join on the date), so the cost is one hash join per column.
-#}

{% macro business_seconds_at(ts_column, calendar_alias) -%}
    ({{ calendar_alias }}.cum_work_seconds_before
        + case
            when {{ calendar_alias }}.is_workday
                then least(
                    greatest({{ seconds_of_day(ts_column) }}, {{ workday_start_seconds() }}),
                    {{ workday_end_seconds() }}
                ) - {{ workday_start_seconds() }}
            else 0
        end)
{%- endmacro %}

{#- Business hours between two local timestamps; null when either is null or outside the calendar. -#}
{% macro business_hours_between(start_column, start_calendar_alias, end_column, end_calendar_alias) -%}
    (({{ business_seconds_at(end_column, end_calendar_alias) }}
        - {{ business_seconds_at(start_column, start_calendar_alias) }}) / 3600.0)
{%- endmacro %}
