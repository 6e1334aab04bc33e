-- Topic weights per (post, topic) from the topic step (one file, written whole by the step, so no
-- duplicates to drop): renamed and typed.
with source as (

    select * from {{ source('lake', 'post_topics') }}

),

final as (

    select
        cast(post_id as bigint) as post_id,
        cast(topic_id as bigint) as topic_id,
        cast(topic_weight as double) as topic_weight,
        cast(topics_version as string) as topics_version
    from source

)

select * from final
