-- Moderator labels of known posts (one per post; labels of posts not yet in the lake wait until
-- the post arrives), harm types as booleans. Appeal verdicts are moderator labels too: a reversed
-- appeal labels the post benign, an upheld one harmful; a post's latest label wins (an appeal is
-- decided after the removal it overturns or confirms, so it replaces a queue label given before).
with queue_labels as (

    select * from {{ ref('stg_lake__labels') }}

),

appeal_labels as (

    select * from {{ ref('stg_lake__appeal_labels') }}

),

posts as (

    select * from {{ ref('int_posts_created') }}

),

unioned as (

    select post_id, is_harmful, harm_types, labeled_at, label_queue, sampling_weight
    from queue_labels
    union all
    select post_id, is_harmful, harm_types, labeled_at, label_queue, sampling_weight
    from appeal_labels

),

latest as (

    select
        *,
        row_number() over (
            partition by post_id
            order by labeled_at desc, label_queue, harm_types desc, is_harmful desc, sampling_weight desc
        ) as label_rank
    from unioned

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
    from latest as labels
    inner join posts
        on posts.post_id = labels.post_id
    where labels.label_rank = 1

)

select * from final
