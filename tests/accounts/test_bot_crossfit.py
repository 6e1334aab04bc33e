"""The bot model's cross-fitting and young label frequency options (off by default) on hand-made
rows (vigil.accounts.bots): per-row label frequencies in the guardrail, the fold models that score
each account, and a label frequency of the young rows' own."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vigil.accounts import bots
from vigil.errors import UserError

T = pd.Timestamp("2026-10-14", tz="UTC")


def test_a_label_frequency_per_row_credits_each_label_by_its_own_c():
    # scores 0.9 (labeled, c 0.5), 0.8 (unlabeled), 0.7 (labeled, c 1), 0.6 (unlabeled)
    y, s, w = np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.6]), np.ones(4)
    # per row: est. TP = min(cumsum(y / c), flagged) = min(2, 1), min(2, 2), min(3, 3), min(3, 4)
    # = 1, 2, 3, 3 -> precision 1, 1, 1, 0.75 -> cut at 0.7; positives min(3, 4) = 3 -> recall 1
    c = np.array([0.5, 1.0, 1.0, 1.0])
    assert bots.threshold_for_precision(y, s, w, 0.95, c) == (0.7, 1.0, 1.0)
    # c = 1 everywhere: TP 1, 1, 2, 2 -> precision 1, 1/2, 2/3, 1/2 -> 0.9, recall 1/2
    assert bots.threshold_for_precision(y, s, w, 0.95, np.ones(4)) == (0.9, 1.0, 0.5)
    assert bots.threshold_for_precision(y, s, w, 0.95, 1.0) == (0.9, 1.0, 0.5)
    # the same estimate at a given cut: at 0.7 three flagged, TP 3 of 3
    assert bots._precision_recall(y, s, w, 0.7, c) == (1.0, 1.0)


# seven hand-made validation accounts, one row each: (raw score, label, account age in days)
ACCOUNTS = [
    (0.9, 1, 30.0),
    (0.8, 1, 30.0),
    (0.2, 0, 30.0),
    (0.9, 1, 1.0),
    (0.6, 1, 1.0),
    (0.6, 0, 1.0),
    (0.2, 0, 1.0),
]


def _frame(copies: int = 3) -> pd.DataFrame:
    # each account three times (21 accounts: fit needs 20); every ratio below is unchanged
    rows = [(r, y, a) for _ in range(copies) for (r, y, a) in ACCOUNTS]
    n = len(rows)
    return pd.DataFrame(
        {
            "user_id": np.arange(1, n + 1),
            "event_timestamp": [T] * n,
            "account_age_days": [a for _, _, a in rows],
            "handle_len": [round(r * 10) for r, _, _ in rows],  # the stub model's raw score x 10
            "handle_digits": 0,
            "handle_digit_share": 0.0,
            "handle_has_underscore": 0,
            "home_country_code": 0,
            "events_7d": 3,
            "label": [y for _, y, _ in rows],
            "weight": 1.0,
        }
    )


def _stub_fit(monkeypatch, df, **cfg):
    # the model's raw score is handle_len / 10; every account is validation (share 1)
    monkeypatch.setattr(bots, "_train_model", lambda tr, cols, cfg: "stub")
    monkeypatch.setattr(bots, "_predict", lambda m, x: x["handle_len"].to_numpy() / 10)
    return bots.fit(df, bots.BotConfig(mode="profile", validation_share=1.0, **cfg))


def test_young_rows_get_their_own_label_frequency(monkeypatch):
    df = _frame()
    # isotonic P(labeled | raw): 0.2 -> 0/2, 0.6 -> 1/2, 0.8 -> 1, 0.9 -> 1. c = mean over the
    # labeled: (1 + 1 + 1 + 0.5) / 4 = 0.875; young labeled (age <= 3): (1 + 0.5) / 2 = 0.75.
    # Target 0.85. Plain: P(bot) 1 (0.9, 0.8), 0.5 / 0.875 = 0.5714 (0.6), 0. All rows: the
    # top group 9 rows, TP min(9 / 0.875, 9) = 9; with the 0.6 group 15 rows, TP 12 / 0.875 =
    # 13.71 -> 0.914 >= 0.85. Young rows: top 3, TP 3; with 0.6: 9 rows, TP 6 / 0.875 = 6.86 ->
    # 0.762 < 0.85 -> young threshold 1; the stricter: 1
    plain = _stub_fit(monkeypatch, df, target_precision=0.85)
    assert plain["label_frequency"] == pytest.approx(0.875)
    assert plain["label_frequency_young"] is None
    assert plain["threshold"] == 1.0 and plain["metrics"]["young_threshold"] == 1.0
    # young c 0.75: the young 0.6 rows get P(bot) 0.5 / 0.75 = 2/3. Young rows: with the 2/3
    # group 9 rows, TP 6 / 0.75 = 8 -> 0.889 >= 0.85 -> 2/3. All rows: with it 15 rows, TP
    # 6 / 0.875 + 6 / 0.75 = 14.86 -> 0.990 -> 2/3 (the old 0.6 rows do not exist)
    own = _stub_fit(monkeypatch, df, target_precision=0.85, young_label_frequency=True)
    assert own["label_frequency"] == pytest.approx(0.875)
    assert own["label_frequency_young"] == pytest.approx(0.75)
    assert own["threshold"] == pytest.approx(2 / 3)
    users = pd.DataFrame(
        {"user_id": df["user_id"], "handle": ["a" * int(h) for h in df["handle_len"]]}
    ).assign(home_country="US")
    feats = df[["user_id", "event_timestamp", "account_age_days", "events_7d"]].copy()
    out = bots.score(own, feats, users).iloc[:7]
    # raw -> cal -> P(bot): old 0.9, 0.8 -> 1; old 0.2 -> 0; young 0.9 -> 1; young 0.6 -> 2/3
    assert out["bot_score"].round(6).tolist() == [1.0, 1.0, 0.0, 1.0, 0.666667, 0.666667, 0.0]
    assert out["is_flagged"].tolist() == [1, 1, 0, 1, 1, 1, 0]
    assert bots.score(plain, feats, users)["is_flagged"].iloc[:7].tolist() == [1, 1, 0, 1, 0, 0, 0]


class _Seen:
    """A fake fold model: remembers which accounts it was trained on; scores ``value``."""

    def __init__(self, users, value):
        self.seen, self.value = set(users), value


def test_crossfit_scores_each_account_with_the_model_that_never_saw_it(monkeypatch):
    df = _frame()
    made = []

    def train(tr, cols, cfg):
        made.append(_Seen(tr["user_id"], 0.1 * (len(made) + 1)))  # 0.1, 0.2, 0.3
        return made[-1]

    monkeypatch.setattr(bots, "_train_model", train)
    monkeypatch.setattr(bots, "_predict", lambda m, x: np.full(len(x), m.value))
    bundle = bots.fit(df, bots.BotConfig(mode="profile", crossfit_folds=3, young_days=0))
    assert len(made) == 3 and bundle["models"] == made
    everyone = set(df["user_id"])
    left_out = [everyone - m.seen for m in made]
    # the three folds partition the accounts, each model learned on the other two
    assert set().union(*left_out) == everyone
    assert sum(len(f) for f in left_out) == len(everyone)
    assert all(f for f in left_out)
    users = pd.DataFrame({"user_id": df["user_id"], "handle": "ab", "home_country": "US"})
    feats = df[["user_id", "event_timestamp", "account_age_days", "events_7d"]].copy()
    out = bots.score(bundle, feats, users)
    # "own": every account's raw score is that of the one model that did not train on it
    want = {u: m.value for m in made for u in everyone - m.seen}
    assert out["bot_score_raw"].tolist() == [want[u] for u in out["user_id"]]
    # "mean": the mean of the three fold models' raw scores, 0.2, for every row
    bundle["config"]["crossfit_scoring"] = "mean"
    assert np.allclose(bots.score(bundle, feats, users)["bot_score_raw"], 0.2)


def test_crossfit_needs_two_folds_and_a_known_scoring():
    df = _frame()
    with pytest.raises(UserError, match="crossfit_folds 1"):
        bots.fit(df, bots.BotConfig(mode="profile", crossfit_folds=1))
    with pytest.raises(UserError, match="crossfit_scoring 'max'"):
        bots.fit(df, bots.BotConfig(mode="profile", crossfit_folds=3, crossfit_scoring="max"))


def test_credit_per_level_carries_no_surplus_down():
    # two labeled rows at 0.9, two unlabeled at 0.5; c = 0.5: the labels stand for 4 bots.
    # Cumulative credit: min(4, 2) = 2 of 2 at 0.9, min(4, 4) = 4 of 4 at 0.5 -> precision 1
    # at 0.5. Per level: 0.9 gets min(4, 2) = 2, 0.5 gets min(0, 2) = 0 -> 2 of 4 = 0.5 at 0.5,
    # so the cut stays at 0.9 (precision 1, recall 2 of the 2 credited)
    y, s, w = np.array([1, 1, 0, 0]), np.array([0.9, 0.9, 0.5, 0.5]), np.ones(4)
    assert bots.threshold_for_precision(y, s, w, 0.95, 0.5) == (0.5, 1.0, 1.0)
    assert bots.threshold_for_precision(y, s, w, 0.95, 0.5, per_level=True) == (0.9, 1.0, 1.0)
    # a level with its own labels keeps them: one labeled of the two at 0.5 -> credit
    # min(2, 2) = 2 -> 4 of 4 -> 0.5; recall 4 / (2 + 2)
    y2 = np.array([1, 1, 1, 0])
    assert bots.threshold_for_precision(y2, s, w, 0.95, 0.5, per_level=True) == (0.5, 1.0, 1.0)
    # the guardrail passes the option on (young_days 0: all rows only)
    va = pd.DataFrame({"event_timestamp": [T] * 4, "account_age_days": 30.0, "events_7d": 2})
    cfg = bots.BotConfig(young_days=0, credit_per_level=True)
    assert bots._guardrail(va, y, s, w, 0.5, cfg)[0] == 0.9
    assert bots._guardrail(va, y, s, w, 0.5, bots.BotConfig(young_days=0))[0] == 0.5
