"""The removal-threshold rule (Wilson lower bound on precision) on hand-made scores."""

import math

import numpy as np
import pytest

from training.calibrate import decide, removal_threshold, weighted_wilson_lower_bound, wilson_lower_bound

Z = 1.645


def wilson_by_hand(k, n, z=Z):
    p = k / n
    return (p + z * z / (2 * n) - z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)


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
    assert weighted_wilson_lower_bound(y, np.full(10, 3.0), Z) == pytest.approx(wilson_lower_bound(9, 10, Z))
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
