{#-
  One row per (user, UTC day): the number of distinct minutes in which the user did anything.
  Incremental by day: a run (re)computes only the days that are new or whose lake partition grew
  since they were processed (late events), and replaces those days whole
  (DuckDB: delete+insert on activity_date; Spark: insert_overwrite of the activity_date partitions),
  so a re-processed day is never double-counted and an unchanged lake touches nothing.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy=('insert_overwrite' if target.type == 'spark' else 'delete+insert'),
    unique_key=(none if target.type == 'spark' else ['activity_date']),
    partition_by=(['activity_date'] if target.type == 'spark' else none),
    file_format=('parquet' if target.type == 'spark' else none),
    on_schema_change='fail',
) }}

{%- set days_to_process = [] -%}
{%- if execute and is_incremental() -%}
    {%- set changed_days_query -%}
        select cast(partitions.event_date as string) as event_date
        from {{ ref('stg_lake__event_partitions') }} as partitions
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
    {%- set days_to_process = run_query(changed_days_query).columns[0].values() | list -%}
    {{ log("int_user_active_minutes_daily: " ~ (days_to_process | length) ~ " day(s) to (re)process: " ~ (days_to_process | join(', ')), info=true) }}
{%- endif %}

with activity as (

    select * from {{ ref('stg_lake__event_activity') }}
    {% if is_incremental() -%}
    where event_date in (
        {%- for day in days_to_process %}cast('{{ day }}' as date){{ ', ' if not loop.last }}{% endfor -%}
        {%- if not days_to_process %}null{% endif -%}
    )
    {%- endif %}

),

partitions as (

    select * from {{ ref('stg_lake__event_partitions') }}

),

minutes as (

    select
        user_id,
        cast(event_at as date) as activity_date,
        {{ vigil.epoch_minute('event_at') }} as active_minute
    from activity

),

daily as (

    select
        user_id,
        activity_date,
        count(distinct active_minute) as active_minutes
    from minutes
    group by user_id, activity_date

),

final as (

    -- activity_date last: Spark wants partition columns at the end
    select
        daily.user_id,
        daily.active_minutes,
        coalesce(partitions.row_count, 0) as partition_rows,
        daily.activity_date
    from daily
    left join partitions
        on partitions.event_date = daily.activity_date

)

select * from final
