"""`vigil simulate-discovery`: a world for Explore and the home timeline, deterministic per seed.

The world, in one paragraph. Users live in a region, hold topic interests (a sparse Dirichlet
over the text grammar's 11 topics) and a viewpoint (two camps, 60/40), and follow ~30 others
chosen by shared interests, camp and region. They post on their topics with the grammar of
:mod:`sim.text`; a few abusive authors sometimes post harmful texts, most of which moderators
remove (``labels.jsonl``) within hours. Events happen: a burst of posts on one topic in one region
(or worldwide) from a known minute, for 1-3 hours. Users open sessions (home, or explore) and see
~20 posts drawn by a logging policy (followed authors' recent posts and random recent posts, in a
random order, so position is not utility). Each post has a true utility for the viewer
(:func:`utility`: interest in its topic, affinity to its author, freshness, quality, news value
of an event in the viewer's region, harm, camp); views fall with position, and likes, replies,
shares, dwell and negative feedback (dislike, mute, report) follow utility.

Files: the raw log contract (``events/dt=*/hour=*.jsonl``, ``users.jsonl``, ``labels.jsonl``),
plus ``impressions.jsonl`` (surface, position, dwell). Truth under ``_truth/discovery_*``: users'
interests and camps, posts' topics, quality, harm and event, follows' affinity, the events with
their start times. The platform never reads it; :mod:`sim.discovery_harness` grades with it.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sim.discovery_params import DAY, HOUR, REGION_WEIGHTS, REGIONS, DiscoveryParams
from sim.discovery_params import P as DEFAULT_PARAMS
from sim.text import TextGen
from sim.vocabulary import BENIGN_TEMPLATES, CLOSERS, OPENERS, TOPIC_NAMES, TOPICS
from vigil.contracts import HARM_TYPES
from vigil.errors import UserError

log = logging.getLogger(__name__)

N_TOPICS = len(TOPIC_NAMES)


# --------------------------------------------------------------------------------------------
# the people
# --------------------------------------------------------------------------------------------


def _people(rng, n: int, start_ms: int, p: DiscoveryParams) -> dict[str, np.ndarray]:
    interests = rng.dirichlet(np.full(N_TOPICS, p.interest_alpha), size=n)
    return {
        "user_id": np.arange(1, n + 1, dtype=np.int64),
        "region": rng.choice(len(REGIONS), size=n, p=REGION_WEIGHTS),
        "interests": interests,
        "interest_norm": interests / interests.max(axis=1, keepdims=True),
        "viewpoint": np.where(rng.random(n) < p.viewpoint_majority, 1, -1).astype(np.int8),
        "activity": rng.lognormal(0.0, 0.6, size=n),
        "abusive": rng.random(n) < p.abusive_share,
        "quality": rng.beta(4, 2, size=n),
        "created_ms": start_ms - rng.integers(30, 900, size=n) * DAY,
    }


def _follows(rng, u: dict, p: DiscoveryParams) -> np.ndarray:
    """Dense (n x n) affinity: 0 = not followed, else the follow's strength in [0.5, 1.5]."""
    n = len(u["user_id"])
    unit = u["interests"] / np.linalg.norm(u["interests"], axis=1, keepdims=True)
    aff = np.zeros((n, n), dtype=np.float32)
    pop = np.sqrt(u["activity"])
    for i in range(n):
        w = np.exp(3.0 * unit @ unit[i]) * pop
        w *= np.where(u["viewpoint"] == u["viewpoint"][i], 1.6, 0.6)
        w *= np.where(u["region"] == u["region"][i], 1.5, 1.0)
        w[i] = 0.0
        k = min(n - 1, 3 + rng.poisson(p.follows_mean - 3))
        chosen = rng.choice(n, size=k, replace=False, p=w / w.sum())
        aff[i, chosen] = rng.uniform(0.5, 1.5, size=k)
    return aff


# --------------------------------------------------------------------------------------------
# posts and events
# --------------------------------------------------------------------------------------------


def _diurnal_times(rng, k: int, start_ms: int, days: int, amp: float) -> np.ndarray:
    hours = np.arange(24)
    w = 1.0 + amp * np.sin(2 * np.pi * (hours - 9) / 24)
    day = rng.integers(0, days, size=k)
    hour = rng.choice(24, size=k, p=w / w.sum())
    return start_ms + day * DAY + hour * HOUR + rng.integers(0, HOUR, size=k)


