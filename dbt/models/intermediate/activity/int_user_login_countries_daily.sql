-- Distinct (user, UTC day, country) of login events.
with events as (

    select * from {{ ref('stg_lake__events') }}

),

final as (

    select distinct
        user_id,
        cast(event_at as date) as login_date,
        country_code
    from events
    where action = 'login'
        and country_code is not null

)

select * from final
