-- Feast feature table: a user's interest per topic as of each day D 00:00 UTC: positive engagement
-- (like 1, reply 1.5, share 2) before D with posts weighted by their topic weight, each decayed by
-- exp(-age / 3 days); interest_share = interest / the user's largest topic interest at D. One row
-- per (user, topic, D) from the day after the user's first engagement with the topic to the day
-- after the lake's last. Computed per day d as the sum decayed to d + 1 00:00, then carried to D
-- by exp(-(D - d - 1 days) / 3 days): the same value as decaying each action to D.
-- Empty (no events scanned) when the topic step has written no post topics.
-- depends_on: {{ ref('stg_lake__events') }}
-- depends_on: {{ ref('stg_lake__post_topics') }}
-- depends_on: {{ ref('post_topics') }}
-- depends_on: {{ ref('int_posts_created') }}
-- depends_on: {{ ref('int_calendar_days') }}
{% if vigil.has_post_topics() %}
with events as (

    select * from {{ ref('stg_lake__events') }}

),

post_topics as (

    select * from {{ ref('post_topics') }}

),

days as (

    select * from {{ ref('int_calendar_days') }}

),

positive as (

    select
        user_id,
        post_id,
        event_at,
        {{ vigil.add_days('event_date', 1) }} as next_day,
        {{ vigil.positive_weight('action') }} as action_weight
    from events
    where action in ('like', 'reply', 'share')
        and post_id is not null

),

daily as (

    -- each day's engagement per topic, decayed to the end of that day
    select
        positive.user_id,
        post_topics.topic_id,
        positive.next_day,
        -- a float sum in a fixed order (vigil.ordered_sum): sum() adds in thread order
        {{ vigil.ordered_sum(
            'positive.action_weight * post_topics.topic_weight * '
            ~ vigil.engagement_decay(vigil.epoch_millis(vigil.day_start('positive.next_day'))
                                     ~ ' - ' ~ vigil.epoch_millis('positive.event_at'))
        ) }} as day_interest
    from positive
    inner join post_topics
        on positive.post_id = post_topics.post_id
    where post_topics.topic_weight > 0
    group by positive.user_id, post_topics.topic_id, positive.next_day

),

snapshot_days as (

    select {{ vigil.add_days('calendar_date', 1) }} as snapshot_date from days

),

interest as (

    select
        daily.user_id,
        daily.topic_id,
        snapshot_days.snapshot_date,
        {{ vigil.ordered_sum(
            'daily.day_interest * '
            ~ vigil.engagement_decay(dbt.datediff('daily.next_day', 'snapshot_days.snapshot_date', 'day')
                                     ~ ' * 86400000.0')
        ) }} as interest
    from daily
    inner join snapshot_days
        on daily.next_day <= snapshot_days.snapshot_date
    group by daily.user_id, daily.topic_id, snapshot_days.snapshot_date

),

final as (

    select
        user_id,
        topic_id,
        {{ vigil.day_start('snapshot_date') }} as event_timestamp,
        interest,
        interest / max(interest) over (partition by user_id, snapshot_date) as interest_share
    from interest

)

select * from final
{% else %}
select
    cast(null as bigint) as user_id,
    cast(null as bigint) as topic_id,
    cast(null as {{ vigil.timestamp_type() }}) as event_timestamp,
    cast(null as double) as interest,
    cast(null as double) as interest_share
where 1 = 0
{% endif %}
