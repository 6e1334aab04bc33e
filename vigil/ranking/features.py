"""Ranking features for (user, post, time) rows, point in time, from the lake.

Everything a row sees happened before its time: post counters up to the top of the row's hour,
user and author aggregates up to the start of the row's day (a daily snapshot, as the feature
marts do), follows and removals before the row's time. Counting "events of key k before time t"
is one ``searchsorted`` on keys ``k * 2**36 + (t - origin)`` sorted once.

Feature groups (:data:`TOPIC_FEATURES` is the group the ablation removes):
- topic: cosine(user interest vector, post topic vector), the user's interest in the post's main
  topic, the main topic's velocity (posts in the last hour / hourly mean of the 24 before),
  the post's topic strength;
- author: follows, decayed positive engagement with the author, the author's like rate;
- post: age, views and like / negative rates so far, harm probability (below), same region;
- user: views so far.

Harm probability: a naive-Bayes posterior from the post's reports per view (report rates of
removed and other posts, estimated from the lake) and its author's removal history. The
champion harm model's scores are not joined yet (docs/ranking.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vigil.ranking.data import DAY, HOUR, POSITIVE, LakeView

log = logging.getLogger(__name__)

SHIFT = 36  # 2**36 ms is ~2.2 years of event time after the origin
TOPIC_FEATURES = ("topic_sim", "user_topic_interest", "topic_velocity", "topic_strength")
OTHER_FEATURES = (
    "follows", "author_affinity", "author_like_rate", "age_hours", "post_views",
    "post_like_rate", "post_neg_rate", "harm_prob", "same_region", "user_views",
)  # fmt: skip
FEATURES = TOPIC_FEATURES + OTHER_FEATURES
DECAY_DAYS = 3.0
POSITIVE_WEIGHT = {"like": 1.0, "reply": 1.5, "share": 2.0}


class KeyedTimes:
    """Sorted keys ``k << SHIFT | (t - origin)``: counts of (key, before t) in O(log n)."""

    def __init__(self, keys: np.ndarray, times: np.ndarray, origin: int):
        self.origin = origin
        self.codes = np.sort((keys.astype(np.int64) << SHIFT) + (times - origin))

    def count(self, keys: np.ndarray, lo, hi) -> np.ndarray:
        """Events of each key with lo <= t < hi."""
        k = keys.astype(np.int64) << SHIFT
        lo_c = k + np.maximum(np.asarray(lo) - self.origin, 0)
        hi_c = k + np.maximum(np.asarray(hi) - self.origin, 0)
        return np.searchsorted(self.codes, hi_c) - np.searchsorted(self.codes, lo_c)


@dataclass
class Snapshot:
    """User and author aggregates as of one day's start."""

    interest: np.ndarray  # users x topics, decayed positive engagement
    affinity_keys: np.ndarray  # sorted user * n_users + author
    affinity: np.ndarray
    author_like_rate: np.ndarray
    user_views: np.ndarray


