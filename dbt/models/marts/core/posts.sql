-- Posts for training sets and analysts: author, creation time and text.
with posts as (

    select * from {{ ref('int_posts_created') }}

),

final as (

    select
        post_id,
        author_id,
        created_at,
        post_text as text
    from posts

)

select * from final
