"""The removal-threshold rule (Wilson lower bound on precision) on hand-made scores."""

import math

import numpy as np
import pytest

from training.calibrate import (
    decide,
    removal_threshold,
    weighted_wilson_lower_bound,
    wilson_lower_bound,
)

Z = 1.645


def wilson_by_hand(k, n, z=Z):
    p = k / n
    return (p + z * z / (2 * n) - z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (
        1 + z * z / n
    )


def test_wilson_values():
    # all successes: the bound is n / (n + z^2): 30 / 32.706025 = 0.917262
    assert wilson_lower_bound(30, 30, Z) == pytest.approx(30 / (30 + Z * Z))
    assert wilson_lower_bound(30, 30, Z) == pytest.approx(0.917262, abs=1e-6)
    # 9 of 10 (hand-computed): (0.9 + 0.135301 - 1.645 * sqrt(0.009 + 0.006765)) / 1.270603 = 0.652257
    assert wilson_lower_bound(9, 10, Z) == pytest.approx(0.652257, abs=1e-5)
    assert wilson_lower_bound(0, 0) == 0.0


def test_weighted_wilson_uses_kish_effective_size():
    # equal weights 3: n_eff = (3n)^2 / (9n) = n, p unchanged -> same as unweighted
    y = np.array([1] * 9 + [0])
    assert weighted_wilson_lower_bound(y, np.full(10, 3.0), Z) == pytest.approx(
        wilson_lower_bound(9, 10, Z)
    )
    # weights (1, 1, 2): p = 3/4 -> wait, y = (1, 1, 0): p = 2/4 = 0.5, n_eff = 16 / 6
    lb = weighted_wilson_lower_bound([1, 1, 0], [1, 1, 2], Z)
    assert lb == pytest.approx(wilson_lower_bound(0.5 * 16 / 6, 16 / 6, Z))


def hand_made():
    # 30 harmful, 1 benign, 12 harmful, then 20 benign, scores strictly descending
    labels = [1] * 30 + [0] + [1] * 12 + [0] * 20
    scores = np.linspace(1.0, 0.38, len(labels))
    return scores, np.array(labels)


def test_threshold_is_lowest_score_with_bound_at_target():
    scores, y = hand_made()
    # By hand (z = 1.645): the top 43 posts hold 42 harmful: p = 0.976744, bound = 0.90224 >= 0.9;
    # the top 42 give 0.90005; every larger set adds a benign post and falls below 0.9.
    assert wilson_by_hand(42, 43) == pytest.approx(0.90224, abs=1e-4)
    assert wilson_by_hand(42, 44) < 0.9
    out = removal_threshold(scores, y, target=0.9, z=Z)
    assert out["threshold"] == pytest.approx(scores[42])
    assert out["n_removed"] == 43
    assert out["lower_bound"] == pytest.approx(wilson_by_hand(42, 43))


def test_threshold_brute_force_agrees_and_weights_scale_free():
    rng = np.random.default_rng(3)
    scores = rng.random(300)
    y = (rng.random(300) < scores**0.3).astype(int)
    # independent brute force over every candidate threshold
    best = math.inf
    for t in np.unique(scores):
        m = scores >= t
        if wilson_by_hand(y[m].sum(), m.sum()) >= 0.8:
            best = min(best, t)
    assert removal_threshold(scores, y, target=0.8, z=Z)["threshold"] == best
    assert removal_threshold(scores, y, np.full(300, 7.0), target=0.8, z=Z)["threshold"] == best


def test_ties_are_one_group_and_no_threshold_is_inf():
    # two posts tied at 0.9 (one benign) cannot be split by a threshold
    out = removal_threshold([0.9, 0.9], [1, 0], target=0.1, z=Z)
    assert out["n_removed"] == 2
    assert removal_threshold([0.9, 0.8], [0, 0], target=0.5)["threshold"] == math.inf


def test_decisions_and_review_band():
    d = decide([0.99, 0.6, 0.3], remove_threshold=0.9, review_band=0.5)
    assert list(d) == ["remove", "review", "allow"]
    assert list(decide([0.99], math.inf, 0.5)) == ["allow"]


def test_bootstrap_bound_matches_the_normal_approximation_in_one_stratum():
    # One stratum, unit weights, 400 posts above every threshold with 380 harmful: the bootstrap
    # 5% quantile of the proportion is close to the Wald bound 0.95 - 1.645 sqrt(.95 .05 / 400).
    from training.calibrate import bootstrap_removal_threshold

    y = np.array([1] * 380 + [0] * 20)
    scores = np.ones(400)  # one tie group: one candidate threshold
    out = bootstrap_removal_threshold(scores, y, np.ones(400), target=0.0, n_boot=4000, seed=1)
    wald = 0.95 - 1.645 * math.sqrt(0.95 * 0.05 / 400)  # = 0.932074
    assert out["precision"] == pytest.approx(0.95)
    assert out["lower_bound"] == pytest.approx(wald, abs=0.004)


def test_bootstrap_threshold_on_hand_made_strata():
    from training.calibrate import bootstrap_removal_threshold

    # 40 reported-queue harmful posts (weight 1.1) on top, then one audit-queue benign post
    # (weight 250), then 10 more reported harmful. Any set holding the audit post has precision
    # <= 55/305 < 0.95 (by hand), so the threshold is the 40th score; with all-harmful sets every
    # replicate's precision is exactly 1.
    y = np.array([1] * 40 + [0] + [1] * 10)
    w = np.array([1.1] * 40 + [250.0] + [1.1] * 10)
    scores = np.linspace(1.0, 0.5, len(y))
    out = bootstrap_removal_threshold(scores, y, w, target=0.95, n_boot=300, seed=0)
    assert out["threshold"] == pytest.approx(scores[39])
    assert out["n_removed"] == 40
    assert out["lower_bound"] == 1.0
    # Wilson with Kish's n agrees here (all weights equal in the top 40) ...
    assert removal_threshold(scores, y, w, target=0.9, z=Z)["n_removed"] == 40
    # ... but a heavy-weight *harmful* audit label collapses Kish's n (n_eff = (44 + 250)^2 /
    # (40 * 1.21 + 62500) = 1.38) although it only raises the precision; the bootstrap keeps it.
    y2 = np.array([1] * 41)
    w2 = np.array([1.1] * 40 + [250.0])
    s2 = np.linspace(1.0, 0.5, 41)
    assert removal_threshold(s2, y2, w2, target=0.9, z=Z)["n_removed"] == 40
    assert bootstrap_removal_threshold(s2, y2, w2, target=0.9, n_boot=300)["n_removed"] == 41
