-- One row per rating of a known note (ratings of notes missing from the notes file are left
-- out, as the scorer leaves them out), with the note's post and author.
with ratings as (

    select * from {{ ref('stg_notes__ratings') }}

),

notes as (

    select * from {{ ref('stg_notes__notes') }}

),

final as (

    select
        ratings.note_id,
        ratings.rater_participant_id,
        ratings.rated_at,
        ratings.helpfulness_level,
        ratings.helpful_num,
        notes.post_id,
        notes.author_participant_id,
        ratings.rater_participant_id = notes.author_participant_id as is_own_note
    from ratings
    inner join notes on notes.note_id = ratings.note_id

)

select * from final