def _events(rng, start_ms: int, days: int, users: int, p: DiscoveryParams) -> list[dict]:
    n = rng.poisson(p.events_per_day * days)
    out = []
    for k in range(n):
        world = bool(rng.random() < p.p_worldwide)
        lo, hi = p.event_rate_worldwide if world else p.event_rate_regional
        begin = start_ms + 6 * HOUR + int(rng.integers(0, days * DAY - 10 * HOUR))
        hours = float(rng.uniform(*p.event_hours))
        out.append(
            {
                "event_id": k + 1,
                "topic": TOPIC_NAMES[int(rng.integers(N_TOPICS))],
                "region": None
                if world
                else REGIONS[int(rng.choice(len(REGIONS), p=REGION_WEIGHTS))],
                "start_ms": begin,
                "end_ms": begin + int(hours * HOUR),
                "posts_per_hour": round(float(rng.uniform(lo, hi)) * users / p.event_rate_users, 1),
            }
        )
    return sorted(out, key=lambda e: e["start_ms"])


def _posts(rng, u: dict, events: list[dict], start_ms: int, days: int, p: DiscoveryParams):
    """Every post (ordinary and event bursts) as columns, in time order, ids 1..N."""
    n = len(u["user_id"])
    counts = rng.poisson(p.posts_per_user_day * days * u["activity"] / u["activity"].mean())
    author = np.repeat(np.arange(n), counts)
    ts = _diurnal_times(rng, len(author), start_ms, days, p.diurnal_amplitude)
    cum = np.cumsum(u["interests"][author], axis=1)
    topic = (rng.random((len(author), 1)) > cum).sum(axis=1).clip(max=N_TOPICS - 1)
    event = np.zeros(len(author), dtype=np.int64)
    parts = [(author, ts, topic, event)]
    for e in events:
        k = rng.poisson(e["posts_per_hour"] * (e["end_ms"] - e["start_ms"]) / HOUR)
        t = TOPIC_NAMES.index(e["topic"])
        w = u["interests"][:, t] + 0.02
        if e["region"] is not None:
            w = w * (u["region"] == REGIONS.index(e["region"]))
        a = rng.choice(n, size=k, p=w / w.sum())
        # a burst: most posts early, a tail later
        et = e["start_ms"] + ((e["end_ms"] - e["start_ms"]) * rng.beta(1.0, 1.8, size=k))
        parts.append((a, et.astype(np.int64), np.full(k, t), np.full(k, e["event_id"])))
    cols = [np.concatenate(c) for c in zip(*parts, strict=True)]
    order = np.argsort(cols[1], kind="stable")
    author, ts, topic, event = (c[order] for c in cols)
    m = len(author)
    harmful = u["abusive"][author] & (rng.random(m) < p.p_harmful_abusive) & (event == 0)
    quality = np.clip(u["quality"][author] + rng.normal(0, 0.15, m), 0, 1)
    quality[harmful] *= 0.3
    removed = harmful & (rng.random(m) < p.p_removed)
    delay = rng.uniform(*p.removal_delay_hours, size=m) * HOUR
    return {
        "post_id": np.arange(1, m + 1, dtype=np.int64),
        "author": author,
        "ts": ts,
        "topic": topic,
        "event": event,
        "harmful": harmful,
        "quality": quality,
        "removed_ms": np.where(removed, ts + delay.astype(np.int64), np.iinfo(np.int64).max),
    }


def _texts(seed: int, posts: dict) -> tuple[list[str], list[str]]:
    r = random.Random(seed)
    gen = TextGen(r)
    texts, types = [], []
    for t, harmful, event in zip(
        posts["topic"].tolist(), posts["harmful"].tolist(), posts["event"].tolist(), strict=True
    ):
        topic = TOPICS[TOPIC_NAMES[t]]
        body = r.choice(BENIGN_TEMPLATES).format(
            o=r.choice(OPENERS), c=r.choice(CLOSERS), thing=r.choice(topic["thing"]),
            adj=r.choice(topic["adj"]), thing2=r.choice(topic["thing"]),
            adj2=r.choice(topic["adj"]), n=r.randint(2, 9), h="",
        )  # fmt: skip
        if event or r.random() < 0.25:
            body += " " + r.choice(topic["tag"])
        kind = ""
        if harmful:
            kind = r.choice(HARM_TYPES)
            bad, _ = gen.harmful([kind], None)
            body = bad + " " + r.choice(topic["thing"])
        texts.append(body)
        types.append(kind)
    return texts, types


