{#-
Incremental builds (docs/incremental.md).

Facts (fct_*) are `incremental` / `delete+insert` keyed on the record id. A nightly build re-derives
  * the records whose winning version was loaded after the fact's watermark (max(_loaded_at) in the fact)
    minus var('incremental_overlap_hours') (default 0, see docs/incremental.md): new records, updates, late
    records of old months;
  * the records of technicians whose roster (SCD2) changed since then, from the first date the change
    can affect (the changed version's valid_from; all dates when it is the technician's first version);
  * the records whose business hours are still missing (the working calendar did not cover them yet).
  The newest version per key comes from the staging SELECT (macros/staging_events.sql) restricted to the
  record ids to re-derive (fact_keys_to_refresh), so only their raw versions are ranked; every
  fact row carries _loaded_at (watermark), _built_at (the dbt run that wrote it) and _replaced_<date>
  columns (the period date of the version it replaced, so the old period is recomputed too).

Period marts (KPI, int_indicator_values, appraisal) are `incremental` / `delete+insert` keyed on the
period. What a run recomputes is decided once per run, by the model int_change_window (one home: the months
touched since the last complete run, change_window_months below); every period mart reads that one table
(touched_months), deletes those periods in a pre-hook and recomputes them from the facts of the whole period,
quarters and years containing them included. The orchestration passes the instant of the last complete run
(var change_window_since or env SERVICESCORE_DBT_CHANGE_SINCE) and, after the build, appends the window to its
audit (ingestion/change_window.py: audit.change_windows), which the quality suites and the publication read.
No instant (first build, --full-refresh, a dbt run outside the orchestration): every period is recomputed.

int_customer_service_history (per-customer counts) and dim_customers are `incremental` / `delete+insert` keyed
on customer_id, with the same instant (model_change_since): the history recomputes the customers of fact rows
built since and of every raw version of those records (service_history_customers); dim_customers the customers
whose profile, purchases, warranty status on the new as-of date or service history changed
(dim_customers_to_refresh), and a post-hook sets every row's as-of date.
`dbt build --full-refresh` rebuilds everything from raw.
-#}

{#- ------------------------------------------------------------------------------ literals and clocks -#}

{#- The instant this dbt invocation started (one value for every model of the run). -#}
{% macro build_timestamp() -%}
    {{ instant_literal(run_started_at.isoformat()) }}
{%- endmacro %}

{#- An ISO-8601 instant with offset as a timestamp-with-time-zone literal. -#}
{% macro instant_literal(iso_text) -%}
    {{ return(adapter.dispatch('instant_literal')(iso_text)) }}
{%- endmacro %}

{% macro default__instant_literal(iso_text) -%}
    cast('{{ iso_text }}' as timestamp with time zone)
{%- endmacro %}

{% macro duckdb__instant_literal(iso_text) -%}
    cast('{{ iso_text }}' as timestamptz)
{%- endmacro %}

{% macro date_literal(value) -%}
    cast('{{ value }}' as date)
{%- endmacro %}

{#- Default 0: the watermark is exact. Loads and builds never interleave (one writer: the warehouse lock and the
    run queue's limit of one warehouse-writing run), every loaded row carries the instant of its load, and late
    records of old months arrive with a new _loaded_at. An overlap only re-derives rows that cannot have changed;
    set it (hours, fractions allowed) when files are loaded by hosts whose clocks may disagree. -#}
{% macro incremental_overlap_hours() -%}
    {{ return(var('incremental_overlap_hours', 0) | float) }}
{%- endmacro %}

{#- First value of the first row of a query (none when the query returns nothing / null). -#}
{% macro incremental_scalar(sql) -%}
    {%- set result = run_query(sql) -%}
    {%- if result is none or (result.rows | length) == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(result.rows[0][0]) }}
{%- endmacro %}

{#- ------------------------------------------------------------------------------------------ facts -#}

{#- The fact's watermark minus the overlap, as an instant literal; none on a full build. -#}
{% macro fact_refresh_since() -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set watermark = incremental_scalar('select max(_loaded_at) from ' ~ this) -%}
    {%- if watermark is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set since = watermark - modules.datetime.timedelta(hours=incremental_overlap_hours()) -%}
    {{ return(instant_literal(since.isoformat())) }}
{%- endmacro %}

{#- Technicians whose roster rows were loaded after `since`, with the first date the change can move a
    fact to another team: the changed version's valid_from, or 0001-01-01 when it is (or becomes) the
    technician's first version (which also covers the dates before its valid_from). -#}
{% macro roster_changes_since(since) -%}
    select
        technician_id,
        min(
            case when is_first_version then {{ date_literal('0001-01-01') }} else valid_from end
        ) as changed_from
    from (
        select
            technician_id,
            valid_from,
            loaded_at,
            valid_from = min(valid_from) over (partition by technician_id) as is_first_version
        from {{ ref('stg_technicians__roster') }}
    ) as roster_versions
    where loaded_at > {{ since }}
    group by technician_id
{%- endmacro %}

{#- Predicate on the staging rows (alias `staged`) of a fact: which records an incremental build re-derives.
    key: the record id; team_date: the local date the SCD2 team join uses (an expression on `staged`);
    gap_condition: a predicate on the existing fact rows that must be re-derived anyway (business hours
    the working calendar did not cover yet). -#}
{% macro fact_rows_to_refresh(key, team_date, since, gap_condition=none) -%}
    (
        staged.loaded_at > {{ since }}
        or exists (
            select 1
            from ({{ roster_changes_since(since) }}) as roster_changes
            where roster_changes.technician_id = staged.technician_id
                and {{ team_date }} >= roster_changes.changed_from
        )
        {%- if gap_condition %}
        or staged.{{ key }} in (select {{ key }} from {{ this }} where {{ gap_condition }})
        {%- endif %}
    )
{%- endmacro %}

{#- Record ids an incremental build of a fact must look at: a superset of the ids fact_rows_to_refresh keeps,
    cheap to compute, so that the staging SELECT (macros/staging_events.sql) ranks only their versions.
    ids with a raw version loaded after `since`; ids of existing fact rows (`this`, aliased `staged` so that
    `team_date` reads the same column) whose technician's roster changed on or before their team date; and
    existing rows matching `gap_condition`. A record not in `this` yet has all its versions loaded after
    `since`, so the first branch covers it. -#}
{% macro fact_keys_to_refresh(feed, key, team_date, since, gap_condition=none) -%}
    select {{ clean_text(key) }} from {{ source('raw', feed) }} where _loaded_at > {{ since }}
    union all
    select staged.{{ key }}
    from {{ this }} as staged
    inner join ({{ roster_changes_since(since) }}) as roster_changes
        on roster_changes.technician_id = staged.technician_id
        and {{ team_date }} >= roster_changes.changed_from
    {%- if gap_condition %}
    union all
    select {{ key }} from {{ this }} where {{ gap_condition }}
    {%- endif %}
{%- endmacro %}

{#- _built_at of a fact row: the run that changed it. A row re-derived without change (same winning
    version, same team and durations: e.g. inside the overlap window) keeps its earlier _built_at, so the
    period marts do not recompute its months again. -#}
{% macro fact_built_at(previous_alias, new_alias, key, compared_columns) -%}
    {{ fact_columns_built_at(previous_alias, new_alias, key, ['_loaded_at'] + compared_columns, '_built_at') }}
{%- endmacro %}

{#- The run that last changed any of `compared_columns` of a fact row. `column`: _built_at (fact_built_at), or a
    second watermark for the indicators of one period date only (its columns include the period date): a row
    whose newest version changed other columns keeps it, so the period marts do not recompute that date's month
    (a ticket created in May and resolved today: its first-response values, attributed to May, did not change). -#}
{% macro fact_columns_built_at(previous_alias, new_alias, key, compared_columns, column) -%}
    {%- if is_incremental() -%}
    case
        when {{ previous_alias }}.{{ key }} is not null
            {%- for compared in compared_columns %}
            and {{ previous_alias }}.{{ compared }} is not distinct from {{ new_alias }}.{{ compared }}
            {%- endfor %}
            then {{ previous_alias }}.{{ column }}
        else {{ build_timestamp() }}
    end
    {%- else -%}
    {{ build_timestamp() }}
    {%- endif -%}
{%- endmacro %}

{#- The _replaced_<date> column: the period date of the version this row replaces when it moved
    (kept across later rebuilds that do not move it again); null on a full build. -#}
{% macro replaced_date(new_date, previous_alias, column) -%}
    {%- if is_incremental() -%}
    case
        when {{ previous_alias }}.{{ column }} is distinct from {{ new_date }} then {{ previous_alias }}.{{ column }}
        else {{ previous_alias }}._replaced_{{ column }}
    end
    {%- else -%}
    cast(null as date)
    {%- endif -%}
{%- endmacro %}

{#- -------------------------------------------------------------------------------- touched periods -#}

{% macro month_add(day, months) -%}
    {%- set index = day.year * 12 + day.month - 1 + months -%}
    {{ return(modules.datetime.date(index // 12, index % 12 + 1, 1)) }}
{%- endmacro %}

{% macro to_date(value) -%}
    {%- if value is string -%}
        {{ return(modules.datetime.date.fromisoformat(value[:10])) }}
    {%- elif value is none -%}
        {{ return(none) }}
    {%- elif value.date is defined and value.hour is defined -%}
        {{ return(value.date()) }}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}

{#- The months of fact rows written since `since` (a timestamptz SQL expression), at every period date they
    count for now and the date of the version they replaced. Sorted list of datetime.date (first of month). -#}
{% macro fact_months_built_since(since) -%}
    {%- set tickets = ref('fct_service_tickets') -%}
    {%- set responses = ref('fct_survey_responses') -%}
    {%- set complaints = ref('fct_complaints') -%}
    {%- set reviews = ref('fct_supervisor_reviews') -%}
    {#- (fact, watermark column, period date columns): the created date of a ticket only drives
        first_response_time, so it has its own watermark (_created_built_at) -#}
    {%- set fact_dates = [
        (tickets, '_built_at', ['resolved_date', '_replaced_resolved_date']),
        (tickets, '_created_built_at', ['created_date', '_replaced_created_date']),
        (responses, '_built_at', ['responded_date', '_replaced_responded_date']),
        (complaints, '_built_at', ['received_date', '_replaced_received_date']),
        (reviews, '_built_at', ['period_start', '_replaced_period_start']),
    ] -%}
    {%- set branches = [] -%}
    {%- for relation, watermark, columns in fact_dates -%}
        {%- for column in columns -%}
            {%- do branches.append(
                "select distinct " ~ period_start('month', column) ~ " as month_start from " ~ relation
                ~ " where " ~ watermark ~ " > " ~ since ~ " and " ~ column ~ " is not null") -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- set months = [] -%}
    {%- for row in run_query(branches | join('\nunion\n')).rows -%}
        {%- do months.append(to_date(row[0])) -%}
    {%- endfor -%}
    {{ return(months | unique | sort) }}
{%- endmacro %}

{#- The first of the month of the latest period date of any fact, none when there are no facts. -#}
{% macro last_fact_month() -%}
    {%- set tickets = ref('fct_service_tickets') -%}
    {%- set last_fact = incremental_scalar(
        "select max(day) from (select max(resolved_date) as day from " ~ tickets
        ~ " union all select max(created_date) from " ~ tickets
        ~ " union all select max(responded_date) from " ~ ref('fct_survey_responses')
        ~ " union all select max(received_date) from " ~ ref('fct_complaints')
        ~ " union all select max(period_start) from " ~ ref('fct_supervisor_reviews') ~ ") as last_days") -%}
    {{ return(none if last_fact is none else month_add(to_date(last_fact), 0)) }}
{%- endmacro %}

{#- The months (first of month) from the month of `first` to the month of `last`, both included; none when `last`
    is none. -#}
{% macro months_from_to(first, last) -%}
    {%- set months = [] -%}
    {%- if last is not none -%}
        {%- set month = namespace(value=month_add(first, 0)) -%}
        {%- for _ in range(1200) if month.value <= month_add(last, 0) -%}
            {%- do months.append(month.value) -%}
            {%- set month.value = month_add(month.value, 1) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(months) }}
{%- endmacro %}

{#- The instant the change window starts from: var('change_window_since'), else SERVICESCORE_DBT_CHANGE_SINCE (the
    orchestration sets the environment, so the value never invalidates dbt's partial parse: see
    orchestration/transform.py dbt_build_args), as an instant literal; none (every period, every customer) on
    `--full-refresh`, when neither is set, and while parsing. A value that is not an ISO-8601 instant with offset
    fails the build naming where it came from. -#}
{% macro change_window_since() -%}
    {%- if not execute or flags.FULL_REFRESH -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set since = var('change_window_since', none) -%}
    {%- set source = "var('change_window_since')" -%}
    {%- if not since -%}
        {%- set since = env_var('SERVICESCORE_DBT_CHANGE_SINCE', '') | trim -%}
        {%- set source = 'SERVICESCORE_DBT_CHANGE_SINCE' -%}
    {%- endif -%}
    {%- if not since -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if not modules.re.fullmatch(
            '[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,6})?([+-][0-9]{2}:[0-9]{2}|Z)',
            since | string) -%}
        {{ exceptions.raise_compiler_error(source ~ " must be an ISO-8601 instant with offset, got '" ~ since ~ "'") }}
    {%- endif -%}
    {{ return(instant_literal((since | string).replace('Z', '+00:00'))) }}
{%- endmacro %}

{#- The change window's instant for a model keyed on something other than the period (the customer models):
    none, to recompute every row, on a model's first build. -#}
{% macro model_change_since() -%}
    {{ return(change_window_since() if is_incremental() else none) }}
{%- endmacro %}

{#- The months of this run's change window (int_change_window), or none for all of them (no instant: see
    change_window_since). Sorted list of datetime.date (first of month):
      1. months of fact rows written since the instant (_built_at), at every period date they count for now and
         the date of the version they replaced;
      2. roster changes loaded since then: every month with facts from the change on (valid_from, leave_date;
         hire_date for a new technician) - team at period end and the appraisal roster;
      3. the months whose complaint rate can have changed between measured and not measured since then: it is
         measured from the complaints feed's first month on (the coverage CTEs of the KPI marts), so a first
         complaint of May, arriving after June was built, makes June measured (0 complaints, not null) although
         no June fact changed;
      4. the months [var('period_from'), var('period_to')) passed by the orchestration.
    The ref()s come first so that the window depends on the facts and the roster whatever the instant. -#}
{% macro change_window_months(since) -%}
    {%- set complaints = ref('fct_complaints') -%}
    {%- set roster = ref('stg_technicians__roster') -%}
    {%- do ref('fct_service_tickets') -%}
    {%- do ref('fct_survey_responses') -%}
    {%- do ref('fct_supervisor_reviews') -%}
    {%- if since is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set months = fact_months_built_since(since) -%}

    {#- roster changes: from the earliest date they can affect to the last month with facts -#}
    {%- set roster_from = incremental_scalar(
        "select min(changed_from) from ("
        ~ " select least(valid_from, coalesce(leave_date, valid_from),"
        ~ " case when is_new then coalesce(hire_date, valid_from) else valid_from end) as changed_from"
        ~ " from (select *, min(loaded_at) over (partition by technician_id) > " ~ since ~ " as is_new"
        ~ " from " ~ roster ~ ") as versions where loaded_at > " ~ since ~ ") as changes") -%}
    {%- if roster_from is not none -%}
        {%- do months.extend(months_from_to(to_date(roster_from), last_fact_month())) -%}
    {%- endif -%}

    {#- the complaints feed's coverage: its first month at the last build was no earlier than the first month of
        the complaints now and of the versions replaced since (`earliest`), and no later than the first month of
        the complaints unchanged since (`unchanged`; none when every complaint is new or changed). Only the
        months in [earliest, unchanged) can have changed; none in the steady state (earliest = unchanged). -#}
    {%- set coverage = run_query(
        "select (select min(day) from (select received_date as day from " ~ complaints
        ~ " union all select _replaced_received_date from " ~ complaints ~ " where _built_at > " ~ since
        ~ ") as days), (select min(received_date) from " ~ complaints ~ " where _built_at <= " ~ since ~ ")"
    ).rows[0] -%}
    {%- set earliest, unchanged = to_date(coverage[0]), to_date(coverage[1]) -%}
    {%- if earliest is not none and unchanged is none -%}
        {%- do months.extend(months_from_to(earliest, last_fact_month())) -%}
    {%- elif earliest is not none and month_add(earliest, 0) < month_add(unchanged, 0) -%}
        {%- do months.extend(months_from_to(earliest, month_add(unchanged, -1))) -%}
    {%- endif -%}

    {#- the run's month window: --vars (dbt on the command line), or the environment the orchestration sets -#}
    {%- set period_from = var('period_from', none) or env_var('SERVICESCORE_DBT_PERIOD_FROM', '') -%}
    {%- set period_to = var('period_to', none) or env_var('SERVICESCORE_DBT_PERIOD_TO', '') -%}
    {%- if period_from and period_to -%}
        {%- set month = namespace(value=month_add(to_date(period_from), 0)) -%}
        {%- set end = to_date(period_to) -%}
        {%- for _ in range(1200) if month.value < end -%}
            {%- do months.append(month.value) -%}
            {%- set month.value = month_add(month.value, 1) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(months | unique | sort) }}
{%- endmacro %}

{#- The months the calling period mart recomputes: this run's change window (int_change_window), or none for all
    of them: not an incremental build, a full window, or a window this dbt run did not build (a selection
    without int_change_window: recomputing everything is always safe). The ref() comes first so that every
    period mart depends on the window. -#}
{% macro touched_months() -%}
    {%- set window = ref('int_change_window') -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set rows = run_query(
        "select is_full_build, month_start from " ~ window ~ " where built_at = " ~ build_timestamp()).rows -%}
    {%- if rows | length == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set months = [] -%}
    {%- for row in rows -%}
        {%- if row[0] -%}
            {{ return(none) }}
        {%- endif -%}
        {%- if row[1] is not none -%}
            {%- do months.append(to_date(row[1])) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(months | unique | sort) }}
{%- endmacro %}

{#- Months rolled up to a grain: the sorted distinct period starts; none stays none (all periods). -#}
{% macro roll_up_months(months, grain) -%}
    {%- if months is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set starts = [] -%}
    {%- for month in months -%}
        {%- if grain == 'month' -%}
            {%- do starts.append(month) -%}
        {%- elif grain == 'quarter' -%}
            {%- do starts.append(modules.datetime.date(month.year, ((month.month - 1) // 3) * 3 + 1, 1)) -%}
        {%- elif grain == 'year' -%}
            {%- do starts.append(modules.datetime.date(month.year, 1, 1)) -%}
        {%- else -%}
            {{ exceptions.raise_compiler_error("period grain must be month, quarter or year, not " ~ grain) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(starts | unique | sort) }}
{%- endmacro %}

{#- The period starts (datetime.date) of `grain` to recompute, or none for all. -#}
{% macro touched_period_starts(grain) -%}
    {{ return(roll_up_months(touched_months(), grain)) }}
{%- endmacro %}

{% macro _period_start_in(column, starts) -%}
    {%- if starts is none -%}
        1 = 1
    {%- elif starts | length == 0 -%}
        1 = 0
    {%- else -%}
        {{ column }} in ({% for start in starts %}{{ date_literal(start) }}{% if not loop.last %}, {% endif %}{% endfor %})
    {%- endif -%}
{%- endmacro %}

{#- Predicate on a date: its period of `grain` is one to recompute (1 = 1 on a full build).
    starts: touched_period_starts(grain) when the caller already has it (saves the look-up). -#}
{% macro touched_filter(grain, date_expression, starts='lookup') -%}
    {%- if starts == 'lookup' -%}
        {%- set starts = touched_period_starts(grain) -%}
    {%- endif -%}
    {%- if starts is none -%}
        1 = 1
    {%- elif grain == 'month' and date_expression == 'period_start' -%}
        {{ _period_start_in(date_expression, starts) }}
    {%- else -%}
        {{ _period_start_in(period_start(grain, date_expression), starts) }}
    {%- endif -%}
{%- endmacro %}

{#- Predicate on a row with period columns (period_type 'month' / 'quarter' / 'year', period_start).
    months: touched_months() when the caller already has it. -#}
{% macro touched_period_filter(period_type_column='period_type', period_start_column='period_start',
                               months='lookup') -%}
    {%- if months == 'lookup' -%}
        {%- set months = touched_months() -%}
    {%- endif -%}
    {%- if months is none -%}
        1 = 1
    {%- else -%}
        (
        {%- for grain in ['month', 'quarter', 'year'] %}
            ({{ period_type_column }} = '{{ grain }}'
                and {{ _period_start_in(period_start_column, roll_up_months(months, grain)) }})
            {%- if not loop.last %} or{% endif %}
        {%- endfor %}
        )
    {%- endif -%}
{%- endmacro %}

{#- The earliest date of a period to recompute (for range filters on facts); none for all. -#}
{% macro touched_from_date(months='lookup') -%}
    {%- if months == 'lookup' -%}
        {%- set months = touched_months() -%}
    {%- endif -%}
    {%- set starts = roll_up_months(months, 'year') -%}
    {%- if starts is none or starts | length == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(starts[0]) }}
{%- endmacro %}

{#- Pre-hook of a period mart: delete the periods about to be recomputed (also those that end up with no
    rows). grain: the mart's grain, or none for marts with a period_type column. -#}
{% macro delete_touched_periods(grain=none) -%}
    {%- if execute and is_incremental() -%}
        {%- set months = touched_months() -%}
        {%- if months is none -%}
    delete from {{ this }}
        {%- elif grain -%}
    delete from {{ this }} where {{ _period_start_in('period_start', roll_up_months(months, grain)) }}
        {%- else -%}
    delete from {{ this }} where {{ touched_period_filter(months=months) }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- The config of a period mart (call at the top of the model). grain: none for marts with period_type. -#}
{% macro period_mart_config(unique_key, grain=none) -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=unique_key,
        on_schema_change='fail',
        pre_hook=["{{ delete_touched_periods(" ~ ("'" ~ grain ~ "'" if grain else "none") ~ ") }}"],
    ) }}
    {%- do ref('int_change_window') -%}
{%- endmacro %}

{#- --------------------------------------------------------------------------------------- customers -#}

{#- Customers named by any raw version of the records (`feed`, record id `key`) whose cleaned ids the CTE or
    relation `changed` lists (column `key`): the customer a record has now and every one it had before (a ticket
    whose newest version names B instead of A changes A's counts too; raw keeps every version).
    The versions are found by their cleaned key, as the staging SELECT finds them, within two key ranges DuckDB
    checks on row-group statistics (dynamic filters), so only the row groups holding the ids of recent records
    are read instead of every key of every version being trimmed. Every version of a record r is r with spaces around it (DuckDB's trim removes spaces
    only): with a leading space it is in [' ', '!'), otherwise in [min(r), max(r || '!')) over the records
    looked up. -#}
{% macro raw_version_customers(feed, key, changed) -%}
    {%- for low, high in [
        ("(select min(" ~ key ~ ") from " ~ changed ~ ")", "(select max(" ~ key ~ " || '!') from " ~ changed ~ ")"),
        ("' '", "'!'"),
    ] %}
    select {{ clean_text('customer_id') }} as customer_id
    from {{ source('raw', feed) }}
    where {{ key }} >= {{ low }} and {{ key }} < {{ high }}
        and {{ clean_text(key) }} in (select {{ key }} from {{ changed }})
    {%- if not loop.last %}
    union
    {%- endif %}
    {%- endfor %}
{%- endmacro %}

{#- Customers whose service history (int_customer_service_history) can have changed since `since`: the customers
    of every ticket, complaint and survey response built after `since` (_built_at), now and in any raw version
    (raw_version_customers). One query of customer_id. -#}
{% macro service_history_customers(since) -%}
    {%- set facts = [
        (ref('fct_service_tickets'), 'tickets', 'ticket_id'),
        (ref('fct_complaints'), 'complaints', 'complaint_id'),
        (ref('fct_survey_responses'), 'surveys', 'response_id'),
    ] -%}
    {%- for fact, feed, key in facts %}
    select customer_id from (
        with changed as (
            select {{ key }}, customer_id from {{ fact }} where _built_at > {{ since }}
        )

        select customer_id from changed
        union
        {{ raw_version_customers(feed, key, 'changed') }}
    ) as {{ feed }}_customers
    {%- if not loop.last %}
    union
    {%- endif %}
    {%- endfor %}
{%- endmacro %}

{#- The date dim_customers evaluates warranties on: var('as_of_date'), else SERVICESCORE_AS_OF_DATE (the
    environment pins a whole pipeline run, which passes no --vars: a reproduction of a past state, or two runs
    that must agree whatever day they run on), else the day (session time zone) the dbt run started - one value
    for the model and its hooks. A value that is not YYYY-MM-DD fails the build naming where it came from. -#}
{% macro warranty_as_of() -%}
    {%- set pinned = var('as_of_date', none) -%}
    {%- set source = "var('as_of_date')" -%}
    {%- if not pinned -%}
    {%- set pinned = env_var('SERVICESCORE_AS_OF_DATE', '') | trim -%}
    {%- set source = 'SERVICESCORE_AS_OF_DATE' -%}
    {%- endif -%}
    {%- if pinned -%}
    {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', pinned | string) -%}
    {{ exceptions.raise_compiler_error(source ~ " must be a date YYYY-MM-DD, got '" ~ pinned ~ "'") }}
    {%- endif -%}
    cast('{{ pinned }}' as date)
    {%- else -%}
    cast({{ build_timestamp() }} as date)
    {%- endif -%}
{%- endmacro %}

{#- Raw rows loaded after `since` (a dbt run's start, on the loaders' clock: minus the overlap, see
    incremental_overlap_hours). -#}
{% macro loaded_after(since) -%}
    _loaded_at > {{ since }} - to_microseconds({{ (incremental_overlap_hours() * 3600000000) | int }})
{%- endmacro %}

{#- dim_customers' instant (model_change_since), or none to recompute every customer: also when the profile stored
    for a customer whose raw record did not change since differs from the one recomputed now (the pseudonym key
    was rotated, var('timezone') or the masking changed: no row keeps a stale pseudonym or time). -#}
{% macro dim_customers_since() -%}
    {%- set since = model_change_since() -%}
    {%- if since is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set columns = ['customer_name_masked', 'phone_pseudonym', 'city', 'segment', 'created_at'] -%}
    {%- set check -%}
        with sample as (
            select customer_id, {{ columns | join(', ') }}
            from {{ this }} as stored
            where phone_pseudonym is not null and created_at is not null
                and not exists (
                    select 1 from {{ source('raw', 'customers') }}
                    where {{ loaded_after(since) }} and {{ clean_text('customer_id') }} = stored.customer_id
                )
            limit 1
        )

        select count(*)
        from sample
        left join ({{ stg_customers__customers_select('select customer_id from sample') }}) as fresh
            on sample.customer_id = fresh.customer_id
        where {% for column in columns %}sample.{{ column }} is distinct from fresh.{{ column }}
            {%- if not loop.last %} or {% endif %}{% endfor %}
    {%- endset -%}
    {%- if incremental_scalar(check) -%}
        {{ log(this.identifier ~ ": a stored profile differs from raw (pseudonym key, time zone or masking changed?):"
               ~ " every customer is recomputed", info=True) }}
        {{ return(none) }}
    {%- endif -%}
    {{ return(since) }}
{%- endmacro %}

{#- Customers whose dim_customers row can have changed since `since` (its last build), besides the as-of date of
    every row (a post-hook sets it): one query of customer_id.
      * profile: a raw customers version loaded since;
      * purchases: the customers of every raw version of a purchase with a version loaded since (new and old owner);
      * warranty status: a raw purchase version whose warranty ends between the as-of dates stored and `as_of`
        (a purchase active on one and not on the other);
      * service history: stored counts that differ from int_customer_service_history (`service_history`). -#}
{% macro dim_customers_to_refresh(since, as_of, service_history) -%}
    {%- set counts = ['tickets_count', 'complaints_count', 'survey_responses_count'] -%}
    select {{ clean_text('customer_id') }} as customer_id
    from {{ source('raw', 'customers') }}
    where {{ loaded_after(since) }}
    union
    select customer_id from (
        with changed as (
            select {{ clean_text('purchase_id') }} as purchase_id
            from {{ source('raw', 'purchases') }}
            where {{ loaded_after(since) }}
        )

        {{ raw_version_customers('purchases', 'purchase_id', 'changed') }}
    ) as purchase_customers
    union
    select {{ clean_text('customer_id') }} as customer_id
    from {{ source('raw', 'purchases') }}
    where warranty_until >= (select least(min(warranty_as_of_date), {{ as_of }}) from {{ this }})
        and warranty_until < (select greatest(max(warranty_as_of_date), {{ as_of }}) from {{ this }})
    union
    select stored.customer_id
    from {{ this }} as stored
    left join {{ service_history }} as history
        on stored.customer_id = history.customer_id
    where stored.last_service_at is distinct from history.last_service_at
        or stored.mean_satisfaction is distinct from history.mean_satisfaction
        {%- for column in counts %}
        or stored.{{ column }} <> coalesce(history.{{ column }}, 0)
        {%- endfor %}
{%- endmacro %}
