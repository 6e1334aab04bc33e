-- Account reviewers' verdicts, one row per verdicts.jsonl line (verdict_id = file:line); label is
-- what the verdict becomes (vigil.contracts.verdict_label: cleared, confirmed_<reason>).
with source as (

    select * from {{ source('lake', 'account_verdicts') }}

),

renamed as (

    select
        cast(verdict_id as string) as verdict_id,
        cast(user_id as bigint) as user_id,
        cast(is_violating as boolean) as is_violating,
        coalesce(cast(reason as string), '') as verdict_reason,
        cast(label as string) as verdict_label,
        coalesce(cast(reviewer as string), '') as reviewer,
        cast(reviewed_at as {{ vigil.timestamp_type() }}) as reviewed_at,
        cast(source_file as string) as source_file,
        cast(source_line as bigint) as source_line
    from source

),

deduplicated as (

    select
        *,
        -- the source line breaks a tie on reviewed_at (not the thread order)
        row_number() over (
            partition by verdict_id order by reviewed_at, source_file, source_line
        ) as copy_number
    from renamed

),

final as (

    select
        verdict_id,
        user_id,
        is_violating,
        verdict_reason,
        verdict_label,
        reviewer,
        reviewed_at,
        source_file,
        source_line
    from deduplicated
    where copy_number = 1

)

select * from final
