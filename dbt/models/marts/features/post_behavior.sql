{#-
  Feast feature table: per post, hourly snapshots in its first var('post_behavior_max_age_hours')
  hours. A row at event_timestamp T (the top of an hour) exists for the post's creation hour and
  every hour in which it had activity, with cumulative counts of events before T; a point-in-time
  join at time t finds the row of the last such hour before t, i.e. the counts before the top of
  t's hour.

  Ratios are Bayesian-averaged and age-corrected (docs/warehouse.md, "Bayesian averaging"):
    ratio = (x + m * p_age) / (views + m), m = var('prior_views') pseudo-views,
  where p_age is the platform-wide ratio x/views among reactions that happened while their post
  was at most as old as this post is now (age buckets of doubling width: <1 h, 1-3 h, 3-7 h, ...,
  >=255 h), counting only events before T. Reactions pile up at different speeds over a post's life
  (reports lag views), so a young post is compared with posts at the same age, not with old ones.
  negative reactions = dislikes + reports + blocks + negative replies.
-#}
{%- set m = vigil.prior_views() %}
{%- set max_bucket = 8 %}

with posts as (

    select * from {{ ref('int_posts_created') }}

),

hourly as (

    select * from {{ ref('int_post_activity_hourly') }}

),

reactions as (

    select * from {{ ref('int_post_events_attributed') }}

),

snapshot_hours as (

    select post_id, activity_hour from hourly
    union
    select post_id, {{ dbt.date_trunc('hour', 'created_at') }} as activity_hour from posts

),

dense as (

    select
        snapshot_hours.post_id,
        snapshot_hours.activity_hour,
        coalesce(hourly.views, 0) as views,
        coalesce(hourly.likes, 0) as likes,
        coalesce(hourly.shares, 0) as shares,
        coalesce(hourly.replies, 0) as replies,
        coalesce(hourly.dislikes, 0) as dislikes,
        coalesce(hourly.reports, 0) as reports,
        coalesce(hourly.blocks, 0) as blocks,
        coalesce(hourly.negative_replies, 0) as negative_replies
    from snapshot_hours
    left join hourly
        on hourly.post_id = snapshot_hours.post_id
        and hourly.activity_hour = snapshot_hours.activity_hour

),

cumulative as (

    select
        post_id,
        activity_hour,
        sum(views) over so_far as views,
        sum(likes) over so_far as likes,
        sum(shares) over so_far as shares,
        sum(replies) over so_far as replies,
        sum(dislikes) over so_far as dislikes,
        sum(reports) over so_far as reports,
        sum(blocks) over so_far as blocks,
        sum(negative_replies) over so_far as negative_replies
    from dense
    window so_far as (
        partition by post_id order by activity_hour rows between unbounded preceding and current row
    )

),

snapshots as (

    select
        cumulative.*,
        posts.author_id,
        cumulative.activity_hour + interval '1' hour as event_timestamp,
        ({{ vigil.epoch_seconds('cumulative.activity_hour') }} + 3600 - {{ vigil.epoch_seconds('posts.created_at') }}) / 3600.0
            as post_age_hours
    from cumulative
    inner join posts
        on posts.post_id = cumulative.post_id
    where cumulative.activity_hour >= {{ dbt.date_trunc('hour', 'posts.created_at') }}

),

snapshots_bucketed as (

    select
        *,
        cast(least(floor(log2(greatest(post_age_hours, 0) + 1)), {{ max_bucket }}) as bigint) as age_bucket
    from snapshots

),

platform_hourly as (

    select
        {{ dbt.date_trunc('hour', 'event_at') }} as activity_hour,
        cast(least(floor(log2(greatest(post_age_hours, 0) + 1)), {{ max_bucket }}) as bigint) as age_bucket,
        sum(case when action = 'view' then 1 else 0 end) as views,
        sum(case when action in ('dislike', 'report', 'block') or is_negative_reply then 1 else 0 end)
            as negative_reactions,
        sum(case when action = 'report' then 1 else 0 end) as reports,
        sum(case when action = 'share' then 1 else 0 end) as shares
    from reactions
    group by 1, 2

),

snapshot_keys as (

    select distinct event_timestamp, age_bucket
    from snapshots_bucketed

),

priors as (

    select
        snapshot_keys.event_timestamp,
        snapshot_keys.age_bucket,
        sum(platform_hourly.negative_reactions) / nullif(sum(platform_hourly.views), 0) as negative_reaction_rate,
        sum(platform_hourly.reports) / nullif(sum(platform_hourly.views), 0) as report_rate,
        sum(platform_hourly.shares) / nullif(sum(platform_hourly.views), 0) as share_rate
    from snapshot_keys
    inner join platform_hourly
        on platform_hourly.activity_hour < snapshot_keys.event_timestamp
        and platform_hourly.age_bucket <= snapshot_keys.age_bucket
    group by snapshot_keys.event_timestamp, snapshot_keys.age_bucket

),

final as (

    select
        snapshots_bucketed.post_id,
        snapshots_bucketed.event_timestamp,
        snapshots_bucketed.author_id,
        snapshots_bucketed.post_age_hours,
        cast(snapshots_bucketed.views as bigint) as views,
        cast(snapshots_bucketed.likes as bigint) as likes,
        cast(snapshots_bucketed.shares as bigint) as shares,
        cast(snapshots_bucketed.replies as bigint) as replies,
        cast(snapshots_bucketed.dislikes as bigint) as dislikes,
        cast(snapshots_bucketed.reports as bigint) as reports,
        cast(snapshots_bucketed.blocks as bigint) as blocks,
        cast(snapshots_bucketed.negative_replies as bigint) as negative_replies,
        {{ vigil.bayes_rate(
            'snapshots_bucketed.dislikes + snapshots_bucketed.reports + snapshots_bucketed.blocks + snapshots_bucketed.negative_replies',
            'snapshots_bucketed.views', 'priors.negative_reaction_rate', m) }} as negative_reactions_per_view,
        {{ vigil.bayes_rate('snapshots_bucketed.reports', 'snapshots_bucketed.views', 'priors.report_rate', m) }}
            as reports_per_view,
        {{ vigil.bayes_rate('snapshots_bucketed.shares', 'snapshots_bucketed.views', 'priors.share_rate', m) }}
            as shares_per_view
    from snapshots_bucketed
    left join priors
        on priors.event_timestamp = snapshots_bucketed.event_timestamp
        and priors.age_bucket = snapshots_bucketed.age_bucket

)

select * from final
