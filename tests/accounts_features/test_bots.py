"""Bot detection: the guardrail's threshold and the label rules on hand-made cases, then the whole
chain (simulate -> ingest -> features -> train -> score) on a small accounts world graded
against its truth, which the model never sees."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from sim.accounts import simulate_accounts
from sim.accounts_harness import best_recall_at_precision
from sim.accounts_params import AccountsParams
from vigil import cli
from vigil.accounts import bots


def test_threshold_for_precision_by_hand():
    y = np.array([1, 1, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    w = np.ones(5)
    # precision at each cut: 1/1, 2/2, 2/3, 3/4, 3/5
    assert bots.threshold_for_precision(y, s, w, 0.95) == (0.8, 1.0, pytest.approx(2 / 3))
    assert bots.threshold_for_precision(y, s, w, 0.7) == (0.6, 0.75, 1.0)
    # label frequency 0.5: each labeled account stands for two bots (capped at the set size)
    assert bots.threshold_for_precision(y, s, w, 0.95, 0.5) == (0.5, 1.0, 1.0)
    # tied scores are cut together: {0.9, 0.9} has precision 1/2
    t = bots.threshold_for_precision(
        np.array([1, 0, 1]), np.array([0.9, 0.9, 0.5]), np.ones(3), 0.95
    )
    assert t[0] == float("inf") and t[2] == 0.0


def test_weights_count_accounts_not_rows():
    # a negative account with weight 1 split over 4 rows is as heavy as one positive row
    y = np.array([1, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.8, 0.8, 0.8])
    w = np.array([1.0, 0.25, 0.25, 0.25, 0.25])
    assert bots.threshold_for_precision(y, s, w, 0.5) == (0.8, 0.5, 1.0)


def test_profile_columns_by_hand():
    users = pd.DataFrame(
        {"user_id": [1, 2], "handle": ["abc_de12", "qwerty12345678"], "home_country": ["US", "RO"]}
    )
    p = profile_row = bots.profile_columns(users).set_index("user_id")
    assert profile_row.loc[
        1, ["handle_len", "handle_digits", "handle_has_underscore"]
    ].tolist() == [8, 2, 1]
    assert p.loc[1, "handle_digit_share"] == pytest.approx(0.25)
    assert p.loc[2, "handle_digit_share"] == pytest.approx(8 / 14)
    assert p.loc[1, "home_country_code"] == 1 and p.loc[2, "home_country_code"] == 0  # RO < US


def test_platform_labels_by_hand():
    t = pd.Timestamp
    enforcement = pd.DataFrame(
        {
            "user_id": [1, 2, 3],
            "reason": ["bot", "harassment", "spam"],
            "enforced_at": [
                t("2026-10-03", tz="UTC"),
                t("2026-10-02", tz="UTC"),
                t("2026-10-05", tz="UTC"),
            ],
        }
    )
    labels = pd.DataFrame(
        {
            "post_id": [10, 11, 12],
            "harm_types": ["spam", "", "harassment"],
            "labeled_at": [
                t("2026-10-04", tz="UTC"),
                t("2026-10-01", tz="UTC"),
                t("2026-10-01", tz="UTC"),
            ],
        }
    )
    authors = pd.DataFrame({"post_id": [10, 11, 12], "user_id": [3, 4, 2]})
    got = bots.platform_labels(enforcement, labels, authors).set_index("user_id")
    # 1: suspended as a bot; 3: a spam label on 10-04 before its spam suspension; 2 and 4: not bots
    assert sorted(got.index) == [1, 3]
    assert got.loc[3, "labeled_at"] == t("2026-10-04", tz="UTC")


def test_best_recall_at_precision_by_hand():
    y = np.array([1, 1, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    assert best_recall_at_precision(y, s, 0.95) == pytest.approx(2 / 3)
    assert best_recall_at_precision(y, s, 0.75) == 1.0


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import os

    root = tmp_path_factory.mktemp("bots")
    old = os.environ.get("VIGIL_HOME")
    os.environ["VIGIL_HOME"] = str(root / "home")
    raw = root / "raw"
    simulate_accounts(raw, replace(AccountsParams(), users=700, days=6, seed=3))
    try:
        assert cli.main(["ingest", "--raw", str(raw)]) == 0
        assert cli.main(["accounts", "features"]) == 0
        for mode in ("behavior", "profile"):
            assert cli.main(["accounts", "train", "--mode", mode]) == 0
        assert cli.main(["accounts", "score"]) == 0
        scores = pd.read_parquet(root / "home" / "features" / "account_bot_scores.parquet")
        meta = json.loads(
            (root / "home" / "models" / "accounts_bots" / "behavior" / "model.json").read_text()
        )
        profile = bots.load("profile")
        feats = pd.read_parquet(root / "home" / "features" / "account_features.parquet")
        users = pd.read_parquet(root / "home" / "lake" / "users" / "users.parquet")
        pscores = bots.score(profile, feats, users)
        yield raw, scores, pscores, meta
    finally:
        if old is None:
            os.environ.pop("VIGIL_HOME", None)
        else:
            os.environ["VIGIL_HOME"] = old


def test_scores_beat_the_profile_baseline_against_truth(trained):
    from sklearn.metrics import average_precision_score

    raw, scores, pscores, meta = trained
    truth = pd.read_json(raw / "_truth" / "accounts_users.jsonl", lines=True)[["user_id", "is_bot"]]
    last = scores["event_timestamp"].max()

    def ap(df):
        d = df[df["event_timestamp"] == last].merge(truth, on="user_id")
        return average_precision_score(d["is_bot"].astype(int), d["bot_score"])

    assert 0 <= meta["threshold"] <= 1 and meta["metrics"]["label_frequency"] <= 1
    assert ap(scores) > ap(pscores) + 0.05
    d = scores[scores["event_timestamp"] == last].merge(truth, on="user_id")
    flagged = d[d["is_flagged"] == 1]
    assert len(flagged) >= 10
    assert flagged["is_bot"].mean() >= 0.85  # precision against truth of what the guardrail flags


def test_scores_are_calibrated_probabilities(trained):
    _, scores, _, _ = trained
    assert scores["bot_score"].between(0, 1).all()
    assert set(scores["is_flagged"].unique()) <= {0, 1}


def test_train_without_features_is_one_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "empty"))
    assert cli.main(["accounts", "train"]) == 2
    err = capsys.readouterr().err
    assert "account_features.parquet is missing" in err and "vigil accounts features" in err


def test_gx_suite_covers_every_feature():
    from vigil.accounts.features import FEATURES
    from vigil.config import REPO_ROOT

    suite = json.loads(
        (REPO_ROOT / "expectations" / "accounts" / "account_features.json").read_text()
    )
    ranged = {
        e["kwargs"]["column"]: e["kwargs"]["max_value"]
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_be_between"
    }
    assert set(ranged) == set(FEATURES)
    assert all(ranged[f] == 1 for f in FEATURES if f.endswith("_share_7d"))


def test_accounts_gate_passes_on_the_small_world(trained):
    from vigil.quality.gate import run_gate

    result = run_gate("accounts", raise_on_failure=False)
    assert result.success, [r for r in result.results if not r.success]
    assert len(result.results) >= 2 * 15


def test_precision_recall_of_a_threshold_by_hand():
    y, s, w = np.array([1, 0, 1]), np.array([0.9, 0.5, 0.4]), np.ones(3)
    assert bots._precision_recall(y, s, w, 0.5, 1.0) == (0.5, 0.5)
    # c = 0.5: the one labeled account flagged stands for two bots among the two flagged
    assert bots._precision_recall(y, s, w, 0.5, 0.5) == (1.0, pytest.approx(2 / 3))


def test_training_frame_keeps_silent_rows_until_the_day_after_a_suspension():
    t = pd.Timestamp
    feats = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 2, 2, 2],
            "event_timestamp": [t(f"2026-10-0{d}", tz="UTC") for d in (2, 3, 4, 2, 3, 4)],
            "events_7d": [0, 5, 0, 4, 0, 0],
        }
    )
    users = pd.DataFrame(
        {"user_id": [1, 2], "handle": ["ann", "bot12345678"], "home_country": ["US", "US"]}
    )
    labels = pd.DataFrame({"user_id": [2], "labeled_at": [t("2026-10-02", tz="UTC")], "label": 1})
    enforcement = pd.DataFrame(
        {"user_id": [2], "enforced_at": [t("2026-10-01T12:00", tz="UTC")], "reason": ["bot"]}
    )
    df = bots.training_frame(feats, users, labels, enforcement).set_index(
        ["user_id", "event_timestamp"]
    )
    # user 1 keeps its three rows, silent ones included (weight 1/3 each); user 2 was suspended
    # on 10-01 12:00: rows up to 10-02 12:00 stay, i.e. only the 10-02 00:00 row (weight 1)
    assert df.loc[1, "weight"].tolist() == pytest.approx([1 / 3] * 3)
    assert df.loc[2].index.tolist() == [t("2026-10-02", tz="UTC")]
    assert df.loc[(2, t("2026-10-02", tz="UTC")), ["label", "weight"]].tolist() == [1, 1.0]


def test_guardrail_is_estimated_on_rows_that_can_be_flagged():
    # scores 0.9 (labeled, 3 events), 0.8 (unlabeled, silent), 0.7 (labeled, 2 events): over
    # all rows the precision at 0.7 is 2/3, so the threshold would be 0.9; the silent row can
    # never be flagged, so over the rest the precision at 0.7 is 2/2 and the threshold is 0.7
    va = pd.DataFrame({"events_7d": [3, 0, 2], "account_age_days": [30.0, 30.0, 30.0]})
    y, prob, w = np.array([1, 0, 1]), np.array([0.9, 0.8, 0.7]), np.ones(3)
    gated = bots._guardrail(va, y, prob, w, 1.0, bots.BotConfig(young_days=0))
    assert gated[:3] == (0.7, 1.0, 1.0)
    ungated = bots._guardrail(va, y, prob, w, 1.0, bots.BotConfig(young_days=0, min_events=0))
    assert ungated[0] == 0.9


def test_silent_accounts_are_scored_but_never_flagged():
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    cols = ["events_7d", "account_age_days"]
    model = LogisticRegression().fit(np.array([[0, 1], [0, 2], [9, 1], [9, 2]]), [1, 1, 0, 0])
    iso = IsotonicRegression(out_of_bounds="clip").fit([0.0, 1.0], [0.0, 1.0])  # identity
    bundle = {
        "model": model,
        "calibrator": iso,
        "columns": cols,
        "threshold": 0.5,
        "label_frequency": 1.0,
        "config": {"min_events": 1},
    }
    feats = pd.DataFrame(
        {
            "user_id": [1, 2],
            "event_timestamp": pd.Timestamp("2026-10-02", tz="UTC"),
            "events_7d": [0, 1],
            "account_age_days": [1.0, 1.0],
        }
    )
    users = pd.DataFrame({"user_id": [1, 2], "handle": ["a", "b"], "home_country": ["US", "US"]})
    out = bots.score(bundle, feats, users).set_index("user_id")
    # both score above the threshold (few events look like the positives), only 2 is flagged
    assert (out["bot_score"] > 0.5).all()
    assert out["is_flagged"].tolist() == [0, 1]
