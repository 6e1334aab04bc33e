-- Per user: User Active Minutes over the 30 UTC days ending on `as_of` (inclusive; default: the
-- latest day in the lake). Days are disjoint sets of minutes, so the 30-day UAM is a sum of days.
-- Users without activity in the window have no row.
with daily as (

    select * from {{ ref('int_user_active_minutes_daily') }}

),

partitions as (

    select * from {{ ref('stg_lake__event_partitions') }}

),

as_of_day as (

    {% set as_of = vigil.as_of_literal() -%}
    {% if as_of -%}
    select {{ as_of }} as as_of
    {%- else -%}
    select max(event_date) as as_of
    from partitions
    {%- endif %}

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

final as (

    select
        user_id,
        as_of,
        cast(uam as bigint) as uam
    from windowed
    where uam > 0

)

select * from final
