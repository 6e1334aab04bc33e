-- Point-in-time daily account features, one row per (user_id, day) from the account's creation
-- (docs/accounts.md; the columns are vigil.accounts.features.FEATURES, in that order). A row for
-- day D has event_timestamp = D + 1 at 00:00 UTC and counts only what happened before it: events
-- in the trailing window [event_timestamp - account_window_days, event_timestamp), fingerprint
-- sightings and suspensions since the start of the lake. Exported to
-- features/account_features.parquet (the accounts gate, the bot model, Feast's account_features).
with ew as (

    select * from {{ ref('int_account_events_windowed') }}

),

vol as (

    select
        user_id,
        day,
        count(*) as events_7d,
        count(*) filter (where action in ('post', 'reply')) as posts_7d,
        count(distinct date_trunc('hour', event_ts)) as active_hours_7d,
        count(*) filter (where action = 'follow') as follows,
        count(*) filter (where action = 'unfollow') as unfollows
    from ew
    group by all

),

-- gaps between consecutive events of the account, both inside the window
gaps as (

    select
        user_id,
        day,
        -- from integer microseconds: epoch() doubles near 1.8e9 s are only good to ~2e-7 s
        (epoch_us(event_ts) - epoch_us(prev_ts)) / 1000000.0 as gap_s,
        epoch_us(event_ts) - epoch_us(prev_ts) as gap_us
    from ew
    where prev_ts is not null and prev_ts >= wstart

),

-- Reproducible float aggregates: DuckDB's parallel hash aggregation adds a group's doubles in an
-- order that depends on thread scheduling, so sum/avg/stddev of doubles can differ in the last
-- bit from run to run, and that is enough to move the bot model's histogram bins (issue 21,
-- docs/accounts.md). Hence: the CV from exact integer moments of the gaps in microseconds
-- (sd / mean = sqrt(n * sum(g^2) - sum(g)^2) / sum(g)), and float sums over a sorted list.
gapstat as (

    select
        user_id,
        day,
        case
            when count(*) >= 2 and sum(gap_us) > 0
                then sqrt(cast(
                    count(*) * sum(cast(gap_us as hugeint) * gap_us) - sum(gap_us) * sum(gap_us)
                    as double)) / cast(sum(gap_us) as double)
            else 0
        end as gap_cv_7d
    from gaps
    group by all

),

gapent as (

    select user_id, day, -list_sum(list_sort(list(p * log2(p)))) as gap_entropy_7d
    from (
        select user_id, day, count(*) / sum(count(*)) over (partition by user_id, day) as p
        from gaps
        group by user_id, day, floor(log2(gap_s + 1))
    ) as bins
    group by all

),

hourent as (

    select user_id, day, -list_sum(list_sort(list(p * log2(p)))) as hour_entropy_7d
    from (
        select user_id, day, count(*) / sum(count(*)) over (partition by user_id, day) as p
        from ew
        group by user_id, day, hour(event_ts)
    ) as bins
    group by all

),

posts as (

    select * from {{ ref('int_account_posts') }}

),

normusers as (

    select day, norm, count(distinct user_id) as n
    from posts where norm is not null group by all

),

linkusers as (

    select day, link, count(distinct user_id) as n
    from posts where link <> '' group by all

),

dup as (

    select
        p.user_id,
        p.day,
        avg(case when nu.n >= 2 then 1.0 else 0.0 end) as dup_text_share_7d,
        coalesce(sum(case when lu.n >= 2 then 1.0 else 0.0 end)
                 / nullif(count(*) filter (where p.link <> ''), 0), 0) as dup_link_share_7d,
        avg(case when p.link <> '' then 1.0 else 0.0 end) as link_share_7d
    from posts as p
    left join normusers as nu on nu.day = p.day and nu.norm = p.norm
    left join linkusers as lu on lu.day = p.day and lu.link = p.link
    group by all

),

