-- Moderator labels of known posts (one per post; labels of posts not yet in the lake wait until
-- the post arrives), harm types as booleans.
with labels as (

    select * from {{ ref('stg_lake__labels') }}

),

posts as (

    select * from {{ ref('int_posts_created') }}

),

final as (

    select
        labels.post_id,
        labels.is_harmful,
        {{ dbt.concat(["','", 'labels.harm_types', "','"]) }} like '%,harassment,%' as is_harassment,
        {{ dbt.concat(["','", 'labels.harm_types', "','"]) }} like '%,hate,%' as is_hate,
        {{ dbt.concat(["','", 'labels.harm_types', "','"]) }} like '%,spam,%' as is_spam,
        {{ dbt.concat(["','", 'labels.harm_types', "','"]) }} like '%,violent_threat,%' as is_violent_threat,
        labels.labeled_at,
        labels.label_queue as queue,
        labels.sampling_weight
    from labels
    inner join posts
        on posts.post_id = labels.post_id

)

select * from final
