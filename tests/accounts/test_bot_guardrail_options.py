"""The bot model's guardrail options (off by default) on hand-made rows: label maturity, a floor on
the flagged P(bot), and several splits voting (vigil.accounts.bots)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vigil.accounts import bots

T = pd.Timestamp


def _validation():
    # three rows on the last day 10-14: a labeled old account (0.9), an unlabeled account
    # created one day before (0.8) and a labeled old account (0.7), all with events
    va = pd.DataFrame(
        {
            "event_timestamp": [T("2026-10-14", tz="UTC")] * 3,
            "account_age_days": [30.0, 1.0, 30.0],
            "events_7d": [3, 2, 2],
        }
    )
    return va, np.array([1, 0, 1]), np.array([0.9, 0.8, 0.7]), np.ones(3)


def test_label_maturity_leaves_new_accounts_out_of_the_guardrail():
    va, y, prob, w = _validation()
    # all rows: precision at 0.7 is 2/3 < 0.95, at 0.9 1/1 -> threshold 0.9
    assert bots._guardrail(va, y, prob, w, 1.0, bots.BotConfig(young_days=0))[0] == 0.9
    # maturity 3 days: the account created on 10-13 (after 10-11) is not read; 0.7 has 2/2
    cfg = bots.BotConfig(young_days=0, label_maturity_days=3)
    assert bots._guardrail(va, y, prob, w, 1.0, cfg)[:3] == (0.7, 1.0, 1.0)
    # maturity 1 day: created 10-13 00:00 <= 10-14 - 1 day: it is read again
    cfg = bots.BotConfig(young_days=0, label_maturity_days=1)
    assert bots._guardrail(va, y, prob, w, 1.0, cfg)[0] == 0.9
    assert bots._mature(va, 1).tolist() == [True, True, True]
    assert bots._mature(va, 1.5).tolist() == [True, False, True]


def test_floor_raises_a_low_threshold_only():
    va, y, prob, w = _validation()
    cfg = bots.BotConfig(young_days=0, label_maturity_days=3, min_flag_probability=0.75)
    # the guardrail's 0.7 is below the floor: threshold 0.75, the flagged set {0.9} (the 0.8
    # row is not read): precision 1, recall 1/2
    assert bots._guardrail(va, y, prob, w, 1.0, cfg)[:3] == (0.75, 1.0, 0.5)
    cfg = bots.BotConfig(young_days=0, min_flag_probability=0.75)
    assert bots._guardrail(va, y, prob, w, 1.0, cfg)[:3] == (0.9, 1.0, 0.5)


class _Column:
    """A 'model' whose P(positive) is the first input column."""

    def predict_proba(self, x):
        return np.c_[1 - x[:, 0], x[:, 0]]


def test_splits_flag_by_majority_and_average_the_scores():
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(out_of_bounds="clip").fit([0.0, 1.0], [0.0, 1.0])  # identity

    def member(thr: float, c: float) -> dict:
        return {
            "model": _Column(),
            "calibrator": iso,
            "columns": ["x", "events_7d"],
            "threshold": thr,
            "label_frequency": c,
            "config": {"min_events": 1},
        }

    bundle = {"members": [member(0.3, 1.0), member(0.5, 1.0), member(0.7, 0.5)]}
    feats = pd.DataFrame(
        {
            "user_id": [1, 2, 3, 4],
            "event_timestamp": T("2026-10-02", tz="UTC"),
            "x": [0.2, 0.4, 0.6, 0.6],
            "events_7d": [1, 1, 1, 0],
        }
    )
    users = pd.DataFrame(
        {"user_id": [1, 2, 3, 4], "handle": list("abcd"), "home_country": ["US"] * 4}
    )
    out = bots.score(bundle, feats, users).set_index("user_id")
    # P(bot) per member: x, x, min(1, x / 0.5) -> 0.2 0.2 0.4 | 0.4 0.4 0.8 | 0.6 0.6 1.0
    assert out["bot_score"].tolist() == pytest.approx([0.8 / 3, 1.6 / 3, 2.2 / 3, 2.2 / 3])
    # votes (>= thresholds 0.3, 0.5, 0.7): user 1 0+0+0, user 2 1+0+1, user 3 3, user 4 silent
    assert out["is_flagged"].tolist() == [0, 1, 1, 0]
