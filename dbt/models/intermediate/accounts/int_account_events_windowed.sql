-- Each event joined to the days whose window [wstart, ets) holds it, with the account's previous
-- event time (over all its events) for the cadence gaps.
with events as (

    select
        event_id,
        event_at as event_ts,
        user_id,
        action,
        post_id,
        target_user_id,
        event_text as text,
        country_code as country,
        lag(event_at) over (partition by user_id order by event_at, event_id) as prev_ts
    from {{ ref('stg_lake__events') }}

)

select
    days.day,
    days.ets,
    days.wstart,
    events.*
from events
inner join {{ ref('int_account_days') }} as days
    on events.event_ts >= days.wstart and events.event_ts < days.ets
