"""Content reputation: does an account post what suspended spam accounts posted before it?

A new account's first posts say little through cadence (a handful of gaps), and a short post
looks the same from a bot and a person ("wow <link>", "check my profile <link>"). What tells
them apart from the first post on is *whose* content it repeats. The enforcement log (the
platform's own record, never truth) says which accounts were suspended for ``bot`` or ``spam``;
an item (a normalised text or a link) becomes *bad* once such an account posted it and was
suspended, both before the cut. Per (user_id, day), over the window's posts and replies:

- ``text_bad_share_7d``: the share whose normalised text (as in ``dup_text_share_7d``) another
  account posted and was then suspended for bot or spam, both before the cut;
- ``link_bad_share_7d``: the same for the link (exact URL), over the posts with a link;
- ``domain_bad_rate_7d``: over the posts with a link, the mean share of the link's domain's
  other posters (every other account that posted that domain before the cut) suspended for bot
  or spam before the cut (0 when nobody else posted it): a spam domain scores near its farms'
  suspension rate, a news site near 0.

The account itself never counts as its own evidence (an item it posted before its own
suspension is not bad for it). Like the rest of :mod:`vigil.accounts.features`, a row sees only
posts and suspensions before its ``event_timestamp``. Expects the temp tables ``days``,
``posts`` (of ``features._sql``) and ``susp`` (of :func:`vigil.accounts.signup.signup_sql`) and
the view ``ev`` on the connection.
"""

from __future__ import annotations

LINK_RE = r"https?://[^\s]+"
DOMAIN_RE = r"https?://([^/\s]+)"

# feature -> (type, description), appended to features.FEATURES
REPUTATION_FEATURES: dict[str, tuple[str, str]] = {
    "text_bad_share_7d": ("float", "share of posts whose text a suspended spam account posted"),
    "link_bad_share_7d": (
        "float",
        "share of link posts whose link a suspended spam account posted",
    ),
    "domain_bad_rate_7d": ("float", "mean share of the link domain's posters suspended for spam"),
}


def normalised_text_sql(col: str) -> str:
    """Lowercase, no links, @mentions, digits or punctuation; NULL when nothing is left."""
    return (
        "nullif(trim(regexp_replace(regexp_replace(regexp_replace(lower("
        f"{col}), '{LINK_RE}', ' ', 'g'), '@[a-z0-9_]+', ' ', 'g'), '[^a-z]+', ' ', 'g')), '')"
    )


def reputation_sql() -> str:
    """Temp table ``reputation``: (user_id, day) + :data:`REPUTATION_FEATURES` (nulls: no post)."""
    return f"""
create or replace temp table allposts as
  select user_id, event_ts, {normalised_text_sql("text")} as norm,
         regexp_extract(text, '{LINK_RE}') as link,
         regexp_extract(text, '{DOMAIN_RE}', 1) as domain
  from ev where action in ('post', 'reply') and text is not null;

-- an item is bad for others from the later of its post and its poster's bot/spam suspension
create or replace temp table badsrc as
  select item, user_id, min(greatest(event_ts, bot_suspended_at)) as since
  from (select 't:' || norm as item, a.user_id, a.event_ts, s.bot_suspended_at
        from allposts a join susp s using (user_id) where a.norm is not null
        union all
        select 'u:' || link, a.user_id, a.event_ts, s.bot_suspended_at
        from allposts a join susp s using (user_id) where a.link <> '')
  where bot_suspended_at is not null
  group by all;

-- the two earliest bad sources per item: the earliest that is not the account itself
create or replace temp table badtop as
  select item,
    max(case when rk = 1 then user_id end) as u1,
    max(case when rk = 1 then since end) as s1,
    max(case when rk = 2 then since end) as s2
  from (select *, row_number() over (partition by item order by since, user_id) as rk
        from badsrc)
  where rk <= 2
  group by item;

create or replace temp table domposters as
  select domain, user_id, min(event_ts) as first_ts from allposts where domain <> ''
  group by all;

create or replace temp table domrate as
  select d.day, p.domain, count(*) as n,
    count(*) filter (where s.bot_suspended_at < d.ets) as n_bad
  from days d join domposters p on p.first_ts < d.ets
  left join susp s on s.user_id = p.user_id
  group by all;

create or replace temp table reputation as
  select p.user_id, p.day,
    avg(case when coalesce((bt.u1 <> p.user_id and bt.s1 < d.ets) or bt.s2 < d.ets, false)
             then 1.0 else 0.0 end) as text_bad_share_7d,
    coalesce(sum(case when coalesce((bl.u1 <> p.user_id and bl.s1 < d.ets) or bl.s2 < d.ets,
                                    false) then 1.0 else 0.0 end)
             / nullif(count(*) filter (where p.link <> ''), 0), 0) as link_bad_share_7d,
    -- the other posters of the domain: the account itself leaves both counts
    coalesce(avg((dr.n_bad - case when coalesce(me.bot_suspended_at < d.ets, false)
                                  then 1 else 0 end) / nullif(dr.n - 1, 0))
             filter (where p.link <> ''), 0) as domain_bad_rate_7d
  from posts p
  join days d on d.day = p.day
  left join susp me on me.user_id = p.user_id
  left join badtop bt on bt.item = 't:' || p.norm
  left join badtop bl on bl.item = 'u:' || p.link
  left join domrate dr on dr.day = p.day
    and dr.domain = regexp_extract(p.link, '{DOMAIN_RE}', 1)
  group by all;
"""
