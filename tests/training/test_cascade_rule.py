"""The cascade's tau rule (a one-sided tolerance bound) on hand-made numbers."""

import math

import numpy as np
import pytest

from training.cascade import choose_tau, tolerance_rank


def test_tolerance_rank_by_hand():
    # n = 500, keep = 0.99: X ~ Binomial(500, 0.01). By hand: P(X=0) = 0.99^500 = 0.006570,
    # P(X=1) = 5 * 0.99^499 = 0.033180, P(X=2) = 124750e-4 * 0.99^498 = 0.083617:
    # P(X >= 2) = 0.960250 >= 0.95 but P(X >= 3) = 0.876633 < 0.95 -> k = 2.
    assert tolerance_rank(500, 0.99, 0.95) == 2
    # k = 1 needs 1 - 0.99^n >= 0.95: 0.99^298 = 0.05004 (no), 0.99^299 = 0.04954 (yes).
    assert tolerance_rank(298, 0.99, 0.95) == 0
    assert tolerance_rank(299, 0.99, 0.95) == 1


def test_choose_tau_takes_the_order_statistic():
    # 500 harmful posts, one scoring event each, all caught by the heavy model (heavy = 1 >= 0.9);
    # student needs 0.001, 0.002, ..., 0.5: tau is the 2nd smallest, 0.002.
    n = 500
    out = choose_tau(
        np.arange(n),
        np.arange(1, n + 1) / 1000,
        np.ones(n),
        np.ones(n, bool),
        np.ones(n),
        action_threshold=0.9,
        keep=0.99,
    )
    assert out["tau"] == pytest.approx(0.002)
    assert out["heavy_recall"] == pytest.approx(1.0)


def test_choose_tau_small_validation_moves_below_the_minimum():
    # 10 caught posts, smallest need 0.5 (logit 0): tau = sigmoid(0 - 1) = 0.268941.
    needs = np.linspace(0.5, 0.95, 10)
    out = choose_tau(
        np.arange(10),
        needs,
        np.ones(10),
        np.ones(10, bool),
        np.ones(10),
        action_threshold=0.9,
        keep=0.99,
        safety_logit=1.0,
    )
    assert out["tau"] == pytest.approx(1 / (1 + math.e), abs=1e-6)
    # A post whose events the heavy model never catches does not constrain tau.
    out2 = choose_tau(
        [1, 1, 2],
        [0.9, 0.01, 0.6],
        [0.95, 0.2, 0.99],
        [True, True, True],
        [1.0, 1.0, 1.0],
        action_threshold=0.9,
        keep=0.99,
        safety_logit=0.0,
    )
    assert out2["tau"] == pytest.approx(0.6)
