-- Content reputation (vigil.accounts.reputation.REPUTATION_FEATURES): does an account post the
-- texts, links and domains of accounts suspended for bot or spam, both before the cut? The account
-- is never its own evidence. One row per (account, day) with a post in the window.
with susp as (

    select * from {{ ref('int_account_suspensions') }}

),

allposts as (

    select
        user_id,
        event_at as event_ts,
        {{ vigil.account_normalised_text('event_text') }} as norm,
        regexp_extract(event_text, '{{ vigil.account_link_re() }}') as link,
        regexp_extract(event_text, '{{ vigil.account_domain_re() }}', 1) as domain
    from {{ ref('stg_lake__events') }}
    where action in ('post', 'reply') and event_text is not null

),

-- an item is bad for others from the later of its post and its poster's bot/spam suspension
badsrc as (

    select item, user_id, min(greatest(event_ts, bot_suspended_at)) as since
    from (
        select 't:' || a.norm as item, a.user_id, a.event_ts, s.bot_suspended_at
        from allposts as a inner join susp as s using (user_id)
        where a.norm is not null
        union all
        select 'u:' || a.link as item, a.user_id, a.event_ts, s.bot_suspended_at
        from allposts as a inner join susp as s using (user_id)
        where a.link <> ''
    ) as sources
    where bot_suspended_at is not null
    group by all

),

-- the two earliest bad sources per item: the earliest that is not the account itself
badtop as (

    select
        item,
        max(case when rk = 1 then user_id end) as u1,
        max(case when rk = 1 then since end) as s1,
        max(case when rk = 2 then since end) as s2
    from (
        select *, row_number() over (partition by item order by since, user_id) as rk
        from badsrc
    ) as ranked
    where rk <= 2
    group by item

),

domposters as (

    select domain, user_id, min(event_ts) as first_ts
    from allposts
    where domain <> ''
    group by all

),

domrate as (

    select
        d.day,
        p.domain,
        count(*) as n,
        count(*) filter (where s.bot_suspended_at < d.ets) as n_bad
    from {{ ref('int_account_days') }} as d
    inner join domposters as p on p.first_ts < d.ets
    left join susp as s on s.user_id = p.user_id
    group by all

)

select
    p.user_id,
    p.day,
    avg(case when coalesce((bt.u1 <> p.user_id and bt.s1 < d.ets) or bt.s2 < d.ets, false)
             then 1.0 else 0.0 end) as text_bad_share_7d,
    coalesce(sum(case when coalesce((bl.u1 <> p.user_id and bl.s1 < d.ets) or bl.s2 < d.ets,
                                    false) then 1.0 else 0.0 end)
             / nullif(count(*) filter (where p.link <> ''), 0), 0) as link_bad_share_7d,
    -- the other posters of the domain: the account itself leaves both counts
    -- a float mean over a sorted list: avg() adds in thread order (account_features.sql)
    coalesce(list_avg(list_sort(list(
        (dr.n_bad - case when coalesce(me.bot_suspended_at < d.ets, false) then 1 else 0 end)
        / nullif(dr.n - 1, 0)
    ) filter (where p.link <> '' and dr.n > 1))), 0) as domain_bad_rate_7d
from {{ ref('int_account_posts') }} as p
inner join {{ ref('int_account_days') }} as d on d.day = p.day
left join susp as me on me.user_id = p.user_id
left join badtop as bt on bt.item = 't:' || p.norm
left join badtop as bl on bl.item = 'u:' || p.link
left join domrate as dr
    on dr.day = p.day
    and dr.domain = regexp_extract(p.link, '{{ vigil.account_domain_re() }}', 1)
group by all
