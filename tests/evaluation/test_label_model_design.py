"""The label model and the expected-variance interval of the calibrated design (issue 22), on
hand-computed cases and against scikit-learn's logistic regression."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from vigil.errors import UserError
from vigil.evaluation import calibration
from vigil.evaluation import estimators as est

Z = 1.959964


def test_expected_variance_by_hand():
    # (1 - pi)/pi * views^2 * q: (0.5/0.5) * 100 * 0.2 = 20; pi = 1 -> 0; (0.75/0.25) * 16 * 0.5
    # = 24; total 44
    got = calibration.expected_variance([0.5, 1.0, 0.25], [10, 3, 4], [0.2, 0.9, 0.5])
    assert got == pytest.approx(44.0)


def test_share_with_the_expected_variance_by_hand():
    # drawn y = (10, 0) at pi (0.5, 0.25): HT total 20 -> share 20 / 100 = 0.2; the interval uses
    # the given variance 44, not the sample's (0.5/0.25) * 100 = 200: se = sqrt(44) / 100
    got = est.ht_share_expected_variance([10, 0], [0.5, 0.25], 100, 44.0)
    se = math.sqrt(44) / 100
    assert got.estimate == pytest.approx(0.2)
    assert got.se == pytest.approx(se)
    assert got.low == pytest.approx(0.2 - Z * se, rel=1e-6)  # 0.069993
    assert got.high == pytest.approx(0.2 + Z * se, rel=1e-6)  # 0.330007
    # a day with no harmful unit drawn still gets an interval above zero
    zero = est.ht_share_expected_variance([0, 0], [0.5, 0.25], 100, 44.0)
    assert (zero.estimate, zero.low) == (0.0, 0.0)
    assert zero.high == pytest.approx(Z * se, rel=1e-6)


def test_label_model_with_one_covariate_pattern_is_the_weighted_harmful_share():
    # every unit has the same scores and views: the fitted probability is the 1/pi-weighted
    # share of harmful labels. 60 units: 10 harmful at pi 0.5 (weight 2), 50 benign at pi 1:
    # 20 / (20 + 50) = 2/7.
    n = 60
    labels = np.r_[np.ones(10), np.zeros(50)]
    pi = np.r_[np.full(10, 0.5), np.ones(50)]
    scores = np.full((n, 2), 0.1)
    model = calibration.fit(scores, np.full(n, 3.0), labels, pi, ridge=1e-9)
    assert model.predict([[0.1, 0.1]], [3.0])[0] == pytest.approx(2 / 7, rel=1e-5)
    assert (model.labels, model.harmful) == (60, 10)


def test_label_model_matches_scikit_learn_without_penalty():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(4)
    n = 3000
    h = rng.random(n) < 0.1
    scores = np.column_stack(
        [1 / (1 + np.exp(-rng.normal(np.where(h, 1.0, -2.0), 1.0))) for _ in range(2)]
    )
    views = rng.poisson(np.where(h, 6, 9))
    pi = rng.uniform(0.1, 1.0, n)
    model = calibration.fit(scores, views, h, pi, ridge=1e-9)
    x = calibration.features(scores, views)[:, 1:]
    ref = LogisticRegression(C=1e12, tol=1e-12, max_iter=10_000).fit(x, h, sample_weight=1 / pi)
    assert model.coef[0] == pytest.approx(ref.intercept_[0], abs=1e-4)
    assert model.coef[1:] == pytest.approx(ref.coef_[0], abs=1e-4)


def test_a_strong_penalty_keeps_the_scores_own_calibration_and_few_labels_give_no_model():
    rng = np.random.default_rng(1)
    scores = rng.uniform(0.01, 0.99, (80, 2))
    labels = np.ones(80)  # all harmful: unpenalized, the fit would run to infinity
    model = calibration.fit(scores, np.ones(80), labels, np.ones(80), ridge=1e9)
    assert model.coef == pytest.approx([0.0, 0.5, 0.5, 0.0, 0.0], abs=1e-4)
    # logit q = mean of the logits: scores 0.2 and 0.8 -> q = 0.5
    assert model.predict([[0.2, 0.8]], [5])[0] == pytest.approx(0.5, abs=1e-4)
    assert calibration.fit(scores[:49], np.ones(49), labels[:49], np.ones(49)) is None
    assert calibration.probabilities(None, [[0.2, 0.7], [0.1, 0.05]], [1, 1]) == pytest.approx(
        [0.7, 0.1]
    )


def test_the_daily_label_model_learns_from_the_days_before_and_is_reused_on_a_rerun(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    from vigil.evaluation.daily import Settings, label_model

    rng = np.random.default_rng(2)
    n = 200
    units = pd.DataFrame(
        {
            "post_id": np.arange(1, n + 1),
            "views": rng.poisson(5, n),
            "score_control": rng.uniform(0.001, 0.9, n),
            "score_candidate": rng.uniform(0.001, 0.9, n),
            "pi": rng.uniform(0.2, 1.0, n),
            "drawn": rng.random(n) < 0.5,
        }
    )
    folder = tmp_path / "reports" / "online_eval" / "day=2026-10-04"
    folder.mkdir(parents=True)
    units.to_parquet(folder / "sample.parquet")
    labels = pd.Series(rng.random(n) < 0.3, index=units["post_id"])
    s = Settings("a", "b", history=7)
    model = label_model("2026-10-05", s, labels)
    drawn = units[units["drawn"]]
    expected = calibration.fit(
        drawn[["score_control", "score_candidate"]].to_numpy(),
        drawn["views"].to_numpy(),
        labels.reindex(drawn["post_id"]).to_numpy(),
        drawn["pi"].to_numpy(),
    )
    assert model.labels == len(drawn)
    assert model.coef == pytest.approx(expected.coef)
    # a rerun of the same day reuses the saved model whatever the labels say now (same draw)
    again = label_model("2026-10-05", s, ~labels)
    assert again.coef == pytest.approx(model.coef)
    # the day itself and days beyond the history are not used
    assert label_model("2026-10-04", s, labels) is None
    assert label_model("2026-10-13", s, labels) is None
    assert label_model("2026-10-05", Settings("a", "b", design="pps"), labels) is None


def test_label_error_correction_by_hand():
    # e = 0.1: a harmful label counts (1 - 0.1) / 0.8 = 1.125, a benign one -0.1 / 0.8 = -0.125;
    # unbiased: harmful post 0.9 * 1.125 + 0.1 * -0.125 = 1, benign 0.1 * 1.125 - 0.9 * 0.125 = 0
    assert calibration.corrected_labels([1, 0], 0.1) == pytest.approx([1.125, -0.125])
    assert calibration.corrected_labels([1, 0], 0.0) == pytest.approx([1.0, 0.0])
    # q = 0.5 -> P(harmful label) = 0.1 + 0.8 * 0.5 = 0.5; E[corrected^2] = 0.5 * 1.125^2 +
    # 0.5 * 0.125^2 = 0.640625; (1 - 0.5)/0.5 * 2^2 * 0.640625 = 2.5625
    assert calibration.expected_variance([0.5], [2], [0.5], label_error=0.1) == pytest.approx(
        2.5625
    )
    with pytest.raises(UserError, match="label error rate"):
        calibration.corrected_labels([1], 0.5)


def test_posts_logged_without_a_score_get_their_own_rate():
    # The cascade logs probability 0 below its threshold: those units are a block of one value.
    # Two covariate patterns, so the fit is saturated: block (scores 0): 3 harmful at pi 0.5
    # (weight 2) and 57 benign at pi 1 -> 6 / 63; scored (0.5, 0.5): 30 of 60 harmful -> 1/2.
    scores = np.r_[np.zeros((60, 2)), np.full((60, 2), 0.5)]
    labels = np.r_[np.ones(3), np.zeros(57), np.ones(30), np.zeros(30)]
    pi = np.r_[np.full(3, 0.5), np.ones(117)]
    model = calibration.fit(scores, np.zeros(120), labels, pi, ridge=1e-9)
    got = model.predict([[0.0, 0.0], [0.5, 0.5]], [0, 0])
    assert got == pytest.approx([6 / 63, 0.5], rel=1e-4)
