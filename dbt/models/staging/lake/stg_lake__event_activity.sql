-- The (user, time) activity stream for User Active Minutes: every event row, duplicates kept.
-- A duplicate repeats its original's user and timestamp, so it falls into a minute that is counted
-- already: distinct-minute counts need no dedupe, and skipping the event_id window keeps the UAM
-- models at the speed of a plain scan (see bench/bench_uam.py).
with source as (

    select * from {{ source('lake', 'events') }}

),

final as (

    select
        cast(user_id as bigint) as user_id,
        cast(event_ts as {{ vigil.timestamp_type() }}) as event_at,
        cast(dt as date) as event_date
    from source

)

select * from final
