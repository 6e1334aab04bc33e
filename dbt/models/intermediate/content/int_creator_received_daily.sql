-- Per (user, UTC day): what the user's content and account received, and posts they authored.
-- Post reactions are attributed to the post's author; blocks and mutes to their target user.
with reactions as (

    select * from {{ ref('int_post_events_attributed') }}

),

events as (

    select * from {{ ref('stg_lake__events') }}

),

posts as (

    select * from {{ ref('int_posts_created') }}

),

received_on_posts as (

    select
        author_id as user_id,
        cast(event_at as date) as activity_date,
        sum(case when action = 'report' then 1 else 0 end) as reports,
        sum(case when action = 'dislike' then 1 else 0 end) as dislikes,
        sum(case when action = 'share' then 1 else 0 end) as shares,
        sum(case when action = 'view' then 1 else 0 end) as views,
        0 as blocks,
        0 as mutes,
        0 as posts
    from reactions
    group by 1, 2

),

received_on_account as (

    select
        target_user_id as user_id,
        cast(event_at as date) as activity_date,
        0 as reports,
        0 as dislikes,
        0 as shares,
        0 as views,
        sum(case when action = 'block' then 1 else 0 end) as blocks,
        sum(case when action = 'mute' then 1 else 0 end) as mutes,
        0 as posts
    from events
    where action in ('block', 'mute')
        and target_user_id is not null
    group by 1, 2

),

authored as (

    select
        author_id as user_id,
        cast(created_at as date) as activity_date,
        0 as reports,
        0 as dislikes,
        0 as shares,
        0 as views,
        0 as blocks,
        0 as mutes,
        count(*) as posts
    from posts
    group by 1, 2

),

unioned as (

    select * from received_on_posts
    union all
    select * from received_on_account
    union all
    select * from authored

),

final as (

    select
        user_id,
        activity_date,
        cast(sum(reports) as bigint) as reports,
        cast(sum(dislikes) as bigint) as dislikes,
        cast(sum(shares) as bigint) as shares,
        cast(sum(views) as bigint) as views,
        cast(sum(blocks) as bigint) as blocks,
        cast(sum(mutes) as bigint) as mutes,
        cast(sum(posts) as bigint) as posts
    from unioned
    group by 1, 2

)

select * from final
