"""The home timeline: candidates, a learned ranker, a re-rank for diversity and health.

- Candidates for (user, time): posts of the last 48 hours, never removed ones, never the user's
  own: everything by followed authors (newest 300), then out-of-network posts nearest to the
  user's interest vector in topic space, up to 500.
- Ranker, on the views of the training days, label = like + 2 reply + 3 share - 5 dislike
  - 10 mute - 20 report (negative feedback weighted heavily), features from
  :mod:`vigil.ranking.features`: ``pointwise``, scikit-learn's HistGradientBoostingRegressor on
  the label; or ``lambdarank``, LightGBM's LambdaRank on the label's grades (:func:`grades`)
  with each session's views as one query (:func:`sessions`).
- Re-rank (:func:`rerank`): greedy, slot by slot: the standardized score, minus a penalty per
  earlier pick of the same topic and of the same author, minus a harm demotion; posts above the
  harm cut are dropped; at most 80% of the top 10 from one follow-graph camp unless the user's own
  follows lean further.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix, diags
from scipy.sparse.linalg import eigsh
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from vigil.ranking.data import DAY, HOUR
from vigil.ranking.features import FEATURES, TOPIC_FEATURES, FeatureContext, build

log = logging.getLogger(__name__)

LABEL_WEIGHTS = {"like": 1.0, "reply": 2.0, "share": 3.0, "dislike": -5.0, "report": -20.0}
MUTE_WEIGHT = -10.0


@dataclass(frozen=True)
class RankConfig:
    window_hours: float = 48.0
    candidates: int = 500
    max_followed: int = 300
    # standardized score units per earlier pick of the same topic (None: the ranker's default,
    # TOPIC_PENALTY: the scores' spread differs between rankers)
    topic_penalty: float | None = None
    author_penalty: float = 0.3
    min_topics: int = 5  # fewer topics in a top k: redo the greedy pass, topic penalty doubled
    topic_retries: int = 3
    harm_weight: float = 4.0
    pool: int = 500  # the re-rank looks this deep into the scored list
    harm_cut: float = 0.5
    camp_cap: float = 0.8
    seed: int = 0
    max_iter: int = 100
    max_leaf_nodes: int = 15
    learning_rate: float = 0.1
    ranker: str = "lambdarank"  # LightGBM on graded labels per session, or "pointwise"
    session_gap_min: float = 5.0  # a user's views this close in time are one query (session)


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------


def training_rows(ctx: FeatureContext, lo_ms: int, hi_ms: int):
    """(users, post rows, times, labels) of the views in [lo, hi)."""
    m = (ctx.a_act == "view") & (ctx.a_ts >= lo_ms) & (ctx.a_ts < hi_ms) & (ctx.a_row >= 0)
    users, rows, ts = ctx.a_user[m], ctx.a_row[m], ctx.a_ts[m]
    key = users.astype(np.int64) * len(ctx.author) + rows
    label = np.zeros(len(key))
    order = np.argsort(key)
    for name, w in LABEL_WEIGHTS.items():
        e = (ctx.a_act == name) & (ctx.a_row >= 0)
        ek = ctx.a_user[e].astype(np.int64) * len(ctx.author) + ctx.a_row[e]
        i = np.searchsorted(key[order], ek)
        ok = i < len(key)
        ok[ok] = key[order][i[ok]] == ek[ok]
        np.add.at(label, order[i[ok]], w)
    # a mute names the author: charge it to the user's views of that author's posts that minute
    e = ctx.a_act == "mute"
    mk = ctx.a_user[e].astype(np.int64) * ctx.n_users + ctx.a_author[e]
    vk = users.astype(np.int64) * ctx.n_users + ctx.author[rows]
    near = np.isin(vk, mk)
    label[near] += MUTE_WEIGHT
    return users, rows, ts, label


RANKERS = ("pointwise", "lambdarank")
TOPIC_PENALTY = {"pointwise": 0.35, "lambdarank": 0.5}


def topic_penalty(cfg: RankConfig) -> float:
    return TOPIC_PENALTY[cfg.ranker] if cfg.topic_penalty is None else cfg.topic_penalty


def grades(label: np.ndarray) -> np.ndarray:
    """LambdaRank relevance from the multi-objective label: 0 negative feedback, 1 a plain
    view, 2 a like or reply, 3 a share or more (a label of 3 and up)."""
    return np.select([label < 0, label == 0, label < 3], [0, 1, 2], 3).astype(np.int32)


def sessions(users: np.ndarray, ts: np.ndarray, gap_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """(order, group sizes): rows sorted by (user, time), cut into queries where the user
    changes or the time jumps by more than ``gap_ms``."""
    order = np.lexsort((ts, users))
    u, t = users[order], ts[order]
    cut = np.ones(len(u), dtype=bool)
    cut[1:] = (u[1:] != u[:-1]) | (t[1:] - t[:-1] > gap_ms)
    starts = np.flatnonzero(cut)
    return order, np.diff(np.append(starts, len(u)))


def train(ctx: FeatureContext, lo_ms: int, hi_ms: int, features=FEATURES, cfg=RankConfig()):
    if cfg.ranker not in RANKERS:
        raise ValueError(f"ranker={cfg.ranker!r}: use one of {', '.join(RANKERS)}.")
    t0 = time.perf_counter()
    users, rows, ts, y = training_rows(ctx, lo_ms, hi_ms)
    X = build(ctx, users, rows, ts)
    cols = [FEATURES.index(f) for f in features]
    if cfg.ranker == "lambdarank":
        model = _lambdarank(X[:, cols], y, users, ts, cfg)
    else:
        model = HistGradientBoostingRegressor(max_iter=cfg.max_iter,
                                              learning_rate=cfg.learning_rate,
                                              max_leaf_nodes=cfg.max_leaf_nodes,
                                              random_state=cfg.seed,
                                              early_stopping=False)  # fmt: skip
        with threadpool_limits(1):  # OpenMP threads on a shared 2-core machine: 20x slower
            model.fit(X[:, cols], y)
    model.feature_names_used = tuple(features)
    log.info("ranker (%s): %d views, %d features, trained in %.1fs", cfg.ranker, len(y),
             len(cols), time.perf_counter() - t0)  # fmt: skip
    return model


def _lambdarank(X: np.ndarray, y: np.ndarray, users, ts, cfg: RankConfig):
    """LightGBM LambdaRank on the sessions' graded views (NDCG@10), one thread, seeded."""
    from lightgbm import LGBMRanker

    order, groups = sessions(users, ts, int(cfg.session_gap_min * 60_000))
    model = LGBMRanker(objective="lambdarank", n_estimators=cfg.max_iter,
                       learning_rate=cfg.learning_rate, num_leaves=cfg.max_leaf_nodes,
                       random_state=cfg.seed, n_jobs=1, deterministic=True, force_row_wise=True,
                       lambdarank_truncation_level=20, verbose=-1)  # fmt: skip
    model.fit(X[order], grades(y[order]), group=groups)
    return model


