-- Reactions to posts (view like share dislike report reply block mute with a post_id), attributed
-- to the post's author, with the post's age at the event and the negative-reply flag.
with events as (

    select * from {{ ref('stg_lake__events') }}

),

posts as (

    select * from {{ ref('int_posts_created') }}

),

reactions as (

    select
        event_id,
        event_at,
        user_id as actor_id,
        action,
        post_id,
        target_user_id,
        event_text
    from events
    where post_id is not null
        and action in ('view', 'like', 'share', 'dislike', 'report', 'reply', 'block', 'mute')

),

final as (

    select
        reactions.event_id,
        reactions.post_id,
        posts.author_id,
        reactions.actor_id,
        reactions.action,
        reactions.event_at,
        posts.created_at as post_created_at,
        ({{ vigil.epoch_seconds('reactions.event_at') }} - {{ vigil.epoch_seconds('posts.created_at') }}) / 3600.0
            as post_age_hours,
        case
            when reactions.action = 'reply' and {{ vigil.regex_matches('reactions.event_text', vigil.disgust_pattern()) }}
                then true
            else false
        end as is_negative_reply
    from reactions
    inner join posts
        on posts.post_id = reactions.post_id

)

select * from final
