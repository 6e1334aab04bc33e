-- One row per lake day partition with its row count: how incremental models notice a day that
-- received late events (ingest only appends, so a changed partition has a new row count).
with source as (

    select * from {{ source('lake', 'events') }}

),

final as (

    select
        cast(dt as date) as event_date,
        count(*) as row_count
    from source
    group by 1

)

select * from final
