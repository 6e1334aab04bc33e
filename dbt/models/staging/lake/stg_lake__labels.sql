-- Moderator labels, one row per post (its latest label wins: a relabel replaces the earlier one).
with source as (

    select * from {{ source('lake', 'labels') }}

),

renamed as (

    select
        cast(post_id as bigint) as post_id,
        cast(is_harmful as boolean) as is_harmful,
        coalesce(cast(harm_types as string), '') as harm_types,
        cast(labeled_at as {{ vigil.timestamp_type() }}) as labeled_at,
        cast(queue as string) as label_queue,
        cast(sampling_weight as double) as sampling_weight
    from source

),

deduplicated as (

    select
        *,
        -- every column in the order: a tie on (labeled_at, harm_types) must not pick by thread order
        row_number() over (
            partition by post_id
            order by labeled_at desc, harm_types desc, label_queue, is_harmful desc, sampling_weight desc
        ) as copy_number
    from renamed

),

final as (

    select post_id, is_harmful, harm_types, labeled_at, label_queue, sampling_weight
    from deduplicated
    where copy_number = 1

)

select * from final