-- targets: replies' authors and @mentions resolved through the users' handles
targets as (

    select user_id, day, target_user_id as target
    from ew
    where action = 'reply' and target_user_id is not null and target_user_id <> user_id
    union all
    select m.user_id, m.day, u.user_id as target
    from (
        select user_id, day, unnest(regexp_extract_all(text, '@([A-Za-z0-9_]+)', 1)) as h
        from ew
        where action in ('post', 'reply') and text like '%@%'
    ) as m
    inner join {{ ref('stg_lake__users') }} as u on u.handle = m.h
    where u.user_id <> m.user_id

),

targ as (

    select
        user_id,
        day,
        sum(n) as targeted_actions_7d,
        sum(n) filter (where rk <= 3) / sum(n) as target_concentration_7d
    from (
        select
            user_id,
            day,
            target,
            count(*) as n,
            row_number() over (partition by user_id, day order by count(*) desc, target) as rk
        from targets
        group by user_id, day, target
    ) as ranked
    group by all

),

base as (

    select * from {{ ref('int_account_base') }}

),

fpshare as (

    select
        b.user_id,
        b.day,
        count(distinct p.other) as fp_shared_accounts,
        count(distinct p.other) filter (where p.is_device) as device_shared_accounts
    from base as b
    inner join {{ ref('int_account_fp_pairs') }} as p
        on p.user_id = b.user_id and p.since < b.ets
    group by all

)

select
    b.user_id,
    b.ets as event_timestamp,
    (epoch(b.ets) - epoch(b.created_at)) / 86400.0 as account_age_days,
    cast(coalesce(v.events_7d, 0) as bigint) as events_7d,
    cast(coalesce(v.posts_7d, 0) as bigint) as posts_7d,
    cast(coalesce(v.active_hours_7d, 0) as bigint) as active_hours_7d,
    cast(coalesce(g.gap_cv_7d, 0) as double) as gap_cv_7d,
    cast(coalesce(ge.gap_entropy_7d, 0) as double) as gap_entropy_7d,
    cast(coalesce(h.hour_entropy_7d, 0) as double) as hour_entropy_7d,
    cast(coalesce(dp.dup_text_share_7d, 0) as double) as dup_text_share_7d,
    cast(coalesce(dp.dup_link_share_7d, 0) as double) as dup_link_share_7d,
    cast(coalesce(dp.link_share_7d, 0) as double) as link_share_7d,
    cast((coalesce(v.follows, 0) + coalesce(v.unfollows, 0)) / greatest(coalesce(v.follows, 0), 1)
        as double) as follow_churn_7d,
    cast(coalesce(f.fp_shared_accounts, 0) as bigint) as fp_shared_accounts,
    cast(coalesce(f.device_shared_accounts, 0) as bigint) as device_shared_accounts,
    cast(coalesce(t.target_concentration_7d, 0) as double) as target_concentration_7d,
    cast(coalesce(t.targeted_actions_7d, 0) as bigint) as targeted_actions_7d,
    s.follow_share_7d,
    s.view_share_7d,
    s.like_share_7d,
    s.events_per_login_7d,
    s.login_abroad_share_7d,
    s.fp_suspended_accounts,
    s.fp_bot_suspended_accounts,
    cast(coalesce(r.text_bad_share_7d, 0) as double) as text_bad_share_7d,
    cast(coalesce(r.link_bad_share_7d, 0) as double) as link_bad_share_7d,
    cast(coalesce(r.domain_bad_rate_7d, 0) as double) as domain_bad_rate_7d
from base as b
left join vol as v using (user_id, day)
left join gapstat as g using (user_id, day)
left join gapent as ge using (user_id, day)
left join hourent as h using (user_id, day)
left join dup as dp using (user_id, day)
left join fpshare as f using (user_id, day)
left join targ as t using (user_id, day)
left join {{ ref('int_account_signup') }} as s using (user_id, day)
left join {{ ref('int_account_reputation') }} as r using (user_id, day)
