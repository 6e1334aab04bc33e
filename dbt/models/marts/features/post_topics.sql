-- Feast feature table: a post's topic weights (the topic step's distribution), one row per (post,
-- topic), true from the post's creation. is_main_topic marks the largest weight, the lowest topic
-- id on a tie (numpy's argmax, what vigil.ranking.features calls the post's main topic).
with topics as (

    select * from {{ ref('stg_lake__post_topics') }}

),

posts as (

    select * from {{ ref('int_posts_created') }}

),

ranked as (

    select
        topics.post_id,
        topics.topic_id,
        topics.topic_weight,
        topics.topics_version,
        posts.created_at,
        row_number() over (
            partition by topics.post_id order by topics.topic_weight desc, topics.topic_id
        ) as weight_rank
    from topics
    inner join posts
        on topics.post_id = posts.post_id

),

final as (

    select
        post_id,
        topic_id,
        created_at as event_timestamp,
        topic_weight,
        cast(case when weight_rank = 1 then 1 else 0 end as bigint) as is_main_topic,
        topics_version
    from ranked

)

select * from final