# --------------------------------------------------------------------------------------------
# true utility
# --------------------------------------------------------------------------------------------


def utility(
    truth: dict, users: np.ndarray, posts: np.ndarray, now_ms, p: DiscoveryParams = DEFAULT_PARAMS
) -> np.ndarray:
    """True utility of post rows ``posts`` for user rows ``users`` (0-based, same length) at
    ``now_ms`` (scalar or array). ``truth`` holds the world's columns (:func:`load_truth`)."""
    u, q = truth["users"], truth["posts"]
    author = q["author"][posts]
    age_h = np.maximum(0, np.asarray(now_ms) - q["ts"][posts]) / HOUR
    topic = q["topic"][posts]
    ev = q["event"][posts]
    ev_region = truth["event_region"][ev]  # -1 worldwide, -2 no event
    news = (ev > 0) & ((ev_region == -1) | (ev_region == u["region"][users]))
    return (
        p.w_interest * u["interest_norm"][users, topic]
        + p.w_affinity * truth["follows"][users, author]
        + p.w_fresh * np.exp(-age_h / p.fresh_hours)
        + p.w_quality * (q["quality"][posts] - 0.5)
        + p.w_news * news * np.exp(-age_h / 3.0)
        - p.w_harm * q["harmful"][posts]
        - p.w_viewpoint * (u["viewpoint"][author] != u["viewpoint"][users])
    )


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# --------------------------------------------------------------------------------------------
# sessions, impressions, engagement
# --------------------------------------------------------------------------------------------


def _sessions(rng, u: dict, start_ms: int, days: int, p: DiscoveryParams) -> np.ndarray:
    n = len(u["user_id"])
    active = rng.random((n, days)) < p.p_active_day
    per = active * (1 + rng.poisson(p.sessions_per_active_day - 1, size=(n, days)))
    user = np.repeat(np.arange(n), per.sum(axis=1))
    day = np.concatenate([np.repeat(np.arange(days), row) for row in per])
    ts = _diurnal_times(rng, len(user), start_ms, 1, p.diurnal_amplitude) + day * DAY
    order = np.argsort(ts, kind="stable")
    return np.stack([user[order], ts[order]], axis=1)


def _impressions(rng, truth: dict, sessions: np.ndarray, p: DiscoveryParams) -> dict:
    """The logging policy: followed authors' recent posts plus random recent posts, shuffled."""
    q = truth["posts"]
    k = p.impressions_per_session
    win = int(p.candidate_window_hours * HOUR)
    rows_u, rows_p, rows_t, rows_pos, rows_s = [], [], [], [], []
    for user, t in sessions.tolist():
        lo, hi = np.searchsorted(q["ts"], [t - win, t])
        if hi - lo < k:
            continue
        idx = np.arange(lo, hi)
        idx = idx[(q["removed_ms"][idx] > t) & (q["author"][idx] != user)]
        explore = rng.random() < p.p_explore_session
        if explore:  # recent posts, events' posts more often
            recent = idx[q["ts"][idx] > t - 6 * HOUR]
            if len(recent) < k:
                continue
            w = 1.0 + 4.0 * (q["event"][recent] > 0)
            pick = rng.choice(recent, size=k, replace=False, p=w / w.sum())
        else:
            followed = idx[truth["follows"][user, q["author"][idx]] > 0][-30:]
            rand = rng.choice(idx, size=min(len(idx), 15), replace=False)
            pool = np.unique(np.concatenate([followed, rand]))
            pick = rng.permutation(pool)[:k]
        n = len(pick)
        rows_u.append(np.full(n, user))
        rows_p.append(pick)
        rows_t.append(t + np.arange(n) * 2000)
        rows_pos.append(np.arange(n))
        rows_s.append(np.full(n, 1 if explore else 0))
    return {
        "user": np.concatenate(rows_u),
        "post": np.concatenate(rows_p),
        "ts": np.concatenate(rows_t).astype(np.int64),
        "position": np.concatenate(rows_pos),
        "surface": np.concatenate(rows_s),
    }