@dataclass
class FeatureContext:
    view: LakeView
    topic_vec: np.ndarray  # posts x topics (rows of view.posts)
    origin: int = 0
    snapshots: dict[int, Snapshot] = field(default_factory=dict)
    champion: object = None  # vigil.ranking.harm.ChampionHarm: the champion's scores (re-rank)

    def __post_init__(self):
        v = self.view
        self.origin = v.start_ms - DAY
        self.n_users = int(max(v.users["user_id"].max(), v.actions["user_id"].max())) + 1
        self.post_row = pd.Series(np.arange(len(v.posts)), index=v.posts["post_id"].to_numpy())
        self.author = v.posts["author_id"].to_numpy()
        self.created = v.posts["created_ms"].to_numpy()
        self.main_topic = self.topic_vec.argmax(axis=1)
        self.topic_strength = self.topic_vec.max(axis=1)
        region = dict(zip(v.users["user_id"], v.users["region"], strict=True))
        codes = {r: i for i, r in enumerate(sorted(set(region.values())))}
        self.user_region = np.full(self.n_users, -1)
        for u, r in region.items():
            self.user_region[u] = codes[r]
        a = v.actions
        self.a_ts = a["ts"].to_numpy()
        self.a_user = a["user_id"].to_numpy()
        self.a_act = a["action"].to_numpy()
        self.a_author = a["author_id"].to_numpy()
        self.a_row = (
            self.post_row.reindex(a["post_id"].to_numpy()).fillna(-1).astype(int).to_numpy()
        )
        on_post = self.a_row >= 0
        o = self.origin

        def keyed(mask):
            m = mask & on_post
            return KeyedTimes(self.a_row[m], self.a_ts[m], o)

        self.k_views = keyed(self.a_act == "view")
        self.k_pos = keyed(np.isin(self.a_act, POSITIVE))
        self.k_neg = keyed(np.isin(self.a_act, ("dislike", "report")))
        self.k_reports = keyed(self.a_act == "report")
        self.k_topic_posts = KeyedTimes(self.main_topic, self.created, o)
        self.k_author_posts = KeyedTimes(self.author, self.created, o)
        rem_rows = self.post_row.reindex(list(v.removed_ms)).dropna().astype(int).to_numpy()
        rem_at = np.array([v.removed_ms[int(p)] for p in v.posts["post_id"].to_numpy()[rem_rows]])
        self.k_author_removed = KeyedTimes(self.author[rem_rows], rem_at.astype(np.int64), o)
        self.removed_at = np.full(len(self.author), np.iinfo(np.int64).max, dtype=np.int64)
        self.removed_at[rem_rows] = rem_at
        f = v.follows
        self.follow_codes = np.sort(
            f["user_id"].to_numpy().astype(np.int64) * self.n_users + f["author_id"].to_numpy()
        )
        self._harm_rates(rem_rows)

    # ---------------------------------------------------------------------------------------
    def _harm_rates(self, rem_rows: np.ndarray) -> None:
        """Report rates per view of removed (r1) and other (r0) posts, and the base rate."""
        end = self.view.end_ms + 1
        rows = np.arange(len(self.author))
        views = self.k_views.count(rows, self.origin, end)
        reps = self.k_reports.count(rows, self.origin, end)
        bad = np.zeros(len(rows), bool)
        bad[rem_rows] = True
        self.r1 = (reps[bad].sum() + 1) / (views[bad].sum() + 10)
        self.r0 = (reps[~bad].sum() + 1) / (views[~bad].sum() + 100)
        self.base_rate = (bad.sum() + 1) / (len(rows) + 2)

    def follows(self, users: np.ndarray, authors: np.ndarray) -> np.ndarray:
        code = users.astype(np.int64) * self.n_users + authors
        i = np.searchsorted(self.follow_codes, code).clip(max=len(self.follow_codes) - 1)
        return self.follow_codes[i] == code

    def snapshot(self, day_start: int) -> Snapshot:
        if day_start in self.snapshots:
            return self.snapshots[day_start]
        m = (self.a_ts < day_start) & (self.a_row >= 0)
        w = np.exp(-(day_start - self.a_ts[m]) / (DECAY_DAYS * DAY))
        act = self.a_act[m]
        pos_w = np.zeros(len(act))
        for name, weight in POSITIVE_WEIGHT.items():
            pos_w[act == name] = weight
        pw = pos_w * w
        users = self.a_user[m]
        rows = self.a_row[m]
        interest = np.zeros((self.n_users, self.topic_vec.shape[1]), dtype=np.float64)
        sel = pw > 0
        np.add.at(interest, users[sel], pw[sel, None] * self.topic_vec[rows[sel]])
        codes = users[sel].astype(np.int64) * self.n_users + self.a_author[m][sel]
        keys, inv = np.unique(codes, return_inverse=True)
        aff = np.bincount(inv, weights=pw[sel], minlength=len(keys))
        authors = self.a_author[m]
        is_view = act == "view"
        likes = np.bincount(authors[pos_w > 0], minlength=self.n_users)
        views = np.bincount(authors[is_view], minlength=self.n_users)
        snap = Snapshot(
            interest=interest,
            affinity_keys=keys,
            affinity=aff,
            author_like_rate=(likes + 0.2 * 20) / (views + 20),
            user_views=np.bincount(users[is_view], minlength=self.n_users),
        )
        self.snapshots[day_start] = snap
        return snap

    def harm_prob(self, rows: np.ndarray, t) -> np.ndarray:
        views = self.k_views.count(rows, self.origin, t)
        reps = self.k_reports.count(rows, self.origin, t)
        author = self.author[rows]
        removed = self.k_author_removed.count(author, self.origin, t)
        posts = self.k_author_posts.count(author, self.origin, t)
        prior = (removed + self.base_rate * 5) / (posts + 5)
        logit = (
            np.log(prior / (1 - prior))
            + reps * np.log(self.r1 / self.r0)
            + (views - reps) * np.log((1 - self.r1) / (1 - self.r0))
        )
        return 1 / (1 + np.exp(-np.clip(logit, -30, 30)))

    def removed(self, rows: np.ndarray, t) -> np.ndarray:
        return self.removed_at[rows] <= np.asarray(t)

    def velocity(self, topics: np.ndarray, t) -> np.ndarray:
        t = np.asarray(t)
        now = self.k_topic_posts.count(topics, t - HOUR, t)
        base = self.k_topic_posts.count(topics, t - 25 * HOUR, t - HOUR) / 24.0
        return (now + 1.0) / (base + 1.0)


