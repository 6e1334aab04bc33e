"""The user graph from the lake, as of the end of a day (point in time: only events before it).

Nodes: the users of ``lake/users`` created before the snapshot time. Edges (undirected, weights
summed over both directions, then ``log1p``):

- follows that still hold at the snapshot (the pair's last follow/unfollow is a follow): 1 each;
- interactions aimed at a person: reply 1, share 1, like 0.5 (``target_user_id`` is the post's
  author), and each ``@handle`` mention in a post or reply 1.

Views, dislikes, reports, blocks and mutes are no proximity; blocks, mutes and reports received
are node features instead. Node features (:data:`FEATURE_NAMES`): log1p counts of what the user
did and received before the snapshot, the node's degree and weighted degree, and the
account's age.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime

import numpy as np

from vigil.config import duckdb_threads, paths
from vigil.errors import UserError
from vigil.graph.sampler import Graph

log = logging.getLogger(__name__)

EDGE_WEIGHTS = {"follow": 1.0, "reply": 1.0, "share": 1.0, "like": 0.5, "mention": 1.0}
FEATURE_NAMES = (
    "account_age_days",
    "degree",
    "weighted_degree",
    "posts",
    "replies",
    "likes_received",
    "reports_received",
    "blocks_received",
    "mutes_received",
    "mentions_made",
)


@dataclass(frozen=True)
class UserGraph:
    as_of: datetime  # the snapshot time: events strictly before it
    user_ids: np.ndarray  # node i is user user_ids[i]
    graph: Graph
    features: np.ndarray  # (n, len(FEATURE_NAMES)), log1p

    def index(self) -> dict[int, int]:
        return {int(u): i for i, u in enumerate(self.user_ids)}


def snapshot_time(day: date) -> datetime:
    """A day's snapshot time: the end of that day (UTC)."""
    return datetime.combine(day + timedelta(days=1), dtime(0), tzinfo=UTC)


_SQL = """
with ev as (
    select user_id, action, target_user_id, text, event_ts
    from read_parquet($events, union_by_name = true)
    where cast(event_ts as timestamptz) < $as_of and user_id is not null
),
users as (
    select user_id, handle, created_at from read_parquet($users)
    where cast(created_at as timestamptz) < $as_of
),
follow_state as (
    select user_id as a, target_user_id as b, arg_max(action, event_ts) as last_action
    from ev where action in ('follow', 'unfollow') and target_user_id is not null
    group by all
),
interactions as (
    select user_id as a, target_user_id as b,
        case action when 'reply' then $w_reply when 'share' then $w_share else $w_like end as w
    from ev
    where action in ('reply', 'share', 'like') and target_user_id is not null
),
mentions as (
    select ev.user_id as a, users.user_id as b, $w_mention as w
    from (
        select user_id, unnest(regexp_extract_all(text, '@([A-Za-z0-9_]+)', 1)) as handle
        from ev where action in ('post', 'reply') and text like '%@%'
    ) as ev
    join users using (handle)
),
edges as (
    select a, b, $w_follow as w from follow_state where last_action = 'follow'
    union all select a, b, w from interactions
    union all select a, b, w from mentions
)
select least(a, b) as a, greatest(a, b) as b, sum(w) as w
from edges where a <> b group by all
"""

_FEATURES_SQL = """
with ev as (
    select user_id, action, target_user_id, text
    from read_parquet($events, union_by_name = true)
    where cast(event_ts as timestamptz) < $as_of and user_id is not null
),
made as (
    select user_id,
        count(*) filter (where action = 'post') as posts,
        count(*) filter (where action = 'reply') as replies,
        count(*) filter (where action in ('post', 'reply') and text like '%@%') as mentions_made
    from ev group by all
),
received as (
    select target_user_id as user_id,
        count(*) filter (where action = 'like') as likes_received,
        count(*) filter (where action = 'report') as reports_received,
        count(*) filter (where action = 'block') as blocks_received,
        count(*) filter (where action = 'mute') as mutes_received
    from ev where target_user_id is not null group by all
)
select user_id, posts, replies, mentions_made, likes_received, reports_received,
    blocks_received, mutes_received
from made full outer join received using (user_id)
"""


def _event_files(day: date) -> list[str]:
    root = paths().lake_events
    files = [
        str(f)
        for f in sorted(root.glob("dt=*/*.parquet"))
        if f.parent.name.removeprefix("dt=") <= day.isoformat()
    ]
    if not files:
        raise UserError(
            f"no lake events up to {day} under {root}: ingest first (`vigil ingest` or "
            "`vigil pipeline`)."
        )
    return files


def load(day: date) -> UserGraph:
    """The user graph and node features as of the end of ``day``, read from the lake."""
    import duckdb

    started = time.monotonic()
    users_file = paths().lake_users / "users.parquet"
    if not users_file.exists():
        raise UserError(f"no users table at {users_file}: ingest first (`vigil ingest`).")
    as_of = snapshot_time(day)
    params = {
        "events": _event_files(day),
        "users": str(users_file),
        "as_of": as_of,
        **{f"w_{k}": v for k, v in EDGE_WEIGHTS.items()},
    }
    con = duckdb.connect()
    try:
        con.execute(f"set threads = {duckdb_threads()}")
        users = con.execute(
            "select user_id, created_at from read_parquet($users) "
            "where cast(created_at as timestamptz) < $as_of "
            "order by user_id",
            {"users": params["users"], "as_of": as_of},
        ).df()
        edges = con.execute(_SQL, params).df()
        counts = con.execute(_FEATURES_SQL, {"events": params["events"], "as_of": as_of}).df()
    finally:
        con.close()
    user_ids = users["user_id"].to_numpy(dtype=np.int64)
    pos = {int(u): i for i, u in enumerate(user_ids)}
    a = edges["a"].map(pos)
    b = edges["b"].map(pos)
    known = a.notna() & b.notna()
    graph = Graph.from_edges(
        len(user_ids),
        a[known].astype(np.int64).to_numpy(),
        b[known].astype(np.int64).to_numpy(),
        np.log1p(edges.loc[known, "w"].to_numpy(dtype=np.float64)),
    )
    features = node_features(users, counts, edges, as_of, pos, graph)
    log.info(
        "graph as of %s: %d users, %d edges (%d users without edges) in %.1fs",
        as_of.isoformat(),
        graph.num_nodes,
        graph.num_edges,
        int((graph.degree() == 0).sum()),
        time.monotonic() - started,
    )
    return UserGraph(as_of, user_ids, graph, features)


def node_features(users, counts, edges, as_of, pos, graph: Graph) -> np.ndarray:
    """The FEATURE_NAMES columns, log1p, one row per node (0 where a user has no events)."""
    import pandas as pd

    n = len(users)
    out = np.zeros((n, len(FEATURE_NAMES)))
    created = pd.to_datetime(users["created_at"], utc=True)
    out[:, 0] = ((pd.Timestamp(as_of) - created).dt.total_seconds() / 86400).clip(lower=0)
    idx = counts["user_id"].map(pos)
    ok = idx.notna().to_numpy()
    rows = idx[ok].astype(np.int64).to_numpy()
    for j, name in enumerate(FEATURE_NAMES):
        if name in counts.columns:
            out[rows, j] = counts.loc[ok, name].fillna(0).to_numpy(dtype=np.float64)
    out[:, 1] = graph.degree()
    out[:, 2] = np.bincount(
        np.repeat(np.arange(graph.num_nodes), graph.degree()),
        weights=graph.weights,
        minlength=graph.num_nodes,
    )
    return np.log1p(out)
