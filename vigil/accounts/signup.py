"""Account features that need no history: what a day or two of a new account already shows.

A bot's second day gives the cadence features little to work on (a handful of gaps), and a new
human's first sessions can look like a new bot's. These features are informative from the first
session on, and, like the rest of :mod:`vigil.accounts.features`, a row for day D counts only
what happened before its ``event_timestamp`` (D + 1 00:00 UTC):

- **action mix** of the window's non-login events: the shares of follows, views and likes.
  People browse (views, likes); automated accounts post and follow and rarely just look;
- **session shape**: non-login events per login in the window (a login opens a session);
- **login geography**: the share of the window's logins whose country differs from the
  account's home country (a farm's accounts log in from the farm's country);
- **fingerprint reputation**: the other accounts that share one of the account's device or
  network fingerprints (both seen with it before the cut) and were suspended before the cut,
  for any reason and for ``bot``/``spam`` (the enforcement log, the platform's own record).
  A new account that logs in from a device a suspended bot used is known at its first login.

Expects the temp tables of ``features._sql`` (``ew``, ``base``, ``fppairs``) and the views
``users`` and ``enf`` (the enforcement log) on the connection.
"""

from __future__ import annotations

BOT_REASONS = ("bot", "spam")

# feature -> (type, description), appended to features.FEATURES
SIGNUP_FEATURES: dict[str, tuple[str, str]] = {
    "follow_share_7d": ("float", "share of non-login events that are follows"),
    "view_share_7d": ("float", "share of non-login events that are views"),
    "like_share_7d": ("float", "share of non-login events that are likes"),
    "events_per_login_7d": ("float", "non-login events / max(logins, 1) in the window"),
    "login_abroad_share_7d": ("float", "share of logins from a country other than home"),
    "fp_suspended_accounts": ("int", "accounts sharing one of its fps, suspended before the cut"),
    "fp_bot_suspended_accounts": ("int", "the same, suspended for bot or spam"),
}


def signup_sql() -> str:
    """Temp table ``signup``: (user_id, day) + :data:`SIGNUP_FEATURES` (nulls where no data)."""
    reasons = ", ".join(f"'{r}'" for r in BOT_REASONS)
    return f"""
create or replace temp table mix as
  select user_id, day,
    count(*) filter (where action <> 'login') as acts,
    count(*) filter (where action = 'login') as logins,
    count(*) filter (where action = 'follow') as n_follow,
    count(*) filter (where action = 'view') as n_view,
    count(*) filter (where action = 'like') as n_like
  from ew group by all;

create or replace temp table abroad as
  select e.user_id, e.day,
    avg(case when e.country <> u.home_country then 1.0 else 0.0 end) as login_abroad_share_7d
  from ew e join users u on u.user_id = e.user_id
  where e.action = 'login' and e.country is not null and u.home_country is not null
  group by all;

create or replace temp table susp as
  select user_id, min(enforced_at) as suspended_at,
    min(enforced_at) filter (where reason in ({reasons})) as bot_suspended_at
  from enf where action = 'suspend' group by all;

create or replace temp table fprep as
  select b.user_id, b.day,
    count(distinct p.other) filter (where s.suspended_at < b.ets) as fp_suspended_accounts,
    count(distinct p.other) filter (where s.bot_suspended_at < b.ets) as fp_bot_suspended_accounts
  from base b
  join fppairs p on p.user_id = b.user_id and p.since < b.ets
  join susp s on s.user_id = p.other
  group by all;

create or replace temp table signup as
  select b.user_id, b.day,
    coalesce(m.n_follow / nullif(m.acts, 0), 0)::double as follow_share_7d,
    coalesce(m.n_view / nullif(m.acts, 0), 0)::double as view_share_7d,
    coalesce(m.n_like / nullif(m.acts, 0), 0)::double as like_share_7d,
    coalesce(m.acts / greatest(m.logins, 1), 0)::double as events_per_login_7d,
    coalesce(a.login_abroad_share_7d, 0)::double as login_abroad_share_7d,
    coalesce(r.fp_suspended_accounts, 0)::bigint as fp_suspended_accounts,
    coalesce(r.fp_bot_suspended_accounts, 0)::bigint as fp_bot_suspended_accounts
  from base b
  left join mix m using (user_id, day)
  left join abroad a using (user_id, day)
  left join fprep r using (user_id, day);
"""