POST_FEATURES = ("topic_velocity", "topic_strength", "age_hours", "post_views",
                 "post_like_rate", "post_neg_rate", "harm_prob")  # fmt: skip


def build(ctx: FeatureContext, users: np.ndarray, rows: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The feature matrix (len(rows) x len(FEATURES)) for users x post rows at times t.

    Post features depend only on (post, time): they are computed once per distinct pair, so a
    day's batch that ranks each post for many users at one time pays for each post once."""
    users = np.asarray(users, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    t = np.broadcast_to(np.asarray(t, dtype=np.int64), rows.shape)
    out = np.zeros((len(rows), len(FEATURES)), dtype=np.float32)
    _pair_features(ctx, users, rows, t, out)
    times, t_code = np.unique(t, return_inverse=True)
    _, first, inv = np.unique(rows * len(times) + t_code, return_index=True, return_inverse=True)
    post = _post_features(ctx, rows[first], t[first])
    out[:, [FEATURES.index(f) for f in POST_FEATURES]] = post[inv]
    return out


def _post_features(ctx: FeatureContext, rows: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The :data:`POST_FEATURES` columns (float64) for post rows at times t."""
    hour = (t - ctx.origin) // HOUR * HOUR + ctx.origin
    views = ctx.k_views.count(rows, ctx.origin, hour)
    return np.column_stack([
        ctx.velocity(ctx.main_topic[rows], hour),
        ctx.topic_strength[rows],
        (t - ctx.created[rows]) / HOUR,
        views,
        (ctx.k_pos.count(rows, ctx.origin, hour) + 1) / (views + 5),
        (ctx.k_neg.count(rows, ctx.origin, hour) + 0.1) / (views + 5),
        ctx.harm_prob(rows, t),
    ]).astype(np.float64)  # fmt: skip


def _pair_features(ctx, users, rows, t, out: np.ndarray) -> None:
    """The (user, post) columns: topic match, affinity, follows, region, the user's views."""
    col = {name: i for i, name in enumerate(FEATURES)}
    day = (t - ctx.origin) // DAY * DAY + ctx.origin
    author = ctx.author[rows]
    topic = ctx.main_topic[rows]
    for d in np.unique(day):
        m = day == d
        snap = ctx.snapshot(int(d))
        iu = snap.interest[users[m]]
        norm = np.linalg.norm(iu, axis=1) * np.linalg.norm(ctx.topic_vec[rows[m]], axis=1)
        dot = (iu * ctx.topic_vec[rows[m]]).sum(axis=1)
        out[m, col["topic_sim"]] = np.divide(dot, norm, out=np.zeros_like(dot), where=norm > 0)
        mx = iu.max(axis=1)
        ti = iu[np.arange(m.sum()), topic[m]]
        out[m, col["user_topic_interest"]] = np.divide(ti, mx, out=np.zeros_like(ti), where=mx > 0)
        codes = users[m] * ctx.n_users + author[m]
        i = np.searchsorted(snap.affinity_keys, codes).clip(max=max(len(snap.affinity) - 1, 0))
        hit = snap.affinity_keys[i] == codes if len(snap.affinity) else np.zeros(len(codes), bool)
        out[m, col["author_affinity"]] = np.where(hit, snap.affinity[i] if len(i) else 0, 0)
        out[m, col["author_like_rate"]] = snap.author_like_rate[author[m]]
        out[m, col["user_views"]] = snap.user_views[users[m]]
    out[:, col["follows"]] = ctx.follows(users, author)
    out[:, col["same_region"]] = ctx.user_region[users] == ctx.user_region[author]
