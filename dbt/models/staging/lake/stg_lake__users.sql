-- User accounts, one row per user_id (the latest-created copy if an id repeats).
with source as (

    select * from {{ source('lake', 'users') }}

),

renamed as (

    select
        cast(user_id as bigint) as user_id,
        cast(created_at as {{ vigil.timestamp_type() }}) as created_at,
        cast(home_country as string) as home_country_code,
        cast(handle as string) as handle
    from source

),

deduplicated as (

    select
        *,
        -- every column in the order: a tie must not pick by thread order
        row_number() over (
            partition by user_id order by created_at desc, handle, home_country_code
        ) as copy_number
    from renamed

),

final as (

    select user_id, created_at, home_country_code, handle
    from deduplicated
    where copy_number = 1

)

select * from final
