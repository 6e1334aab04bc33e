-- Appeal verdicts as moderator labels, one row per appeal: reversed -> benign (is_harmful false),
-- upheld -> harmful. Same columns as stg_lake__labels plus the appeal and the appealed model.
with source as (

    select * from {{ source('lake', 'appeal_labels') }}

),

renamed as (

    select
        cast(appeal_id as bigint) as appeal_id,
        cast(post_id as bigint) as post_id,
        cast(is_harmful as boolean) as is_harmful,
        coalesce(cast(harm_types as string), '') as harm_types,
        cast(labeled_at as {{ vigil.timestamp_type() }}) as labeled_at,
        cast(queue as string) as label_queue,
        cast(sampling_weight as double) as sampling_weight,
        cast(model_id as string) as model_id
    from source

),

deduplicated as (

    select
        *,
        -- every column in the order: a tie on labeled_at must not pick by thread order
        row_number() over (
            partition by appeal_id
            order by labeled_at desc, post_id, is_harmful desc, harm_types desc, label_queue,
                sampling_weight desc, model_id
        ) as copy_number
    from renamed

),

final as (

    select
        appeal_id,
        post_id,
        is_harmful,
        harm_types,
        labeled_at,
        label_queue,
        sampling_weight,
        model_id
    from deduplicated
    where copy_number = 1

)

select * from final
