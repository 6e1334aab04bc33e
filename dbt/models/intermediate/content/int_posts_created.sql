-- One row per post, from its `post` event (the first one if the log repeats it).
with events as (

    select * from {{ ref('stg_lake__events') }}

),

post_events as (

    select
        post_id,
        user_id as author_id,
        event_at as created_at,
        event_text as post_text,
        row_number() over (partition by post_id order by event_at, event_id) as post_number
    from events
    where action = 'post'
        and post_id is not null

),

final as (

    select post_id, author_id, created_at, post_text
    from post_events
    where post_number = 1

)

select * from final
