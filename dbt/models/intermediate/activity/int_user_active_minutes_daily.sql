{#-
  One row per (user, UTC day): the number of distinct minutes in which the user did anything.
  Incremental by day: a run (re)computes only the days that are new or whose lake partition grew
  since they were processed (late events), and replaces those days whole
  (DuckDB: delete+insert on activity_date; Spark: insert_overwrite of the activity_date partitions),
  so a re-processed day is never double-counted and an unchanged lake touches nothing.

  Speed: the days to compute (all of them on a full refresh) are listed first, with their
  partition row counts, by `vigil.uam_days_to_process()`; then each day is one branch of a
  UNION ALL that reads only its own lake partition (`vigil.event_activity_of_day`: on DuckDB the
  day's Parquet file itself, twice as fast as filtering the hive-partitioned glob and without
  its spilling) and counts distinct integer minutes per user. One day's hash table is 1/30 of
  the window's: memory follows a day's volume, not the lake's, so 300M events run in 1GB of
  memory_limit without spilling (docs/warehouse.md, "Volumes larger than memory"). The lake
  contract puts every event in the partition of its event_ts day, so the partition's day is the
  activity day. The row count is a literal: the partitions table is read once, not joined back.

  On DuckDB the model of the same name in duckdb/ (Python: engine `auto` counts each day with
  numpy over the lake's sort order, see vigil/uam/daily.py) runs instead, unless
  --vars '{uam_daily_engine: sql}' selects this one; both are tested to agree.
-#}
{{ config(
    enabled=(target.type != 'duckdb' or var('uam_daily_engine', 'auto') == 'sql'),
    materialized='incremental',
    incremental_strategy=('insert_overwrite' if target.type == 'spark' else 'delete+insert'),
    unique_key=(none if target.type == 'spark' else ['activity_date']),
    partition_by=(['activity_date'] if target.type == 'spark' else none),
    file_format=('parquet' if target.type == 'spark' else none),
    on_schema_change='fail',
    pre_hook=["{{ vigil.forget_uam_daily_days() }}"],
) }}

-- depends_on: {{ ref('stg_lake__event_activity') }}
-- depends_on: {{ ref('stg_lake__event_partitions') }}
{%- set days = uam_days_to_process() if execute else [] %}

{% if days | length == 0 -%}
-- nothing to (re)compute: an empty result with the table's columns
select
    cast(null as bigint) as user_id,
    cast(null as bigint) as active_minutes,
    cast(null as bigint) as partition_rows,
    cast(null as date) as activity_date
from {{ ref('stg_lake__event_partitions') }}
where 1 = 0
{%- else -%}
{%- for day in days %}
{{ 'union all' if not loop.first }}
-- {{ day[0] }}: {{ day[1] }} lake rows
select
    user_id,
    count(distinct {{ vigil.epoch_minute('event_at') }}) as active_minutes,
    cast({{ day[1] }} as bigint) as partition_rows,
    cast('{{ day[0] }}' as date) as activity_date
from {{ vigil.event_activity_of_day(day[0]) }}
group by user_id
{%- endfor %}
{%- endif %}
