-- Feast feature table: per main topic and hour H (UTC), the posts whose main topic it is created in
-- [H - 1 h, H) and in the 24 h before that, and velocity = (last hour + 1) / (prior 24 h / 24 + 1)
-- (1 for a quiet topic). One row per (topic, H) for every topic of the model and every hour from
-- the first post's hour + 1 h to the end of the lake's last day.
with post_topics as (

    select * from {{ ref('post_topics') }}

),

days as (

    select * from {{ ref('int_calendar_days') }}

),

main_topics as (

    select post_id, topic_id, event_timestamp as created_at
    from post_topics
    where is_main_topic = 1

),

topic_ids as (

    select distinct topic_id from post_topics

),

bounds as (

    select
        {{ dbt.date_trunc('hour', 'min(created_at)') }} as first_hour,
        (select {{ vigil.day_start(vigil.add_days('max(calendar_date)', 1)) }} from days) as last_hour
    from main_topics

),

hours as (

    select {{ dbt.dateadd('hour', 'hour_offset', 'first_hour') }} as hour_at
    from (
        select
            first_hour,
            {{ vigil.integer_series('1', dbt.datediff('first_hour', 'last_hour', 'hour')) }} as hour_offset
        from bounds
        where first_hour is not null
    ) as offsets

),

hourly_posts as (

    select topic_id, {{ dbt.date_trunc('hour', 'created_at') }} as post_hour, count(*) as posts
    from main_topics
    group by 1, 2

),

windows as (

    select
        topic_ids.topic_id,
        hours.hour_at,
        coalesce(sum(case when hourly_posts.post_hour = {{ dbt.dateadd('hour', -1, 'hours.hour_at') }}
                          then hourly_posts.posts end), 0) as posts_last_hour,
        coalesce(sum(case when hourly_posts.post_hour < {{ dbt.dateadd('hour', -1, 'hours.hour_at') }}
                          then hourly_posts.posts end), 0) as posts_prior_24h
    from topic_ids
    cross join hours
    left join hourly_posts
        on hourly_posts.topic_id = topic_ids.topic_id
        and hourly_posts.post_hour >= {{ dbt.dateadd('hour', -25, 'hours.hour_at') }}
        and hourly_posts.post_hour < hours.hour_at
    group by topic_ids.topic_id, hours.hour_at

),

final as (

    select
        topic_id,
        cast(hour_at as {{ vigil.timestamp_type() }}) as event_timestamp,
        cast(posts_last_hour as bigint) as posts_last_hour,
        cast(posts_prior_24h as bigint) as posts_prior_24h,
        (posts_last_hour + 1.0) / (posts_prior_24h / 24.0 + 1.0) as velocity
    from windows

)

select * from final
