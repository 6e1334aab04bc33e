-- Account features that need no history (vigil.accounts.signup.SIGNUP_FEATURES): action mix,
-- session shape, login geography, fingerprint reputation; one row per feature row (nulls: none).
with ew as (

    select * from {{ ref('int_account_events_windowed') }}

),

base as (

    select * from {{ ref('int_account_base') }}

),

mix as (

    select
        user_id,
        day,
        count(*) filter (where action <> 'login') as acts,
        count(*) filter (where action = 'login') as logins,
        count(*) filter (where action = 'follow') as n_follow,
        count(*) filter (where action = 'view') as n_view,
        count(*) filter (where action = 'like') as n_like
    from ew
    group by all

),

abroad as (

    select
        ew.user_id,
        ew.day,
        avg(case when ew.country <> users.home_country_code then 1.0 else 0.0 end)
            as login_abroad_share_7d
    from ew
    inner join {{ ref('stg_lake__users') }} as users on users.user_id = ew.user_id
    where ew.action = 'login' and ew.country is not null and users.home_country_code is not null
    group by all

),

fprep as (

    select
        base.user_id,
        base.day,
        count(distinct pairs.other) filter (where susp.suspended_at < base.ets)
            as fp_suspended_accounts,
        count(distinct pairs.other) filter (where susp.bot_suspended_at < base.ets)
            as fp_bot_suspended_accounts
    from base
    inner join {{ ref('int_account_fp_pairs') }} as pairs
        on pairs.user_id = base.user_id and pairs.since < base.ets
    inner join {{ ref('int_account_suspensions') }} as susp on susp.user_id = pairs.other
    group by all

)

select
    base.user_id,
    base.day,
    cast(coalesce(mix.n_follow / nullif(mix.acts, 0), 0) as double) as follow_share_7d,
    cast(coalesce(mix.n_view / nullif(mix.acts, 0), 0) as double) as view_share_7d,
    cast(coalesce(mix.n_like / nullif(mix.acts, 0), 0) as double) as like_share_7d,
    cast(coalesce(mix.acts / greatest(mix.logins, 1), 0) as double) as events_per_login_7d,
    cast(coalesce(abroad.login_abroad_share_7d, 0) as double) as login_abroad_share_7d,
    cast(coalesce(fprep.fp_suspended_accounts, 0) as bigint) as fp_suspended_accounts,
    cast(coalesce(fprep.fp_bot_suspended_accounts, 0) as bigint) as fp_bot_suspended_accounts
from base
left join mix using (user_id, day)
left join abroad using (user_id, day)
left join fprep using (user_id, day)
