-- The scoring service's decisions, one row per decision-log line (decision_id = file:line).
with source as (

    select * from {{ source('lake', 'decisions') }}

),

renamed as (

    select
        cast(decision_id as string) as decision_id,
        cast(post_id as bigint) as post_id,
        cast(author_id as bigint) as author_id,
        cast(decided_at as {{ vigil.timestamp_type() }}) as decided_at,
        cast(model_id as string) as model_id,
        cast(student as double) as student_score,
        cast(routed_to_heavy as boolean) as is_routed_to_heavy,
        cast(probability as double) as probability,
        cast(decision as string) as decision,
        cast(trigger as string) as decision_trigger,
        cast(trigger = 'shadow' as boolean) as is_shadow,
        cast(content_hash as string) as content_hash,
        cast(harm_type as string) as predicted_harm_type,
        cast(author_age_bucket as string) as author_age_bucket,
        -- cascade | head (the re-score head at a re-score request); null: not removed, or logged
        -- before the field existed
        cast(path as string) as removal_path,
        cast(head as double) as head_score,
        cast(source_file as string) as source_file,
        cast(source_line as bigint) as source_line
    from source

),

deduplicated as (

    select
        *,
        -- the source line breaks a tie on decided_at (not the thread order)
        row_number() over (
            partition by decision_id order by decided_at, source_file, source_line
        ) as copy_number
    from renamed

),

final as (

    select * from deduplicated
    where copy_number = 1

)

select * from final
