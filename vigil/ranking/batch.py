"""Every user's home timeline at one time, in bulk: the daily batch path.

The same steps as one user's timeline (:func:`vigil.ranking.rank.candidates` ->
:func:`vigil.ranking.features.build` -> :func:`vigil.ranking.rank.predict` ->
:func:`vigil.ranking.rank.rerank`), paid once per batch where they can be:
- candidates: the window's posts, their removals, view counts and topic vectors are read once;
  per user only the follow mask, a top-k by topic similarity (``argpartition``, ties to the older
  post as the stable sort of the per-user path; the similarities of 64 users to the window's
  posts in one matrix product) and the 300 newest followed posts;
- features: one :func:`build` call per chunk of users (post features once per post);
- scoring: one ``predict`` call per chunk of users;
- camps and each user's lean from the follow graph once (not a scan of the follows per user);
- ``workers=2`` splits the users over two forked processes (the context is shared copy-on-write).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import csr_matrix

from vigil.ranking import harm, rank
from vigil.ranking.data import DAY, HOUR
from vigil.ranking.features import FEATURES, FeatureContext, build

log = logging.getLogger(__name__)

HARM = FEATURES.index("harm_prob")
STAGES = ("candidates", "features", "scoring", "rerank")
SIM_BLOCK = 64  # users per similarity product: 64 x window float64 (~40 MB at 80k posts)


@dataclass
class BatchResult:
    users: np.ndarray
    top: np.ndarray  # users x k post rows, -1 where a user has fewer than k
    candidates: int  # (user, post) pairs scored
    seconds: dict[str, float] = field(default_factory=dict)


def top_stable(values: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` largest values, ties to the lower position: the same set as
    ``np.argsort(-values, kind="stable")[:n]`` in O(len) instead of a sort."""
    if n >= len(values):
        return np.arange(len(values))
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    cut = -np.partition(-values, n - 1)[n - 1]  # the n-th largest value
    above = np.flatnonzero(values > cut)
    ties = np.flatnonzero(values == cut)[: n - len(above)]
    return np.concatenate([above, ties])


