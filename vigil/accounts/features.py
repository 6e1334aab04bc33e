"""Point-in-time daily account features, one row per (user_id, day), as DuckDB SQL over the lake.

A row for day D has ``event_timestamp`` = D + 1 day 00:00 UTC and counts only what happened
before it: events in the trailing window [D + 1 - ``window_days``, D + 1), fingerprint sightings
since the start of the lake. Columns (:data:`FEATURES`, defined once; Feast's ``account_features``
view and the ``accounts`` gate read this list):

- cadence: coefficient of variation of the gaps between consecutive events (machines: near 0,
  people: sessions seconds apart and hours between them, well above 1) and the entropy (bits) of
  the histogram of log2(gap seconds);
- hour-of-day entropy (bits, 24 bins; all-day schedules near log2(24) = 4.58);
- text and link duplication: the share of the account's posts and replies whose normalised text
  (lowercase, no links, mentions, digits or punctuation) or link another account also posted in
  the window;
- follow churn (follows + unfollows) / max(follows, 1);
- fingerprint sharing: other accounts seen with one of the account's device or network
  fingerprints (``devices.jsonl``), and device-only;
- target concentration: the share of replies and @mentions aimed at the top-3 targets;
- account age in days, and volumes (events, posts, active hours).
- features that need no history (action mix, session shape, login geography, fingerprint
  reputation from the enforcement log): :mod:`vigil.accounts.signup`;
- content reputation (does it post the texts, links and domains of accounts suspended for
  spam before the cut): :mod:`vigil.accounts.reputation`.

Why DuckDB SQL here and not dbt marts: the account streams are snapshots outside the dbt
sources, and one dbt invocation costs ~5 s of start-up; the SQL is plain and portable and moves
into ``dbt/models/marts/features`` unchanged once the sources are declared.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from vigil import config
from vigil.accounts.reputation import (
    LINK_RE,
    REPUTATION_FEATURES,
    normalised_text_sql,
    reputation_sql,
)
from vigil.accounts.signup import SIGNUP_FEATURES, signup_sql
from vigil.errors import UserError

log = logging.getLogger(__name__)

TABLE = "account_features"
WINDOW_DAYS = 7
# feature -> (type, description). Types: int (Int64), float (Float64).
FEATURES: dict[str, tuple[str, str]] = {
    "account_age_days": ("float", "days from created_at to event_timestamp"),
    "events_7d": ("int", "the account's events in the window"),
    "posts_7d": ("int", "posts and replies in the window"),
    "active_hours_7d": ("int", "distinct clock hours (UTC day-hours) with an event"),
    "gap_cv_7d": ("float", "coefficient of variation of inter-event gaps (0 when < 2 gaps)"),
    "gap_entropy_7d": ("float", "entropy (bits) of the histogram of floor(log2(gap s + 1))"),
    "hour_entropy_7d": ("float", "entropy (bits) of the hour-of-day histogram of events"),
    "dup_text_share_7d": ("float", "share of posts whose normalised text another account posted"),
    "dup_link_share_7d": ("float", "share of posts whose link another account posted"),
    "link_share_7d": ("float", "share of posts carrying a link"),
    "follow_churn_7d": ("float", "(follows + unfollows) / max(follows, 1)"),
    "fp_shared_accounts": ("int", "other accounts seen with one of its device or network fps"),
    "device_shared_accounts": ("int", "other accounts seen with one of its device fps"),
    "target_concentration_7d": ("float", "share of replies and mentions to its top-3 targets"),
    "targeted_actions_7d": ("int", "replies and mentions with a target"),
    **SIGNUP_FEATURES,
    **REPUTATION_FEATURES,
}
TTL_DAYS = 2


# ~150 lines: one SQL script (temp tables in order, then the feature table)
def _sql(window_days: int) -> str:
    w = int(window_days)
    return f"""
create or replace temp table days as
  select d::date as day, (d + interval 1 day)::timestamptz as ets,
         (d + interval 1 day - interval {w} day)::timestamptz as wstart
  from (select unnest(generate_series(lo, hi, interval 1 day)) as d
        from (select min(event_ts)::date::timestamp as lo, max(event_ts)::date::timestamp as hi
              from ev));

create or replace temp table ev2 as
  select user_id, event_ts, action, post_id, target_user_id, text, country,
         lag(event_ts) over (partition by user_id order by event_ts, event_id) as prev_ts
  from ev;

-- each event joined to the days whose window holds it
create or replace temp table ew as
  select d.day, d.ets, d.wstart, e.*
  from ev2 e join days d on e.event_ts >= d.wstart and e.event_ts < d.ets;