def _engagement(rng, truth: dict, imp: dict, p: DiscoveryParams) -> dict:
    util = utility(truth, imp["user"], imp["post"], imp["ts"], p)
    m = len(util)
    seen = rng.random(m) < np.exp(-p.position_decay * imp["position"])
    s = p.slope * util
    harmful = truth["posts"]["harmful"][imp["post"]]
    out = {
        "like": seen & (rng.random(m) < _sigmoid(s + p.like_bias)),
        "reply": seen & (rng.random(m) < _sigmoid(s + p.reply_bias)),
        "share": seen & (rng.random(m) < _sigmoid(s + p.share_bias)),
        "dislike": seen & (rng.random(m) < _sigmoid(-s - 3.0)),
        "mute": seen & (rng.random(m) < _sigmoid(-s - 5.0 + 1.5 * harmful)),
        "report": seen & (rng.random(m) < np.where(harmful, 0.15, 0.002)),
    }
    dwell = np.where(seen, np.exp(rng.normal(8.0 + 0.35 * util, 0.5)), 300.0)
    return {"util": util, "seen": seen, "dwell_ms": dwell.astype(np.int64), **out}


# --------------------------------------------------------------------------------------------
# the world
# --------------------------------------------------------------------------------------------


def simulate_discovery(
    raw_dir,
    users: int = 2000,
    days: int = 7,
    start: date = date(2026, 10, 1),
    seed: int = 7,
    params: DiscoveryParams = DEFAULT_PARAMS,
) -> dict:
    """Write a discovery world into ``raw_dir`` (raw logs + ``_truth/discovery_*``); return counts."""
    if not 50 <= users <= 20_000:  # the follow matrix is dense: 20k users take 1.6 GB
        raise UserError(f"--users {users} is out of range: give 50 to 20000.")
    if not 2 <= days <= 30:
        raise UserError(f"--days {days} is out of range: give 2 to 30.")
    raw = Path(raw_dir)
    if raw.exists() and not raw.is_dir():
        raise UserError(f"--out {raw} is a file: give a directory.")
    t0 = time.perf_counter()
    start_ms = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp() * 1000)
    u = _people(np.random.default_rng([seed, 23, 1]), users, start_ms, params)
    follows = _follows(np.random.default_rng([seed, 23, 2]), u, params)
    events = _events(np.random.default_rng([seed, 23, 3]), start_ms, days, users, params)
    posts = _posts(np.random.default_rng([seed, 23, 4]), u, events, start_ms, days, params)
    log.info("discovery world: %d users, %d posts, %d events", users, len(posts["ts"]), len(events))
    truth = _truth_dict(u, posts, follows, events)
    sessions = _sessions(np.random.default_rng([seed, 23, 5]), u, start_ms, days, params)
    imp = _impressions(np.random.default_rng([seed, 23, 6]), truth, sessions, params)
    eng = _engagement(np.random.default_rng([seed, 23, 7]), truth, imp, params)
    texts, harm_types = _texts(seed, posts)

    from sim.discovery_writer import write_world

    summary = write_world(raw, np.random.default_rng([seed, 23, 8]), u, posts, texts, harm_types,
                          follows, events, imp, eng, start_ms, days)  # fmt: skip
    summary.update({"seed": seed, "days": days, "start": start.isoformat(), "users": users})
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    (raw / "_truth" / "discovery_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info("discovery world written in %.1fs: %s", summary["seconds"], summary)
    return summary


def _truth_dict(u: dict, posts: dict, follows: np.ndarray, events: list[dict]) -> dict:
    ev_region = np.full(len(events) + 1, -2, dtype=np.int64)
    for e in events:
        ev_region[e["event_id"]] = -1 if e["region"] is None else REGIONS.index(e["region"])
    return {"users": u, "posts": posts, "follows": follows, "event_region": ev_region}


def load_truth(raw_dir) -> dict:
    """The world's truth (as :func:`utility` needs it) read back from ``_truth/discovery_*``."""
    d = Path(raw_dir) / "_truth"
    if not (d / "discovery_posts.parquet").exists():
        raise UserError(f"{d} holds no discovery world: run `vigil simulate-discovery` first.")
    ut = pq.read_table(d / "discovery_users.parquet").to_pydict()
    pt = pq.read_table(d / "discovery_posts.parquet").to_pydict()
    ft = pq.read_table(d / "discovery_follows.parquet").to_pydict()
    events = json.loads((d / "discovery_events.json").read_text())
    interests = np.array(ut["interests"])
    u = {
        "user_id": np.array(ut["user_id"]),
        "region": np.array([REGIONS.index(r) for r in ut["region"]]),
        "interests": interests,
        "interest_norm": interests / interests.max(axis=1, keepdims=True),
        "viewpoint": np.array(ut["viewpoint"], dtype=np.int8),
    }
    posts = {
        "post_id": np.array(pt["post_id"]),
        "author": np.array(pt["author_id"]) - 1,
        "ts": np.array(pt["created_ms"]),
        "topic": np.array([TOPIC_NAMES.index(t) for t in pt["topic"]]),
        "event": np.array(pt["event_id"]),
        "harmful": np.array(pt["is_harmful"]),
        "quality": np.array(pt["quality"]),
        "removed_ms": np.array(pt["removed_ms"]),
    }
    n = len(u["user_id"])
    follows = np.zeros((n, n), dtype=np.float32)
    follows[np.array(ft["user_id"]) - 1, np.array(ft["author_id"]) - 1] = ft["affinity"]
    truth = _truth_dict(u, posts, follows, events)
    truth["events"] = events
    return truth


def write_truth(raw: Path, u: dict, posts: dict, follows: np.ndarray, events: list[dict]) -> None:
    d = raw / "_truth"
    d.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({
        "user_id": u["user_id"],
        "region": [REGIONS[r] for r in u["region"].tolist()],
        "viewpoint": u["viewpoint"].astype(np.int64),
        "interests": pa.array(u["interests"].tolist(), pa.list_(pa.float64())),
        "abusive": u["abusive"],
    }), d / "discovery_users.parquet")  # fmt: skip
    pq.write_table(pa.table({
        "post_id": posts["post_id"],
        "author_id": posts["author"] + 1,
        "created_ms": posts["ts"],
        "topic": [TOPIC_NAMES[t] for t in posts["topic"].tolist()],
        "event_id": posts["event"],
        "is_harmful": posts["harmful"],
        "quality": posts["quality"],
        "removed_ms": posts["removed_ms"],
    }), d / "discovery_posts.parquet")  # fmt: skip
    src, dst = np.nonzero(follows)
    pq.write_table(pa.table({
        "user_id": src.astype(np.int64) + 1,
        "author_id": dst.astype(np.int64) + 1,
        "affinity": follows[src, dst].astype(np.float64),
    }), d / "discovery_follows.parquet")  # fmt: skip
    (d / "discovery_events.json").write_text(json.dumps(events, indent=1) + "\n")


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date: use YYYY-MM-DD.") from None


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--raw", "--out", dest="out", type=Path, default=None,
                        help="raw directory (default: $VIGIL_HOME/raw_discovery)")  # fmt: skip
    parser.add_argument("--users", type=int, default=2000, help="default 2000 (50..20000)")
    parser.add_argument("--days", type=int, default=7, help="default 7")
    parser.add_argument("--start", type=_parse_date, default=date(2026, 10, 1), help="YYYY-MM-DD")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")


def run(args: argparse.Namespace) -> int:
    from vigil import config

    out = args.out if args.out is not None else config.paths().home / "raw_discovery"
    r = simulate_discovery(out, users=args.users, days=args.days, start=args.start, seed=args.seed)
    print(f"Simulated a discovery world into {out} in {r['seconds']}s")
    print(f"  users {r['users']:,}  posts {r['posts']:,} ({r['event_posts']:,} in "
          f"{r['events']} events)  impressions {r['impressions']:,}  events lines "
          f"{r['event_lines']:,}")  # fmt: skip
    return 0