def predict(model, X: np.ndarray) -> np.ndarray:
    cols = [FEATURES.index(f) for f in model.feature_names_used]
    with threadpool_limits(1):
        return model.predict(X[:, cols])


def without_topics() -> tuple[str, ...]:
    return tuple(f for f in FEATURES if f not in TOPIC_FEATURES)


# --------------------------------------------------------------------------------------------
# candidates
# --------------------------------------------------------------------------------------------


def candidates(
    ctx: FeatureContext, user: int, t: int, cfg: RankConfig = RankConfig()
) -> np.ndarray:
    """Post rows for ``user`` at ``t``: followed authors' recent posts, then topic neighbours."""
    lo, hi = np.searchsorted(ctx.created, [t - int(cfg.window_hours * HOUR), t])
    rows = np.arange(lo, hi)
    rows = rows[(ctx.author[rows] != user) & ~ctx.removed(rows, t)]
    if len(rows) <= cfg.candidates:
        return rows
    followed = ctx.follows(np.full(len(rows), user), ctx.author[rows])
    inn = rows[followed][-cfg.max_followed :]
    rest = rows[~followed]
    snap = ctx.snapshot(int((t - ctx.origin) // DAY * DAY + ctx.origin))
    iu = snap.interest[user]
    need = cfg.candidates - len(inn)
    if iu.sum() > 0:
        # float32: equal topic vectors tie whatever rounding the product took (batch.py's
        # block product rounds the same way)
        sim = (ctx.topic_vec[rest] @ (iu / np.linalg.norm(iu))).astype(np.float32)
    else:  # no history: the most viewed
        sim = ctx.k_views.count(rest, ctx.origin, t).astype(float)
    oon = rest[np.argsort(-sim, kind="stable")[:need]]
    return np.sort(np.concatenate([inn, oon]))


# --------------------------------------------------------------------------------------------
# camps (viewpoints) from the follow graph
# --------------------------------------------------------------------------------------------


def follow_camps(ctx: FeatureContext) -> np.ndarray:
    """+1 / -1 per user id: the sign of the follow graph's second spectral direction."""
    f = ctx.view.follows
    n = ctx.n_users
    a = coo_matrix(
        (np.ones(len(f)), (f["user_id"].to_numpy(), f["author_id"].to_numpy())), shape=(n, n)
    ).tocsr()
    a = a + a.T
    deg = np.asarray(a.sum(axis=1)).ravel()
    inv = diags(np.where(deg > 0, 1 / np.sqrt(np.maximum(deg, 1)), 0))
    _, vecs = eigsh(inv @ a @ inv, k=2, which="LA", v0=np.ones(n))
    second = vecs[:, 0] * inv.diagonal()
    return np.where(second >= 0, 1, -1)


# --------------------------------------------------------------------------------------------
# re-rank
# --------------------------------------------------------------------------------------------


def rerank(
    ctx: FeatureContext,
    rows: np.ndarray,
    scores: np.ndarray,
    harm: np.ndarray,
    camps: np.ndarray | None = None,
    user_lean: float = 0.5,
    k: int = 10,
    cfg: RankConfig = RankConfig(),
) -> np.ndarray:
    """Positions into ``rows`` of the top ``k`` after the diversity and health re-rank. When
    the picks hold fewer than ``cfg.min_topics`` topics, the greedy pass is redone with the
    topic penalty doubled (up to ``cfg.topic_retries`` times), so users whose best posts share
    one subject get the floor of variety while the others keep the base penalty."""
    sd = scores.std() or 1.0
    base = (scores - scores.mean()) / sd - cfg.harm_weight * harm
    keep = np.nonzero(harm < cfg.harm_cut)[0]
    pool = keep[np.argsort(-base[keep], kind="stable")[: cfg.pool]]
    topics = ctx.main_topic[rows][pool]
    authors = ctx.author[rows][pool]
    # dense codes so the per-topic and per-author pick counts are arrays
    _, t_code = np.unique(topics, return_inverse=True)
    _, a_code = np.unique(authors, return_inverse=True)
    camp = camps[authors] if camps is not None else None
    cap = max(cfg.camp_cap, user_lean, 1 - user_lean)
    penalty = topic_penalty(cfg)
    want = min(cfg.min_topics, int(t_code.max()) + 1 if len(pool) else 0)
    for _ in range(cfg.topic_retries + 1):
        picked = _greedy(base[pool], t_code, a_code, camp, cap, k, penalty, cfg.author_penalty)
        if len(np.unique(t_code[picked])) >= want or penalty == 0:
            break
        penalty *= 2
    return pool[np.asarray(picked, dtype=np.int64)]


def _greedy(vbase, t_code, a_code, camp, cap, k, penalty, author_penalty) -> list[int]:
    """Slot by slot, the best of the pool after the topic and author penalties and the cap on
    one camp's share (``camp`` None: no cap); positions into the pool."""
    n_topic = np.zeros(t_code.max() + 1 if len(vbase) else 0)
    n_author = np.zeros(a_code.max() + 1 if len(vbase) else 0)
    n_camp = {1: 0, -1: 0}
    free = np.ones(len(vbase), dtype=bool)
    picked: list[int] = []
    for _ in range(min(k, len(vbase))):
        ok = free.copy()
        if camp is not None:
            for c in (1, -1):
                if (n_camp[c] + 1) / k > cap + 1e-9:
                    ok &= camp != c
        if not ok.any():
            break
        v = vbase - penalty * n_topic[t_code] - author_penalty * n_author[a_code]
        j = int(np.argmax(np.where(ok, v, -np.inf)))
        picked.append(j)
        free[j] = False
        n_topic[t_code[j]] += 1
        n_author[a_code[j]] += 1
        if camp is not None:
            n_camp[int(camp[j])] += 1
    return picked


def user_lean(ctx: FeatureContext, camps: np.ndarray, user: int) -> float:
    """Share of the user's followed authors in camp +1 (0.5 without follows)."""
    f = ctx.view.follows
    mine = f["author_id"].to_numpy()[f["user_id"].to_numpy() == user]
    return float((camps[mine] == 1).mean()) if len(mine) else 0.5