create or replace temp table base as
  select u.user_id, d.day, d.ets, u.created_at
  from users u join days d on u.created_at < d.ets;

create or replace temp table vol as
  select user_id, day,
    count(*) as events_7d,
    count(*) filter (where action in ('post', 'reply')) as posts_7d,
    count(distinct date_trunc('hour', event_ts)) as active_hours_7d,
    count(*) filter (where action = 'follow') as follows,
    count(*) filter (where action = 'unfollow') as unfollows
  from ew group by all;

create or replace temp table gaps as
  select user_id, day,
         epoch(event_ts) - epoch(prev_ts) as gap_s
  from ew where prev_ts is not null and prev_ts >= wstart;

create or replace temp table gapstat as
  select user_id, day,
    case when count(*) >= 2 and avg(gap_s) > 0 then stddev_pop(gap_s) / avg(gap_s) else 0 end
      as gap_cv_7d
  from gaps group by all;

create or replace temp table gapent as
  select user_id, day, -sum(p * log2(p)) as gap_entropy_7d
  from (select user_id, day, count(*) / sum(count(*)) over (partition by user_id, day) as p
        from gaps group by user_id, day, floor(log2(gap_s + 1)))
  group by all;

create or replace temp table hourent as
  select user_id, day, -sum(p * log2(p)) as hour_entropy_7d
  from (select user_id, day, count(*) / sum(count(*)) over (partition by user_id, day) as p
        from ew group by user_id, day, hour(event_ts))
  group by all;

create or replace temp table posts as
  select day, user_id,
    {normalised_text_sql("text")} as norm,
    regexp_extract(text, '{LINK_RE}') as link
  from ew where action in ('post', 'reply') and text is not null;

create or replace temp table normusers as
  select day, norm, count(distinct user_id) as n from posts where norm is not null group by all;
create or replace temp table linkusers as
  select day, link, count(distinct user_id) as n from posts where link <> '' group by all;

create or replace temp table dup as
  select p.user_id, p.day,
    avg(case when nu.n >= 2 then 1.0 else 0.0 end) as dup_text_share_7d,
    coalesce(sum(case when lu.n >= 2 then 1.0 else 0.0 end)
             / nullif(count(*) filter (where p.link <> ''), 0), 0) as dup_link_share_7d,
    avg(case when p.link <> '' then 1.0 else 0.0 end) as link_share_7d
  from posts p
  left join normusers nu on nu.day = p.day and nu.norm = p.norm
  left join linkusers lu on lu.day = p.day and lu.link = p.link
  group by all;

-- targets: replies' authors and @mentions resolved through users.handle
create or replace temp table targets as
  select user_id, day, target_user_id as target from ew
  where action = 'reply' and target_user_id is not null and target_user_id <> user_id
  union all
  select m.user_id, m.day, u.user_id as target
  from (select user_id, day, unnest(regexp_extract_all(text, '@([A-Za-z0-9_]+)', 1)) as h
        from ew where action in ('post', 'reply') and text like '%@%') m
  join users u on u.handle = m.h
  where u.user_id <> m.user_id;

create or replace temp table targ as
  select user_id, day, sum(n) as targeted_actions_7d,
         sum(n) filter (where rk <= 3) / sum(n) as target_concentration_7d
  from (select user_id, day, target, count(*) as n,
               row_number() over (partition by user_id, day order by count(*) desc, target) as rk
        from targets group by user_id, day, target)
  group by all;

-- fingerprints: when two accounts first shared one (both seen with it)
create or replace temp table fpfirst as
  select user_id, 'd:' || device_fp as fp, min(seen_at) as first_seen from dev group by all
  union all
  select user_id, 'n:' || network_fp, min(seen_at) from dev group by all;

create or replace temp table fppairs as
  select a.user_id, b.user_id as other, a.fp like 'd:%' as is_device,
         greatest(a.first_seen, b.first_seen) as since
  from fpfirst a join fpfirst b on a.fp = b.fp and a.user_id <> b.user_id;

create or replace temp table fpshare as
  select b.user_id, b.day,
    count(distinct p.other) as fp_shared_accounts,
    count(distinct p.other) filter (where p.is_device) as device_shared_accounts
  from base b join fppairs p on p.user_id = b.user_id and p.since < b.ets
  group by all;

{signup_sql()}

{reputation_sql()}

