-- Every UTC day from the first to the last day in the lake (gaps included): the snapshot spine.
with partitions as (

    select * from {{ ref('stg_lake__event_partitions') }}

),

bounds as (

    select
        min(event_date) as first_date,
        {{ dbt.datediff('min(event_date)', 'max(event_date)', 'day') }} as day_count
    from partitions

),

offsets as (

    select
        first_date,
        {{ vigil.integer_series('0', 'day_count') }} as day_offset
    from bounds

),

final as (

    select {{ vigil.add_days('first_date', 'day_offset') }} as calendar_date
    from offsets

)

select * from final
