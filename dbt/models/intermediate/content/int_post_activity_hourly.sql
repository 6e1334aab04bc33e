-- Per (post, UTC hour) in the post's first `post_behavior_max_age_hours` hours: reaction counts.
with reactions as (

    select * from {{ ref('int_post_events_attributed') }}

),

hourly as (

    select
        post_id,
        {{ dbt.date_trunc('hour', 'event_at') }} as activity_hour,
        sum(case when action = 'view' then 1 else 0 end) as views,
        sum(case when action = 'like' then 1 else 0 end) as likes,
        sum(case when action = 'share' then 1 else 0 end) as shares,
        sum(case when action = 'reply' then 1 else 0 end) as replies,
        sum(case when action = 'dislike' then 1 else 0 end) as dislikes,
        sum(case when action = 'report' then 1 else 0 end) as reports,
        sum(case when action = 'block' then 1 else 0 end) as blocks,
        sum(case when is_negative_reply then 1 else 0 end) as negative_replies
    from reactions
    where post_age_hours < {{ var('post_behavior_max_age_hours') | int }}
    group by 1, 2

),

final as (

    select
        post_id,
        activity_hour,
        cast(views as bigint) as views,
        cast(likes as bigint) as likes,
        cast(shares as bigint) as shares,
        cast(replies as bigint) as replies,
        cast(dislikes as bigint) as dislikes,
        cast(reports as bigint) as reports,
        cast(blocks as bigint) as blocks,
        cast(negative_replies as bigint) as negative_replies
    from hourly

)

select * from final
