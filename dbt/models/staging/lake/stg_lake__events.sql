-- Activity events: renamed, typed, deduplicated by event_id (the log pipeline is at-least-once;
-- a duplicate has the same id and content, so which copy is kept does not matter).
with source as (

    select * from {{ source('lake', 'events') }}

),

renamed as (

    select
        cast(event_id as string) as event_id,
        cast(event_ts as {{ vigil.timestamp_type() }}) as event_at,
        cast(dt as date) as event_date,
        cast(user_id as bigint) as user_id,
        cast(action as string) as action,
        cast(post_id as bigint) as post_id,
        cast(target_user_id as bigint) as target_user_id,
        cast(text as string) as event_text,
        cast(country as string) as country_code,
        cast(source_file as string) as source_file,
        cast(source_line as bigint) as source_line
    from source

),

deduplicated as (

    -- partitioned by the day first so a filter on event_date prunes files before the window
    select
        *,
        row_number() over (
            partition by event_date, event_id order by source_file, source_line
        ) as copy_number
    from renamed

),

final as (

    select
        event_id,
        event_at,
        event_date,
        user_id,
        action,
        post_id,
        target_user_id,
        event_text,
        country_code,
        source_file,
        source_line
    from deduplicated
    where copy_number = 1

)

select * from final
