-- One row per note: the post it is on, its author, and the tally of its ratings.
with notes as (

    select * from {{ ref('stg_notes__notes') }}

),

ratings as (

    select * from {{ ref('stg_notes__ratings') }}

),

rating_tallies as (

    select
        note_id,
        count(*) as ratings,
        sum(case when helpfulness_level = 'HELPFUL' then 1 else 0 end) as helpful_ratings,
        sum(case when helpfulness_level = 'SOMEWHAT_HELPFUL' then 1 else 0 end) as somewhat_helpful_ratings,
        sum(case when helpfulness_level = 'NOT_HELPFUL' then 1 else 0 end) as not_helpful_ratings,
        avg(helpful_num) as mean_helpful_num,
        min(rated_at) as first_rated_at,
        max(rated_at) as last_rated_at
    from ratings
    group by note_id

),

final as (

    select
        notes.note_id,
        notes.post_id,
        notes.author_participant_id,
        notes.created_at,
        notes.classification,
        coalesce(rating_tallies.ratings, 0) as ratings,
        coalesce(rating_tallies.helpful_ratings, 0) as helpful_ratings,
        coalesce(rating_tallies.somewhat_helpful_ratings, 0) as somewhat_helpful_ratings,
        coalesce(rating_tallies.not_helpful_ratings, 0) as not_helpful_ratings,
        rating_tallies.mean_helpful_num,
        rating_tallies.first_rated_at,
        rating_tallies.last_rated_at
    from notes
    left join rating_tallies on rating_tallies.note_id = notes.note_id

)

select * from final