class CandidateWindow:
    """What every user's candidates at ``t`` share: the window's posts and what they need."""

    def __init__(self, ctx: FeatureContext, t: int, cfg: rank.RankConfig):
        self.cfg = cfg
        lo, hi = np.searchsorted(ctx.created, [t - int(cfg.window_hours * HOUR), t])
        rows = np.arange(lo, hi)
        self.rows = rows[~ctx.removed(rows, t)]
        self.author = ctx.author[self.rows]
        self.topic_vec = ctx.topic_vec[self.rows]
        self.views = ctx.k_views.count(self.rows, ctx.origin, t).astype(float)
        self.tv64 = np.ascontiguousarray(self.topic_vec, dtype=np.float64)
        self.by_author = np.argsort(self.author, kind="stable")  # positions grouped by author
        self.author_sorted = self.author[self.by_author]
        self.interest = ctx.snapshot(int((t - ctx.origin) // DAY * DAY + ctx.origin)).interest
        f = ctx.view.follows
        n = ctx.n_users
        self.follows = csr_matrix(
            (np.ones(len(f)), (f["user_id"].to_numpy(), f["author_id"].to_numpy())), shape=(n, n)
        )

    def for_users(self, users: np.ndarray) -> list[np.ndarray]:
        """Each user's candidate post rows (ascending), as :func:`rank.candidates` picks them.

        Per user the work is one pass over the window's scores: the topic similarities of a
        block of users to every window post are one matrix product, and the followed posts are
        looked up by author (a 20k-user world's window holds ~75k posts; a user follows ~30
        authors)."""
        iu = self.interest[users]
        has = iu.sum(axis=1) > 0
        norm = np.linalg.norm(iu, axis=1, keepdims=True)
        unit = np.divide(iu, norm, out=np.zeros_like(iu), where=norm > 0)
        out = []
        for a in range(0, len(users), SIM_BLOCK):
            # block x window, rounded to float32 as rank.candidates does: BLAS may round two
            # equal rows' products 1 ulp apart, float32 makes them ties again (to the older post)
            sims = (unit[a : a + SIM_BLOCK] @ self.tv64.T).astype(np.float32)
            for j, u in enumerate(users[a : a + SIM_BLOCK].tolist()):
                score = sims[j] if has[a + j] else self.views  # no history: the most viewed
                out.append(self._one(u, score))
        return out

    def _positions(self, authors: np.ndarray) -> np.ndarray:
        """Window positions (ascending) of the posts by ``authors``."""
        lo = np.searchsorted(self.author_sorted, authors, "left")
        hi = np.searchsorted(self.author_sorted, authors, "right")
        parts = [self.by_author[i:j] for i, j in zip(lo.tolist(), hi.tolist()) if j > i]
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)

    def _one(self, user: int, score: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        own = self._positions(np.array([user]))
        if len(self.rows) - len(own) <= cfg.candidates:
            return np.delete(self.rows, own)
        f = self.follows
        followed = self._positions(np.unique(f.indices[f.indptr[user] : f.indptr[user + 1]]))
        followed = np.setdiff1d(followed, own, assume_unique=True)
        inn = followed[-cfg.max_followed :]
        need = cfg.candidates - len(inn)
        if need >= len(self.rows) - len(own) - len(followed):  # every other post
            other = np.ones(len(self.rows), bool)
            other[own] = other[followed] = False
            oon = np.flatnonzero(other)
        else:  # positions ascend as in the per-user path's `rest`, so ties go the same way
            masked = score.copy()
            masked[own] = masked[followed] = -np.inf
            oon = top_stable(masked, need)
        return self.rows[np.sort(np.concatenate([inn, oon]))]


def user_leans(ctx: FeatureContext, camps: np.ndarray) -> np.ndarray:
    """Per user id: the share of followed authors in camp +1 (0.5 without follows), as
    :func:`rank.user_lean` for one user."""
    f = ctx.view.follows
    users = f["user_id"].to_numpy()
    plus = np.bincount(users, weights=camps[f["author_id"].to_numpy()] == 1, minlength=ctx.n_users)
    count = np.bincount(users, minlength=ctx.n_users)
    return np.divide(plus, count, out=np.full(ctx.n_users, 0.5), where=count > 0)


def _rank_chunk(ctx, model, users, t, window, camps, leans, cfg, k) -> tuple[np.ndarray, dict]:
    sec = dict.fromkeys(STAGES, 0.0)
    t0 = time.perf_counter()
    cands = window.for_users(users)
    sizes = np.array([len(c) for c in cands])
    rows = np.concatenate(cands) if cands else np.zeros(0, dtype=np.int64)
    sec["candidates"] = time.perf_counter() - t0
    X = build(ctx, np.repeat(users, sizes), rows, np.full(len(rows), t))
    sec["features"] = time.perf_counter() - t0 - sec["candidates"]
    scores = rank.predict(model, X) if len(rows) else np.zeros(0)
    risk = harm.rerank_harm(ctx, rows, t, X[:, HARM])
    t1 = time.perf_counter()
    sec["scoring"] = t1 - t0 - sec["candidates"] - sec["features"]
    top = np.full((len(users), k), -1, dtype=np.int64)
    ends = np.cumsum(sizes)
    for i, u in enumerate(users.tolist()):
        a, b = ends[i] - sizes[i], ends[i]
        if b > a:
            picked = rank.rerank(ctx, rows[a:b], scores[a:b], risk[a:b], camps, leans[u], k,
                                 cfg)  # fmt: skip
            top[i, : len(picked)] = rows[a:b][picked]
    sec["rerank"] = time.perf_counter() - t1
    return top, {"pairs": len(rows), **sec}


_SHARED: dict = {}


def _worker(args) -> tuple[np.ndarray, dict]:
    users, t, k = args
    s = _SHARED
    out = []
    stats = {"pairs": 0, **dict.fromkeys(STAGES, 0.0)}
    for chunk in np.array_split(users, max(1, -(-len(users) // s["chunk"]))):
        top, st = _rank_chunk(s["ctx"], s["model"], chunk, t, s["window"], s["camps"],
                              s["leans"], s["cfg"], k)  # fmt: skip
        out.append(top)
        for key in stats:
            stats[key] += st[key]
    return (np.concatenate(out) if out else np.zeros((0, k), np.int64)), stats


def rank_users(ctx: FeatureContext, model, users, t: int, camps: np.ndarray | None = None,
               cfg: rank.RankConfig | None = None, k: int = 10, chunk: int = 1000,
               workers: int = 1) -> BatchResult:  # fmt: skip
    """The top ``k`` of every user in ``users`` at time ``t`` (ms), in chunks of ``chunk``
    users (bounds memory: ~60 bytes per candidate), over ``workers`` forked processes."""
    t0 = time.perf_counter()
    cfg = cfg or rank.RankConfig()
    users = np.asarray(users, dtype=np.int64)
    camps = rank.follow_camps(ctx) if camps is None else camps
    window = CandidateWindow(ctx, int(t), cfg)
    _SHARED.update(ctx=ctx, model=model, window=window, camps=camps, cfg=cfg, chunk=chunk,
                   leans=user_leans(ctx, camps))  # fmt: skip
    prep = time.perf_counter() - t0
    parts = np.array_split(users, workers) if workers > 1 else [users]
    try:
        if workers > 1:
            with mp.get_context("fork").Pool(workers) as pool:
                done = pool.map(_worker, [(p, int(t), k) for p in parts])
        else:
            done = [_worker((users, int(t), k))]
    finally:
        _SHARED.clear()
    seconds = {s: round(sum(d[1][s] for d in done) / workers, 3) for s in STAGES}
    seconds["candidates"] = round(seconds["candidates"] + prep, 3)
    seconds["total"] = round(time.perf_counter() - t0, 3)
    pairs = sum(d[1]["pairs"] for d in done)
    log.info("ranked %d users x %.0f candidates at %d in %.1fs (%d workers)", len(users),
             pairs / max(len(users), 1), t, seconds["total"], workers)  # fmt: skip
    return BatchResult(users, np.concatenate([d[0] for d in done]), pairs, seconds)
