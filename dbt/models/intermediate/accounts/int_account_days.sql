-- One row per day of the lake's events: the feature rows' cut (ets = day + 1 at 00:00 UTC) and the
-- start of their trailing window (ets - account_window_days).
with bounds as (

    select
        cast(cast(min(event_at) as date) as timestamp) as lo,
        cast(cast(max(event_at) as date) as timestamp) as hi
    from {{ ref('stg_lake__events') }}

),

series as (

    select unnest(generate_series(lo, hi, interval 1 day)) as d
    from bounds

)

select
    cast(d as date) as day,
    cast(d + interval 1 day as timestamptz) as ets,
    cast(d + interval 1 day - interval {{ vigil.account_window_days() }} day as timestamptz) as wstart
from series
