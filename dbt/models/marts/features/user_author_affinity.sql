-- Feast feature table: a user's affinity to an author as of each day D 00:00 UTC: positive
-- engagement (like 1, reply 1.5, share 2) before D with the author's posts, each decayed by
-- exp(-age / 3 days). One row per (user, author, D) from the day after the user's first such
-- engagement to the day after the lake's last (the day sums carried forward as in
-- user_topic_interest). Empty when the topic step has written no post topics (a ranking feature:
-- worlds without the ranking pay nothing for it).
-- depends_on: {{ ref('stg_lake__events') }}
-- depends_on: {{ ref('stg_lake__post_topics') }}
-- depends_on: {{ ref('post_topics') }}
-- depends_on: {{ ref('int_posts_created') }}
-- depends_on: {{ ref('int_calendar_days') }}
{% if vigil.has_post_topics() %}
with events as (

    select * from {{ ref('stg_lake__events') }}

),

posts as (

    select * from {{ ref('int_posts_created') }}

),

days as (

    select * from {{ ref('int_calendar_days') }}

),

positive as (

    select
        events.user_id,
        events.target_user_id as author_id,
        events.event_at,
        {{ vigil.add_days('events.event_date', 1) }} as next_day,
        {{ vigil.positive_weight('events.action') }} as action_weight
    from events
    inner join posts
        on events.post_id = posts.post_id
    where events.action in ('like', 'reply', 'share')
        and events.target_user_id is not null

),

daily as (

    select
        user_id,
        author_id,
        next_day,
        -- a float sum in a fixed order (vigil.ordered_sum): sum() adds in thread order
        {{ vigil.ordered_sum(
            'action_weight * '
            ~ vigil.engagement_decay(vigil.epoch_millis(vigil.day_start('next_day'))
                                     ~ ' - ' ~ vigil.epoch_millis('event_at'))
        ) }} as day_affinity
    from positive
    group by user_id, author_id, next_day

),

snapshot_days as (

    select {{ vigil.add_days('calendar_date', 1) }} as snapshot_date from days

),

affinity as (

    select
        daily.user_id,
        daily.author_id,
        snapshot_days.snapshot_date,
        {{ vigil.ordered_sum(
            'daily.day_affinity * '
            ~ vigil.engagement_decay(dbt.datediff('daily.next_day', 'snapshot_days.snapshot_date', 'day')
                                     ~ ' * 86400000.0')
        ) }} as affinity
    from daily
    inner join snapshot_days
        on daily.next_day <= snapshot_days.snapshot_date
    group by daily.user_id, daily.author_id, snapshot_days.snapshot_date

),

final as (

    select
        user_id,
        author_id,
        {{ vigil.day_start('snapshot_date') }} as event_timestamp,
        affinity
    from affinity

)

select * from final
{% else %}
select
    cast(null as bigint) as user_id,
    cast(null as bigint) as author_id,
    cast(null as {{ vigil.timestamp_type() }}) as event_timestamp,
    cast(null as double) as affinity
where 1 = 0
{% endif %}
