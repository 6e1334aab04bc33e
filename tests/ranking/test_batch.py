"""The bulk ranking path against the per-user path on a small hand-made lake: the same candidates,
the same feature rows, the same scores and the same top 10 for every user."""

import numpy as np
import pandas as pd

from vigil.ranking import batch, rank
from vigil.ranking.data import DAY, HOUR, LakeView
from vigil.ranking.features import FEATURES, FeatureContext, build

T0 = 1_790_000_000_000 // DAY * DAY


class LinearScorer:
    """A fixed linear ranker, so scores can be compared exactly without training."""

    feature_names_used = FEATURES

    def predict(self, X):
        w = np.linspace(-1.0, 2.0, X.shape[1])
        return X.astype(np.float64) @ w


def _lake() -> LakeView:
    # 8 users; user 8 has no history (the most-viewed fallback); user 1 follows everyone, so
    # followed posts exceed max_followed; posts 41 and 42 are removed; 4 topic vectors repeat, so
    # similarities tie.
    rng = np.random.default_rng(5)
    n_posts = 60
    created = T0 + np.sort(rng.integers(0, 3 * DAY, n_posts))
    authors = rng.integers(1, 8, n_posts)
    posts = pd.DataFrame({"post_id": np.arange(1, n_posts + 1), "author_id": authors,
                          "created_ms": created, "text": "", "region": "r"})  # fmt: skip
    acts = []
    for _ in range(400):
        i = int(rng.integers(0, n_posts))
        u = int(rng.integers(1, 8))
        ts = int(created[i] + rng.integers(1, 6 * HOUR))
        acts.append((ts, u, "view", i + 1, int(authors[i])))
        if rng.random() < 0.4:
            act = str(rng.choice(["like", "reply", "share", "dislike", "report"]))
            acts.append((ts + 1, u, act, i + 1, int(authors[i])))
    actions = pd.DataFrame(acts, columns=["ts", "user_id", "action", "post_id", "author_id"])
    actions = actions.sort_values("ts", kind="stable").reset_index(drop=True)
    pairs = [(1, a) for a in range(2, 9)] + [(2, 3), (2, 4), (3, 2), (5, 6), (6, 5), (7, 1)]
    follows = pd.DataFrame([(T0, u, a) for u, a in pairs], columns=["ts", "user_id", "author_id"])
    users = pd.DataFrame({"user_id": np.arange(1, 9), "region": list("aabbaabb")})
    removed = {41: int(created[40] + HOUR), 42: int(created[41] + HOUR)}
    return LakeView(posts, actions, follows, users, removed)


def _ctx() -> FeatureContext:
    rng = np.random.default_rng(6)
    topic_vec = rng.dirichlet(np.full(4, 0.5), 60).astype(np.float32)
    topic_vec[30:34] = topic_vec[45]  # ties in topic similarity
    return FeatureContext(_lake(), topic_vec)


CFG = rank.RankConfig(candidates=12, max_followed=4)


def test_top_stable_is_the_stable_sort_prefix():
    rng = np.random.default_rng(0)
    for _ in range(200):
        v = rng.integers(0, 5, int(rng.integers(1, 30))).astype(float)  # many ties
        n = int(rng.integers(0, len(v) + 2))
        expect = set(np.argsort(-v, kind="stable")[:n].tolist())
        assert set(batch.top_stable(v, n).tolist()) == expect


def test_bulk_path_equals_per_user_path():
    ctx = _ctx()
    t = T0 + 2 * DAY + 20 * HOUR
    users = np.arange(1, 9)
    camps = np.array([1, 1, -1, 1, -1, 1, -1, 1, -1])
    model = LinearScorer()
    leans = batch.user_leans(ctx, camps)
    window = batch.CandidateWindow(ctx, t, CFG)
    got = batch.rank_users(ctx, model, users, t, camps, cfg=CFG, chunk=3)
    for i, u in enumerate(users.tolist()):
        rows = rank.candidates(ctx, u, t, CFG)
        assert np.array_equal(window.for_users(np.array([u]))[0], rows)
        assert leans[u] == rank.user_lean(ctx, camps, u)
        X = build(ctx, np.full(len(rows), u), rows, np.full(len(rows), t))
        s = rank.predict(model, X)
        top = rank.rerank(ctx, rows, s, X[:, FEATURES.index("harm_prob")], camps, leans[u],
                          cfg=CFG)  # fmt: skip
        assert list(got.top[i][got.top[i] >= 0]) == list(rows[top])
    # the case covers what it claims: a capped follow list, a fallback user, removed posts
    lo, hi = np.searchsorted(ctx.created, [t - 48 * HOUR, t])
    assert ctx.removed(np.arange(lo, hi), t).sum() >= 1
    assert ctx.follows(np.full(hi - lo, 1), ctx.author[lo:hi]).sum() > CFG.max_followed
    assert window.interest[8].sum() == 0
    two = batch.rank_users(ctx, model, users, t, camps, cfg=CFG, workers=2)
    assert np.array_equal(two.top, got.top)