create or replace temp table {TABLE} as
  select b.user_id, b.ets as event_timestamp,
    (epoch(b.ets) - epoch(b.created_at)) / 86400.0 as account_age_days,
    coalesce(v.events_7d, 0)::bigint as events_7d,
    coalesce(v.posts_7d, 0)::bigint as posts_7d,
    coalesce(v.active_hours_7d, 0)::bigint as active_hours_7d,
    coalesce(g.gap_cv_7d, 0)::double as gap_cv_7d,
    coalesce(ge.gap_entropy_7d, 0)::double as gap_entropy_7d,
    coalesce(h.hour_entropy_7d, 0)::double as hour_entropy_7d,
    coalesce(dp.dup_text_share_7d, 0)::double as dup_text_share_7d,
    coalesce(dp.dup_link_share_7d, 0)::double as dup_link_share_7d,
    coalesce(dp.link_share_7d, 0)::double as link_share_7d,
    ((coalesce(v.follows, 0) + coalesce(v.unfollows, 0)) / greatest(coalesce(v.follows, 0), 1))::double
      as follow_churn_7d,
    coalesce(f.fp_shared_accounts, 0)::bigint as fp_shared_accounts,
    coalesce(f.device_shared_accounts, 0)::bigint as device_shared_accounts,
    coalesce(t.target_concentration_7d, 0)::double as target_concentration_7d,
    coalesce(t.targeted_actions_7d, 0)::bigint as targeted_actions_7d,
    {", ".join(f"s.{name}" for name in SIGNUP_FEATURES)},
    {", ".join(f"coalesce(r.{name}, 0)::double as {name}" for name in REPUTATION_FEATURES)}
  from base b
  left join vol v using (user_id, day)
  left join gapstat g using (user_id, day)
  left join gapent ge using (user_id, day)
  left join hourent h using (user_id, day)
  left join dup dp using (user_id, day)
  left join fpshare f using (user_id, day)
  left join targ t using (user_id, day)
  left join signup s using (user_id, day)
  left join reputation r using (user_id, day)
  order by b.user_id, event_timestamp;
"""


def compute(con, window_days: int = WINDOW_DAYS):
    """Account features from tables/views ``ev`` (lake events, with the login ``country``),
    ``users``, ``dev`` (devices) and ``enf`` (the enforcement log) already on ``con``; returns an Arrow table sorted by (user_id, event_timestamp)."""
    con.execute("set TimeZone = 'UTC'")
    con.execute("set enable_progress_bar = false")
    for statement in _sql(window_days).split(";"):
        if statement.strip():
            con.execute(statement)
    return con.sql(f"select * from {TABLE}").to_arrow_table()


def _lake_views(con, paths) -> None:
    from vigil.lake.store import check_readable

    events = sorted(paths.lake_events.glob("dt=*/events.parquet"))
    users = paths.lake_users / "users.parquet"
    devices = paths.lake_devices / "devices.parquet"
    enforcement = paths.lake_enforcement / "enforcement.parquet"
    if not events or not users.exists():
        raise UserError(
            f"the lake at {paths.lake} has no events or users: run `vigil ingest --raw RAW` first."
        )
    if not devices.exists() or not enforcement.exists():
        raise UserError(
            f"the lake has no {devices} or {enforcement}: ingest an accounts world "
            "(`vigil simulate-accounts --raw RAW` then `vigil ingest --raw RAW`)."
        )
    check_readable([*events, users, devices, enforcement])
    files = ", ".join(f"'{p}'" for p in events)
    con.execute(
        "create or replace temp view ev as select event_id, event_ts, user_id, action, post_id, "
        f"target_user_id, text, country from read_parquet([{files}])"
    )
    con.execute(f"create or replace temp view users as select * from read_parquet('{users}')")
    con.execute(f"create or replace temp view dev as select * from read_parquet('{devices}')")
    con.execute(f"create or replace temp view enf as select * from read_parquet('{enforcement}')")


def build(window_days: int = WINDOW_DAYS, out: Path | None = None) -> dict:
    """Compute the features from the lake and write ``features/account_features.parquet``."""
    from vigil.lake.store import duckdb_connection, write_parquet

    started = time.perf_counter()
    paths = config.paths()
    con = duckdb_connection(paths)
    con.execute("set threads = 2")
    _lake_views(con, paths)
    table = compute(con, window_days)
    dest = out or paths.features / f"{TABLE}.parquet"
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_parquet(table, dest)
    result = {
        "rows": table.num_rows,
        "users": len(set(table["user_id"].to_pylist())),
        "path": str(dest),
        "seconds": round(time.perf_counter() - started, 2),
    }
    log.info(
        "accounts: %d feature rows for %d users in %.1f s",
        result["rows"],
        result["users"],
        result["seconds"],
    )
    return result
