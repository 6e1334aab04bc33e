-- Feast feature table: per user and UTC day D, the user's activity as of D + 1 day 00:00 UTC.
-- Rows run from the user's first active day to the last lake day; once a user has been inactive
-- for 30 days one row with zeros is kept (so a point-in-time join sees the drop) and later all-zero
-- rows are left out.
with daily as (

    select * from {{ ref('int_user_active_minutes_daily') }}

),

calendar as (

    select * from {{ ref('int_calendar_days') }}

),

first_active as (

    select user_id, min(activity_date) as first_date
    from daily
    group by user_id

),

user_days as (

    select
        first_active.user_id,
        calendar.calendar_date
    from first_active
    inner join calendar
        on calendar.calendar_date >= first_active.first_date

),

dense as (

    select
        user_days.user_id,
        user_days.calendar_date,
        coalesce(daily.active_minutes, 0) as active_minutes
    from user_days
    left join daily
        on daily.user_id = user_days.user_id
        and daily.activity_date = user_days.calendar_date

),

rolling as (

    select
        user_id,
        calendar_date,
        sum(active_minutes) over last_30_days as uam_30d,
        sum(case when active_minutes > 0 then 1 else 0 end) over last_30_days as active_days_30d,
        active_minutes as uam_1d
    from dense
    window last_30_days as (
        partition by user_id order by calendar_date rows between 29 preceding and current row
    )

),

with_previous as (

    select
        *,
        lag(uam_30d) over (partition by user_id order by calendar_date) as previous_uam_30d
    from rolling

),

final as (

    select
        user_id,
        {{ vigil.day_start(vigil.add_days('calendar_date', 1)) }} as event_timestamp,
        cast(uam_30d as bigint) as uam_30d,
        cast(active_days_30d as bigint) as active_days_30d,
        cast(uam_1d as bigint) as uam_1d
    from with_previous
    where uam_30d > 0
        or coalesce(previous_uam_30d, 0) > 0

)

select * from final
