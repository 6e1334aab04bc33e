"""The LambdaRank ranker's inputs (grades, sessions) by hand, and the report's timeline health on
a hand-made timelines frame."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from vigil.ranking import rank
from vigil.ranking import report as ranking_report


def test_grades_from_the_multi_objective_label():
    # label = like + 2 reply + 3 share - 5 dislike - 10 mute - 20 report
    label = np.array([-20.0, -5.0, -4.0, 0.0, 1.0, 2.0, 2.99, 3.0, 6.0])
    assert rank.grades(label).tolist() == [0, 0, 0, 1, 2, 2, 2, 3, 3]


def test_sessions_cut_on_user_change_and_time_gap():
    users = np.array([2, 1, 1, 2, 1, 1])
    ts = np.array([0, 1_000, 0, 3_000, 400_000, 402_000])  # user 1: 0, 1 s, then 400 s later
    order, groups = rank.sessions(users, ts, gap_ms=300_000)
    assert order.tolist() == [2, 1, 4, 5, 0, 3]  # by user, then time
    assert groups.tolist() == [2, 2, 2]


def test_unknown_ranker_is_refused():
    with pytest.raises(ValueError, match="pointwise, lambdarank"):
        rank.train(None, 0, 1, cfg=rank.RankConfig(ranker="listnet"))


def test_lambdarank_orders_by_the_graded_signal():
    # a toy learning problem: grade rises with feature 0; feature 1 is noise
    from lightgbm import LGBMRanker

    rng = np.random.default_rng(0)
    X = rng.random((2000, 2))
    y = np.digitize(X[:, 0], [0.25, 0.5, 0.75])
    model = LGBMRanker(objective="lambdarank", n_estimators=30, num_leaves=7, n_jobs=1,
                       random_state=0, deterministic=True, verbose=-1)  # fmt: skip
    model.fit(X, y, group=[20] * 100)
    s = model.predict(np.array([[0.1, 0.5], [0.4, 0.5], [0.6, 0.5], [0.9, 0.5]]))
    assert np.all(np.diff(s) > 0)


def test_timelines_health_by_hand(monkeypatch):
    # users 1 and 2, three slots each; authors 10, 11 in camp +1, 12 in camp -1
    frame = pd.DataFrame({
        "user_id": [1, 1, 1, 2, 2, 2], "rank": [1, 2, 3, 1, 2, 3],
        "post_id": [100, 101, 102, 103, 104, 105], "author_id": [10, 11, 12, 10, 11, 10],
        "topic": [0, 1, 2, 0, 0, 0], "rerank_harm": [0.0, 0.2, 0.01, 0.0, 0.0, 0.3],
    })  # fmt: skip
    camps = np.ones(20, dtype=int)
    camps[12] = -1
    monkeypatch.setattr(rank, "follow_camps", lambda ctx: camps)
    # user 1 follows a balanced set, user 2 only camp +1
    lean = {1: 0.5, 2: 1.0}
    monkeypatch.setattr(rank, "user_lean", lambda ctx, c, u: lean[u])
    ctx = SimpleNamespace(view=SimpleNamespace(removed_ms={104: 1, 999: 2}))
    h = ranking_report.timelines_health(ctx, frame)
    assert h["users"] == 2 and h["slots"] == 6
    assert h["distinct_topics_mean"] == pytest.approx((3 + 1) / 2)
    assert h["users_under_4_topics"] == 2
    # user 1: 2/3 camp +1 (not over 80%); user 2: 3/3 but their follows lean 100%
    assert h["users_over_80pct_one_camp"] == 0
    assert h["users_whose_follows_lean_over_80pct"] == 1
    assert h["removed_slots"] == 1 and h["removed_slot_share"] == pytest.approx(1 / 6, abs=1e-5)
    assert h["rerank_harm_over_0_1"] == 2
