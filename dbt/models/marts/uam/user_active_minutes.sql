-- Per user: User Active Minutes over the 30 UTC days ending on `as_of` (inclusive; default: the
-- latest day in the lake). Days are disjoint sets of minutes, so the 30-day UAM is a sum of days.
-- Users without activity in the window have no row.
-- Speed (DuckDB): with as_of given (as the daily DAG and `vigil uam --as-of` do) the window is a
-- literal range, so user_id keeps its min/max statistics through the filter and, for ids spanning
-- up to 2^22 values, DuckDB sums into a perfect hash table (an array indexed by user_id) instead of
-- a general hash table: ~4x faster, the larger part of a one-new-day run. Sparse ids fall back to
-- the hash table; the setting is reset after the model.
-- Daily runs (DuckDB): when the only days written since the table was built lie after its as_of A,
-- the window moves from A to B by a delta: old totals - the days that left + the days that entered
-- (`vigil.uam_window_delta`, state in user_active_minutes__state), reading 1-2 days of daily rows
-- instead of 30. Anything else (a late day inside the old window, as_of moving back or by 30+ days,
-- a full refresh, Spark) re-sums the window.
{{ config(
    pre_hook=(["set perfect_ht_threshold = 22"] if target.type == 'duckdb' else []),
    post_hook=(["reset perfect_ht_threshold", "{{ vigil.record_uam_state() }}"]
               if target.type == 'duckdb' else []),
) }}
{%- set as_of = vigil.as_of_literal() %}
{%- set delta = vigil.uam_window_delta(as_of) %}

with daily as (

    select * from {{ ref('int_user_active_minutes_daily') }}

),

partitions as (

    select * from {{ ref('stg_lake__event_partitions') }}

),

{% if delta -%}
{%- set a = "cast('" ~ delta[0] ~ "' as date)" %}
{%- set b = "cast('" ~ delta[1] ~ "' as date)" %}
windowed as (

    select
        user_id,
        {{ b }} as as_of,
        sum(uam) as uam
    from (
        select user_id, uam from {{ this }}
        union all
        select user_id, -active_minutes as uam
        from daily
        where activity_date between {{ vigil.add_days(a, -29) }} and {{ vigil.add_days(b, -30) }}
        union all
        select user_id, active_minutes as uam
        from daily
        where activity_date between {{ vigil.add_days(a, 1) }} and {{ b }}
    ) as moved
    group by user_id

),
{%- elif as_of -%}
windowed as (

    select
        user_id,
        {{ as_of }} as as_of,
        sum(active_minutes) as uam
    from daily
    where activity_date between {{ vigil.add_days(as_of, -29) }} and {{ as_of }}
    group by user_id

),
{%- else -%}
as_of_day as (

    select max(event_date) as as_of
    from partitions

),

windowed as (

    select
        daily.user_id,
        as_of_day.as_of,
        sum(daily.active_minutes) as uam
    from daily
    cross join as_of_day
    where daily.activity_date <= as_of_day.as_of
        and daily.activity_date >= {{ vigil.add_days('as_of_day.as_of', -29) }}
    group by daily.user_id, as_of_day.as_of

),
{%- endif %}

final as (

    select
        user_id,
        as_of,
        cast(uam as bigint) as uam
    from windowed
    where uam > 0

)

select * from final
