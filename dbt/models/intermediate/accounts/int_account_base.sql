-- The feature rows: every (account, day) from the account's creation.
select
    users.user_id,
    days.day,
    days.ets,
    users.created_at
from {{ ref('stg_lake__users') }} as users
inner join {{ ref('int_account_days') }} as days
    on users.created_at < days.ets
