-- One row per contributor: everyone who wrote a note, rated one, or is enrolled.
with notes as (

    select * from {{ ref('stg_notes__notes') }}

),

ratings as (

    select * from {{ ref('stg_notes__ratings') }}

),

enrollments as (

    select * from {{ ref('stg_notes__enrollments') }}

),

written as (

    select
        author_participant_id as participant_id,
        count(*) as notes_written,
        min(created_at) as first_note_at
    from notes
    group by author_participant_id

),

rated as (

    select
        rater_participant_id as participant_id,
        count(*) as ratings_given,
        avg(helpful_num) as mean_helpful_num_given,
        min(rated_at) as first_rating_at,
        max(rated_at) as last_rating_at
    from ratings
    group by rater_participant_id

),

participants as (

    select participant_id from written
    union
    select participant_id from rated
    union
    select participant_id from enrollments

),

final as (

    select
        participants.participant_id,
        enrollments.enrollment_state,
        enrollments.modeling_population,
        coalesce(written.notes_written, 0) as notes_written,
        coalesce(rated.ratings_given, 0) as ratings_given,
        rated.mean_helpful_num_given,
        written.first_note_at,
        rated.first_rating_at,
        rated.last_rating_at
    from participants
    left join enrollments on enrollments.participant_id = participants.participant_id
    left join written on written.participant_id = participants.participant_id
    left join rated on rated.participant_id = participants.participant_id

)

select * from final
