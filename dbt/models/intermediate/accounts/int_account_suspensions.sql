-- Each suspended account's first suspension, and its first for bot or spam (the enforcement log).
select
    user_id,
    min(enforced_at) as suspended_at,
    min(enforced_at) filter (where reason in ({{ vigil.account_bot_reasons() }})) as bot_suspended_at
from {{ ref('stg_lake__enforcement') }}
where enforcement_action = 'suspend'
group by all
