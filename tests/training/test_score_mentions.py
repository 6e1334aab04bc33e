"""`vigil score`'s mention path (issue 26): a post that names someone is removed when the post path
or the mention model fires (training.score.apply_mentions), on a hand-made lake with a logistic
regression whose weights are set by hand, so every score is worked out on paper."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from training import mentions, registry
from training.score import apply_mentions

DAY = date(2026, 10, 1)
T0 = pd.Timestamp("2026-10-01T00:00:00Z")
BUNDLE = {"thresholds": {"multitask": {"threshold": 0.8}}, "model_id": "m-test"}


def _ev(i, minute, user, action, post=None, target=None, text=None):
    return {
        "event_id": f"e{i}",
        "event_ts": T0 + pd.Timedelta(minutes=minute),
        "user_id": user,
        "action": action,
        "post_id": post,
        "target_user_id": target,
        "text": text,
    }


def _lake(root):
    """ann (1) blocked bob (2) the day before; on DAY bob posts "@ann you again?" (12), cat (3)
    posts "@ann hi" (13), dan (4) posts "hello" (14). The day before bob named ann in post 11."""
    days = {
        "2026-09-30": [
            _ev(1, -60, 1, "block", target=2),
            _ev(2, -30, 2, "post", post=11, text="@ann again"),
        ],
        "2026-10-01": [
            _ev(3, 10, 2, "post", post=12, text="@ann you again?"),
            _ev(4, 20, 3, "post", post=13, text="@ann hi"),
            _ev(5, 30, 4, "post", post=14, text="hello"),
        ],
    }
    for day, rows in days.items():
        (root / "events" / f"dt={day}").mkdir(parents=True)
        pd.DataFrame(rows).to_parquet(
            root / "events" / f"dt={day}" / "events.parquet", coerce_timestamps="us"
        )
    (root / "users").mkdir()
    users = {"user_id": [1, 2, 3, 4], "handle": ["ann", "bob", "cat", "dan"], "created_at": T0}
    pd.DataFrame(users).to_parquet(root / "users" / "users.parquet", coerce_timestamps="us")
    return root


def _model():
    """p = sigmoid(-2 + 4 * log1p(prior_target_negative)); every other weight 0."""
    n = len(mentions.PAIR_FEATURES) + 1 + 2**14  # pair features, is_reply, hashed text
    model = LogisticRegression()
    model.classes_ = np.array([0, 1])
    model.coef_ = np.zeros((1, n))
    model.coef_[0, mentions.PAIR_FEATURES.index("prior_target_negative")] = 4.0
    model.intercept_ = np.array([-2.0])
    model.n_features_in_ = n
    return model


def _events():
    """Post 12 allowed by the post path (0.3 < 0.8 x 0.5), 13 removed (0.9 >= 0.8), 14 in review
    (0.5 >= 0.4); review priority 7 for 14, as decide_and_prioritise leaves it."""
    return pd.DataFrame(
        {
            "post_id": [12, 13, 14],
            "probability": [0.3, 0.9, 0.5],
            "decision": ["allow", "remove", "review"],
            "review_priority": [0.0, 0.0, 7.0],
        }
    )


def test_mention_path_removes_a_post_the_post_path_allows(tmp_path):
    lake = _lake(tmp_path / "lake")
    bob = 1 / (1 + math.exp(2 - 4 * math.log(2)))  # one prior block: 0.6840
    cat = 1 / (1 + math.exp(2))  # no prior block: 0.1192
    scores = mentions.post_scores(_model(), lake, T0, T0 + pd.Timedelta(days=1))
    assert sorted(scores.index) == [12, 13]  # 11 is the day before; 14 names nobody
    assert np.allclose(scores.loc[[12, 13]], [bob, cat])

    out = apply_mentions(_events(), BUNDLE, DAY, {"model": _model(), "threshold": 0.5}, lake)
    assert list(out["decision"]) == ["remove", "remove", "review"]
    assert list(out["removed_by"].fillna("-")) == ["mention", "post", "-"]
    assert np.allclose(out["mention_score"].to_numpy(), [bob, cat, np.nan], equal_nan=True)
    assert list(out["review_priority"]) == [0.0, 0.0, 7.0]
    # the same decisions as combine(...) >= 1: 0.3/0.8 vs 0.684/0.5, 0.9/0.8, 0.5/0.8 (no mention)
    combined = mentions.combine([0.3, 0.9, 0.5], 0.8, [bob, cat, np.nan], 0.5)
    assert list(combined >= 1) == [True, True, False]


def test_without_a_mention_model_decisions_are_unchanged(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "home"))  # empty registry: no mention.joblib
    missing_lake = tmp_path / "no-lake"  # never read: reading it would raise
    for mention in (None, {"model": _model(), "threshold": math.inf}):
        out = apply_mentions(_events(), BUNDLE, DAY, mention, missing_lake)
        assert list(out["decision"]) == ["allow", "remove", "review"]
        assert list(out["removed_by"].fillna("-")) == ["-", "post", "-"]
        assert out["mention_score"].isna().all()
        assert list(out["review_priority"]) == [0.0, 0.0, 7.0]


def test_the_registered_mention_model_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "home"))
    folder = registry.root() / BUNDLE["model_id"]
    folder.mkdir(parents=True)
    registry.save_mention(folder, {"model": _model(), "threshold": 0.5})
    out = apply_mentions(_events(), BUNDLE, DAY, lake=_lake(tmp_path / "lake"))
    assert list(out["removed_by"].fillna("-")) == ["mention", "post", "-"]
