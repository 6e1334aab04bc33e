{#- Validated project variables. -#}

{# uam_histogram's bucket width S in minutes: a positive integer, or a clear error. #}
{% macro uam_interval() %}
  {%- set raw = var('uam_interval', 1) -%}
  {%- set text = (raw | string) | trim -%}
  {%- if raw is boolean or not modules.re.fullmatch('[0-9]+', text) or (text | int) < 1 -%}
    {{ exceptions.raise_compiler_error(
        "var uam_interval must be a positive integer number of minutes (got " ~ (raw | tojson) ~ "): pass e.g. --vars '{uam_interval: 5}'") }}
  {%- endif -%}
  {{ return(text | int) }}
{% endmacro %}

{# The UAM window's last day as a SQL date literal, or none (= latest day in the lake). #}
{% macro as_of_literal() %}
  {%- set raw = (var('as_of', '') or '') | string | trim -%}
  {%- if raw in ('', 'none', 'None', 'latest') -%}{{ return(none) }}{%- endif -%}
  {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', raw) -%}
    {{ exceptions.raise_compiler_error("var as_of must be a date YYYY-MM-DD (got " ~ (raw | tojson) ~ ")") }}
  {%- endif -%}
  {{ return("cast('" ~ raw ~ "' as date)") }}
{% endmacro %}

{# Bayesian prior strength (pseudo-views): a positive number. #}
{% macro prior_views() %}
  {%- set raw = var('prior_views', 100) | string -%}
  {%- if not modules.re.fullmatch('[0-9]+([.][0-9]+)?', raw) or (raw | float) <= 0 -%}
    {{ exceptions.raise_compiler_error("var prior_views must be a positive number (got " ~ raw ~ ")") }}
  {%- endif -%}
  {{ return(raw | float) }}
{% endmacro %}

{# The shrunk rate (successes + m * prior_rate) / (trials + m): defined at zero trials. #}
{% macro bayes_rate(successes, trials, prior_rate, m) -%}
  (({{ successes }}) + {{ m }} * coalesce({{ prior_rate }}, 0.0)) / (({{ trials }}) + {{ m }})
{%- endmacro %}

{# Replies whose text signals disgust (docs/warehouse.md, "Feature tables"): whole-word match. #}
{% macro disgust_pattern() -%}
(^|[^a-z])(gross|grossed|disgusting|disgusted|disgust|ew|eww|ewww|vile|revolting|repulsive|repugnant|nauseating|nauseous|sickening|yuck|yuk|icky|foul|creepy|horrid|abhorrent|appalling|barf)([^a-z]|$)
{%- endmacro %}

{# int_user_active_minutes_daily: the days to (re)compute as [["YYYY-MM-DD", row_count], ...],
   oldest first. Full refresh: every lake day partition. Incremental: the days that are new, or
   whose partition's row count differs from the one recorded when the day was processed (late
   events; ingest only appends). Unit tests override this macro with fixed days. #}
{% macro uam_days_to_process() %}
  {%- set partitions = ref('stg_lake__event_partitions') -%}
  {%- if is_incremental() -%}
    {%- set query -%}
      select cast(partitions.event_date as string) as event_date, partitions.row_count
      from {{ partitions }} as partitions
      left join (
          select activity_date, max(partition_rows) as partition_rows
          from {{ this }}
          group by activity_date
      ) as processed
          on processed.activity_date = partitions.event_date
      where processed.partition_rows is null
          or processed.partition_rows <> partitions.row_count
      order by 1
    {%- endset -%}
  {%- else -%}
    {%- set query -%}
      select cast(event_date as string) as event_date, row_count
      from {{ partitions }}
      order by 1
    {%- endset -%}
  {%- endif -%}
  {%- set rows = run_query(query).rows -%}
  {%- set days = [] -%}
  {%- for row in rows -%}
    {%- do days.append([row[0] | string, row[1] | int]) -%}
  {%- endfor -%}
  {{ log("int_user_active_minutes_daily: " ~ (days | length) ~ " day(s) to "
         ~ ("(re)process" if is_incremental() else "compute (full refresh)") ~ ": "
         ~ (days | map('first') | join(', ')), info=true) }}
  {{ return(days) }}
{% endmacro %}

{# stg_lake__event_activity restricted to one lake day partition (day: 'YYYY-MM-DD'), as a relation
   for `from`. DuckDB reads that day's Parquet file directly, with the staging view's columns and
   casts: filtering the view's hive-partitioned glob on dt costs twice the time and spills (see
   docs/warehouse.md, "Volumes larger than memory"). Spark, and dbt unit tests (whose inputs are
   CTEs named __dbt__cte__...), filter the staging relation on event_date. #}
{% macro event_activity_of_day(day) %}
  {%- set activity = ref('stg_lake__event_activity') -%}
  {%- if target.type == 'duckdb' and not ((activity | string).startswith('__dbt__cte__')) -%}
    {%- set lake = env_var('VIGIL_DBT_LAKE', env_var('VIGIL_HOME', 'data') ~ '/lake') -%}
(
    select
        cast(user_id as bigint) as user_id,
        cast(event_ts as {{ vigil.timestamp_type() }}) as event_at,
        cast('{{ day }}' as date) as event_date
    from read_parquet('{{ lake }}/events/dt={{ day }}/events.parquet')
) as activity
  {%- else -%}
(
    select * from {{ activity }}
    where event_date = cast('{{ day }}' as date)
) as activity
  {%- endif -%}
{% endmacro %}

{# After an incremental run of a Python model, drop the table dbt-duckdb 1.11 staged the model's
   DataFrame in: it writes it as a regular table in the main schema but treats it as a temporary
   one and never drops it (one leftover table per run, holding the run's rows). #}
{% macro python_model_staging_tables() %}
  {{ return(run_query(
      "select table_schema, table_name from information_schema.tables "
      ~ "where table_catalog = current_database() and table_name like '"
      ~ this.identifier ~ "__dbt_tmp%'").rows) }}
{% endmacro %}

{% macro drop_python_model_staging_tables() %}
  {%- if execute and target.type == 'duckdb' -%}
    {%- set rows = vigil.python_model_staging_tables() -%}
    {%- for row in rows %}
drop table if exists "{{ row[0] }}"."{{ row[1] }}";
    {%- endfor %}
  {%- endif %}
select 1
{%- endmacro %}

{# ---------------------------------------------------------------------------------------------
   Cheap daily UAM updates on DuckDB. `<daily>__days` (one row per activity_date: the lake rows the
   day was computed from, and when it was written) is maintained by the Python daily model in the
   same transaction as its rows (post-hook below). It replaces the scan of the whole daily table
   when listing changed days, and tells user_active_minutes which days changed since it was built,
   so that a run that only adds new days moves the 30-day window by a delta (old totals - expired
   days + new days) instead of re-summing 30 days. The SQL daily model drops the table (it does not
   maintain it), which sends both back to the full computation. #}

{# whether a table exists, asked of DuckDB itself (dbt's relation cache does not see tables that
   hooks created during the run) #}
{% macro duckdb_table_exists(relation) %}
  {%- set rows = run_query(
      "select count(*) from information_schema.tables where table_catalog = current_database() "
      ~ "and table_schema = '" ~ relation.schema ~ "' and table_name = '" ~ relation.identifier ~ "'"
  ).rows -%}
  {{ return(rows[0][0] > 0) }}
{% endmacro %}

{% macro uam_daily_days_relation() %}
  {%- set daily = ref('int_user_active_minutes_daily') -%}
  {{ return(api.Relation.create(database=daily.database, schema=daily.schema,
                                identifier=daily.identifier ~ '__days')) }}
{% endmacro %}

{# post-hook of the Python daily model, inside its transaction #}
{% macro record_uam_daily_days() %}
  {%- if execute and target.type == 'duckdb' -%}
    {%- set days = this.incorporate(path={'identifier': this.identifier ~ '__days'}) -%}
    {%- set staged = vigil.python_model_staging_tables() -%}
    {%- set have_days = vigil.duckdb_table_exists(days) -%}
    {%- if is_incremental() and have_days and staged | length == 1 -%}
      {%- set rows = '"' ~ staged[0][0] ~ '"."' ~ staged[0][1] ~ '"' %}
delete from {{ days }} where activity_date in (select activity_date from {{ rows }});
insert into {{ days }}
select activity_date, max(partition_rows), now() from {{ rows }} group by activity_date
    {%- else %}
create or replace table {{ days }} as
select activity_date, max(partition_rows) as partition_rows, now() as written_at
from {{ this }} group by activity_date
    {%- endif -%}
  {%- else %}
select 1
  {%- endif -%}
{% endmacro %}

{# pre-hook of the SQL daily model: it does not maintain the table, so none may be trusted #}
{% macro forget_uam_daily_days() %}
  {%- if target.type == 'duckdb' -%}
drop table if exists {{ this.incorporate(path={'identifier': this.identifier ~ '__days'}) }}
  {%- else -%}
select 1
  {%- endif -%}
{% endmacro %}

{# user_active_minutes: [A, B] (dates as 'YYYY-MM-DD') when the window can move from the built
   table's as_of A to B by a delta, else none (full sum). Conditions: DuckDB, not a unit test or a
   full refresh; the table, its state (A, and the newest daily write it has seen) and the days
   table exist; A <= B < A + 30; and every daily day written since lies after A (a re-computed day
   inside the old window would need its old counts, which delete+insert has replaced). #}
{% macro uam_window_delta(as_of) %}
  {%- set daily = ref('int_user_active_minutes_daily') -%}
  {%- if not execute or target.type != 'duckdb' or (daily | string).startswith('__dbt__cte__')
         or flags.FULL_REFRESH -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set state = this.incorporate(path={'identifier': this.identifier ~ '__state'}) -%}
  {%- set days = vigil.uam_daily_days_relation() -%}
  {%- if not (vigil.duckdb_table_exists(this) and vigil.duckdb_table_exists(state)
              and vigil.duckdb_table_exists(days)) -%}
    {{ log("user_active_minutes: full 30-day sum (no delta state yet)", info=true) }}
    {{ return(none) }}
  {%- endif -%}
  {%- if as_of -%}
    {%- set b_expr = as_of -%}
  {%- else -%}
    {%- set b_expr = "(select max(event_date) from " ~ ref('stg_lake__event_partitions') ~ ")" -%}
  {%- endif -%}
  {%- set query -%}
    select
        cast(state.as_of as varchar),
        cast({{ b_expr }} as varchar),
        (select cast(min(activity_date) as varchar) from {{ days }}
         where written_at > state.built_at),
        cast({{ b_expr }} - state.as_of as integer),
        state.built_at is null
    from {{ state }} as state
  {%- endset -%}
  {%- set rows = run_query(query).rows -%}
  {#- no state, no as_of (empty table), no daily write seen (built without the days table) -#}
  {%- if rows | length != 1 or rows[0][0] is none or rows[0][1] is none or rows[0][4] -%}
    {{ log("user_active_minutes: full 30-day sum (no delta state yet)", info=true) }}
    {{ return(none) }}
  {%- endif -%}
  {%- set a, b, first_changed, shift = rows[0][0], rows[0][1], rows[0][2], rows[0][3] -%}
  {%- if shift < 0 or shift >= 30 or (first_changed is not none and first_changed <= a) -%}
    {{ log("user_active_minutes: full 30-day sum (window " ~ a ~ " -> " ~ b ~ ", first day written since: "
           ~ first_changed ~ ")", info=true) }}
    {{ return(none) }}
  {%- endif -%}
  {{ log("user_active_minutes: window moved by delta " ~ a ~ " -> " ~ b, info=true) }}
  {{ return([a, b]) }}
{% endmacro %}

{# post-hook of user_active_minutes, inside its transaction: what the table was built from #}
{% macro record_uam_state() %}
  {%- if execute and target.type == 'duckdb' -%}
    {%- set days = vigil.uam_daily_days_relation() -%}
create or replace table {{ this.incorporate(path={'identifier': this.identifier ~ '__state'}) }} as
select
    (select max(as_of) from {{ this }}) as as_of,
    {% if vigil.duckdb_table_exists(days) -%}
    (select max(written_at) from {{ days }})
    {%- else -%}
    cast(null as timestamptz)
    {%- endif %} as built_at
  {%- else %}
select 1
  {%- endif -%}
{% endmacro %}
