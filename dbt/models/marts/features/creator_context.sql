{#-
  Feast feature table: per user and UTC day D, what the user's content and account received,
  as of D + 1 day 00:00 UTC (every count covers events with event_ts before that instant).

  Bayesian-averaged rates (docs/warehouse.md, "Bayesian averaging"): rate = (x + m * p) / (views + m) where
  x is the 30-day count received, views the 30-day views received, m = var('prior_views') (100)
  pseudo-views and p the platform-wide ratio over the same 30 days (computed only from events before
  the snapshot, so no future leaks in). Dividing by views received normalizes for activity, and
  because the window cannot reach before the account existed, for account age as well: a 2-day-old
  account with 50 views and a 3-year-old one with 50 views get the same shrinkage.
-#}
{%- set m = vigil.prior_views() %}

with users as (

    select * from {{ ref('stg_lake__users') }}

),

calendar as (

    select * from {{ ref('int_calendar_days') }}

),

received as (

    select * from {{ ref('int_creator_received_daily') }}

),

logins as (

    select * from {{ ref('int_user_login_countries_daily') }}

),

posts as (

    select * from {{ ref('int_posts_created') }}

),

labels as (

    select * from {{ ref('stg_lake__labels') }}

),

user_days as (

    select
        users.user_id,
        users.created_at,
        calendar.calendar_date,
        {{ vigil.day_start(vigil.add_days('calendar.calendar_date', 1)) }} as event_timestamp
    from users
    cross join calendar
    where users.created_at < {{ vigil.day_start(vigil.add_days('calendar.calendar_date', 1)) }}

),

dense as (

    select
        user_days.user_id,
        user_days.created_at,
        user_days.calendar_date,
        user_days.event_timestamp,
        coalesce(received.reports, 0) as reports,
        coalesce(received.dislikes, 0) as dislikes,
        coalesce(received.blocks, 0) as blocks,
        coalesce(received.mutes, 0) as mutes,
        coalesce(received.shares, 0) as shares,
        coalesce(received.views, 0) as views,
        coalesce(received.posts, 0) as posts
    from user_days
    left join received
        on received.user_id = user_days.user_id
        and received.activity_date = user_days.calendar_date

),

-- posts authored before the first calendar day (none while the lake holds every day since launch)
earlier_posts as (

    select posts.author_id as user_id, count(*) as posts
    from posts
    cross join (select min(calendar_date) as first_date from calendar) as first_day
    where cast(posts.created_at as date) < first_day.first_date
    group by posts.author_id

),

rolling as (

    select
        user_id,
        created_at,
        calendar_date,
        event_timestamp,
        sum(reports) over last_7_days as reports_received_7d,
        sum(reports) over last_30_days as reports_received_30d,
        sum(dislikes) over last_7_days as dislikes_received_7d,
        sum(dislikes) over last_30_days as dislikes_received_30d,
        sum(blocks) over last_7_days as blocks_received_7d,
        sum(blocks) over last_30_days as blocks_received_30d,
        sum(mutes) over last_7_days as mutes_received_7d,
        sum(mutes) over last_30_days as mutes_received_30d,
        sum(shares) over last_7_days as shares_received_7d,
        sum(shares) over last_30_days as shares_received_30d,
        sum(views) over last_30_days as views_received_30d,
        sum(posts) over last_30_days as posts_authored_30d,
        sum(posts) over (
            partition by user_id order by calendar_date rows between unbounded preceding and current row
        ) as posts_authored_in_lake
    from dense
    window
        last_7_days as (partition by user_id order by calendar_date rows between 6 preceding and current row),
        last_30_days as (partition by user_id order by calendar_date rows between 29 preceding and current row)

),

platform_daily as (

    select
        calendar.calendar_date,
        coalesce(sum(received.reports), 0) as reports,
        coalesce(sum(received.dislikes), 0) as dislikes,
        coalesce(sum(received.blocks), 0) as blocks,
        coalesce(sum(received.views), 0) as views
    from calendar
    left join received
        on received.activity_date = calendar.calendar_date
    group by calendar.calendar_date

),

platform_rates as (

    -- the prior p: platform-wide ratios over the 30 days ending on the snapshot day
    select
        calendar_date,
        sum(reports) over last_30_days / nullif(sum(views) over last_30_days, 0) as report_rate,
        sum(dislikes) over last_30_days / nullif(sum(views) over last_30_days, 0) as dislike_rate,
        sum(blocks) over last_30_days / nullif(sum(views) over last_30_days, 0) as block_rate
    from platform_daily
    window last_30_days as (order by calendar_date rows between 29 preceding and current row)

),

login_countries as (

    select
        user_days.user_id,
        user_days.calendar_date,
        count(distinct logins.country_code) as login_countries_30d
    from user_days
    inner join logins
        on logins.user_id = user_days.user_id
        and logins.login_date <= user_days.calendar_date
        and logins.login_date >= {{ vigil.add_days('user_days.calendar_date', -29) }}
    group by user_days.user_id, user_days.calendar_date

),

removed_posts as (

    select posts.author_id as user_id, labels.labeled_at
    from labels
    inner join posts
        on posts.post_id = labels.post_id
    where labels.is_harmful

),

removals as (

    select
        user_days.user_id,
        user_days.calendar_date,
        count(*) as removals_total
    from user_days
    inner join removed_posts
        on removed_posts.user_id = user_days.user_id
        and removed_posts.labeled_at < user_days.event_timestamp
    group by user_days.user_id, user_days.calendar_date

),

final as (

    select
        rolling.user_id,
        rolling.event_timestamp,
        cast(rolling.reports_received_7d as bigint) as reports_received_7d,
        cast(rolling.reports_received_30d as bigint) as reports_received_30d,
        cast(rolling.dislikes_received_7d as bigint) as dislikes_received_7d,
        cast(rolling.dislikes_received_30d as bigint) as dislikes_received_30d,
        cast(rolling.blocks_received_7d as bigint) as blocks_received_7d,
        cast(rolling.blocks_received_30d as bigint) as blocks_received_30d,
        cast(rolling.mutes_received_7d as bigint) as mutes_received_7d,
        cast(rolling.mutes_received_30d as bigint) as mutes_received_30d,
        cast(rolling.shares_received_7d as bigint) as shares_received_7d,
        cast(rolling.shares_received_30d as bigint) as shares_received_30d,
        cast(rolling.views_received_30d as bigint) as views_received_30d,
        cast(rolling.posts_authored_30d as bigint) as posts_authored_30d,
        cast(rolling.posts_authored_in_lake + coalesce(earlier_posts.posts, 0) as bigint) as posts_authored_total,
        ({{ vigil.epoch_seconds('rolling.event_timestamp') }} - {{ vigil.epoch_seconds('rolling.created_at') }}) / 86400.0
            as account_age_days,
        cast(coalesce(login_countries.login_countries_30d, 0) as bigint) as login_countries_30d,
        cast(coalesce(removals.removals_total, 0) as bigint) as removals_total,
        {{ vigil.bayes_rate('rolling.reports_received_30d', 'rolling.views_received_30d', 'platform_rates.report_rate', m) }}
            as report_rate_bayes,
        {{ vigil.bayes_rate('rolling.dislikes_received_30d', 'rolling.views_received_30d', 'platform_rates.dislike_rate', m) }}
            as dislike_rate_bayes,
        {{ vigil.bayes_rate('rolling.blocks_received_30d', 'rolling.views_received_30d', 'platform_rates.block_rate', m) }}
            as block_rate_bayes
    from rolling
    inner join platform_rates
        on platform_rates.calendar_date = rolling.calendar_date
    left join earlier_posts
        on earlier_posts.user_id = rolling.user_id
    left join login_countries
        on login_countries.user_id = rolling.user_id
        and login_countries.calendar_date = rolling.calendar_date
    left join removals
        on removals.user_id = rolling.user_id
        and removals.calendar_date = rolling.calendar_date

)

select * from final
