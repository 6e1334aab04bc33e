-- Community Notes notes, renamed and typed, one row per note_id (ingest already deduplicated).
with source as (

    select * from {{ source('notes_lake', 'notes') }}

),

renamed as (

    select
        cast(noteId as bigint) as note_id,
        cast(tweetId as bigint) as post_id,
        cast(noteAuthorParticipantId as string) as author_participant_id,
        {{ vigil.from_epoch_millis('createdAtMillis') }} as created_at,
        cast(classification as string) as classification
    from source

),

final as (

    select * from renamed

)

select * from final
