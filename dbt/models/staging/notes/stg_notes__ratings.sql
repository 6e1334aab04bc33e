-- Community Notes ratings, one row per (note_id, rater_participant_id); helpful_num is the
-- number the scorer fits (HELPFUL 1, SOMEWHAT_HELPFUL 0.5, NOT_HELPFUL 0).
with source as (

    select * from {{ source('notes_lake', 'ratings') }}

),

renamed as (

    select
        cast(noteId as bigint) as note_id,
        cast(raterParticipantId as string) as rater_participant_id,
        {{ vigil.from_epoch_millis('createdAtMillis') }} as rated_at,
        cast(helpfulnessLevel as string) as helpfulness_level,
        cast(helpfulNum as double) as helpful_num
    from source

),

final as (

    select * from renamed

)

select * from final
