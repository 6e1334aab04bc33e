-- Contributors' enrollment, one row per participant_id (the last line wins on a repeated id).
with source as (

    select * from {{ source('notes_lake', 'enrollment') }}

),

renamed as (

    select
        cast(participantId as string) as participant_id,
        cast(enrollmentState as string) as enrollment_state,
        cast(modelingPopulation as string) as modeling_population
    from source

),

deduplicated as (

    select
        *,
        -- every column in the order: a tie on enrollment_state must not pick by thread order
        row_number() over (
            partition by participant_id order by enrollment_state, modeling_population
        ) as copy_number
    from renamed

),

final as (

    select participant_id, enrollment_state, modeling_population
    from deduplicated
    where copy_number = 1

)

select * from final
