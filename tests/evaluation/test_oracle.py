"""The oracle sample of sim.online_eval_harness: the minimum-variance Poisson design of a given
size with the true P(harmful | signals, views), a lower bound on any sampler's RSE (issue 22)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sim import online_eval_harness as harness

# Hand-made population: views v, P(harmful) p, budget 2.
# a = v sqrt(p) = (10, 2, 1, 0.2); c a capped at 1: unit 0 is taken with certainty (c >= 0.1),
# the remaining budget 1 goes to units 1-3 in proportion to (2, 1, 0.2): c = 1 / 3.2 = 0.3125,
# pi = (1, 0.625, 0.3125, 0.0625) and c a_0 = 3.125 >= 1 (consistent).
# E[var] = sum (1 - pi)/pi v^2 p = 0 + 0.6 * 16 * 0.25 + 2.2 * 4 * 0.25 + 15 * 1 * 0.04
#        = 2.4 + 2.2 + 0.6 = 5.2
VIEWS = np.array([10.0, 4.0, 2.0, 1.0])
P = np.array([1.0, 0.25, 0.25, 0.04])
PI = np.array([1.0, 0.625, 0.3125, 0.0625])


def test_optimal_allocation_by_hand():
    pi = harness.optimal_probabilities(VIEWS, P, 2.0)
    np.testing.assert_allclose(pi, PI, rtol=1e-9)
    assert harness.expected_design_variance(pi, VIEWS, P) == pytest.approx(5.2, rel=1e-9)


def test_no_allocation_of_the_same_size_beats_the_optimum():
    # brute force: 20,000 random designs with sum pi = 2 and 0 < pi <= 1
    rng = np.random.default_rng(0)
    best = math.inf
    for _ in range(20000):
        pi = rng.dirichlet(np.ones(4)) * 2.0
        if (pi > 1).any():
            continue
        best = min(best, harness.expected_design_variance(pi, VIEWS, P))
    assert best > 5.2
    assert best < 5.2 * 1.2  # the search came near the optimum, so the comparison means something


def test_realized_design_variance_by_hand():
    # y = views * harmful with units 1 and 3 harmful: 0.6 * 16 + 15 * 1 = 24.6; unit 2 not
    # harmful adds nothing, and a unit with y = 0 at pi = 0 adds nothing either
    y = VIEWS * np.array([1, 1, 0, 1])
    assert harness.design_variance(PI, y) == pytest.approx(24.6)
    assert harness.design_variance(np.array([0.5, 0.0]), np.array([2.0, 0.0])) == pytest.approx(4)
    assert harness.design_variance(np.array([0.5, 0.0]), np.array([2.0, 1.0])) == math.inf


def test_true_posterior_correlated_by_hand():
    # rho 0.5, d (2, 3), x (1, 1): S^-1 = [[4/3, -2/3], [-2/3, 4/3]], S^-1 m = (2/3, 8/3),
    # x' S^-1 m = 10/3, m' S^-1 m / 2 = 14/3, log LR = -4/3; prior 0.2: odds 0.25 e^(-4/3)
    models = {"control": (2.0, 0.0), "candidate": (3.0, 0.0)}
    p = harness.true_posterior(np.array([[1.0, 1.0]]), np.array([0.2]), models, 0.5)
    odds = 0.25 * math.exp(-4 / 3)
    assert p[0] == pytest.approx(odds / (1 + odds), rel=1e-12)


def test_true_posterior_nested_evasion_by_hand():
    # rho 0, control misses a harmful post with probability 0.2, the candidate 0.1 (nested):
    # LR = 0.1 * 1 + 0.1 * exp(d2 x2 - d2^2/2) + 0.8 * exp(d1 x1 + d2 x2 - (d1^2 + d2^2)/2)
    models = {"control": (2.0, 0.2), "candidate": (3.0, 0.1)}
    x1, x2 = 0.5, 2.0
    lr = 0.1 + 0.1 * math.exp(3 * x2 - 4.5) + 0.8 * math.exp(2 * x1 + 3 * x2 - 2 - 4.5)
    p = harness.true_posterior(np.array([[x1, x2]]), np.array([0.01]), models, 0.0)
    odds = 0.01 / 0.99 * lr
    assert p[0] == pytest.approx(odds / (1 + odds), rel=1e-12)


def test_true_posterior_is_calibrated_on_the_harness_generator():
    # the harness's own day generator; the posterior must match the harmful share in each bin
    n = 200_000
    pool = pd.DataFrame(
        {
            "post_id": np.arange(n),
            "day": "2026-10-01",
            "views": np.arange(n) % 3,
            "is_harmful": (np.arange(n) % 3 == 2) & (np.arange(n) % 7 < 2),  # harm only at 2 views
        }
    )
    models = {"control": (1.5, 0.1), "candidate": (2.0, 0.05)}
    rng = np.random.default_rng(3)
    prior = float(pool["is_harmful"].mean())
    day = harness.synthetic_day(pool, n, prior, rng, models, correlation=0.8)
    by_views = harness.prior_by_views(pool)
    p = harness.true_posterior(
        day[["signal_control", "signal_candidate"]].to_numpy(),
        day["views"].map(by_views).to_numpy(),
        models,
        0.8,
    )
    h = day["is_harmful"].to_numpy()
    assert (p[day["views"].to_numpy() < 2] == 0).all()  # no harm at 0 or 1 view
    bins = np.digitize(p, [0.05, 0.2, 0.5, 0.8])
    for b in range(5):
        sel = (bins == b) & (day["views"].to_numpy() == 2)
        assert sel.sum() > 1000
        se = math.sqrt(p[sel].mean() * (1 - p[sel].mean()) / sel.sum())
        assert abs(h[sel].mean() - p[sel].mean()) < 4 * se


def test_oracle_budget_is_the_smallest_reaching_the_target():
    rng = np.random.default_rng(1)
    days = []
    for _ in range(3):
        v = rng.geometric(0.05, 2000).astype(float)
        p = rng.beta(0.2, 20, 2000)
        days.append((v, p, v * (rng.random(2000) < p)))
    n = harness.oracle_budget(days, 0.15)
    assert harness.oracle_rse(days, n) <= 0.15 < harness.oracle_rse(days, n - 1.0)
    assert harness.oracle_rse(days, 2 * n) < harness.oracle_rse(days, n)


def test_godambe_joshi_bound_by_hand():
    # sigma^2 = v^2 p (1 - p) = (0, 3, 0.75, 0.0384), sigma = (0, 1.732, 0.866, 0.196);
    # budget 1 among units 1-3 (unit 0 has sigma 0): c = 1 / 2.794..., pi = sigma c;
    # bound = sum (1/pi - 1) sigma^2 = (sum sigma)^2 / 1 - sum sigma^2
    sigma = np.sqrt(np.array([3.0, 0.75, 0.0384]))
    expected = sigma.sum() ** 2 - (sigma**2).sum()
    got = harness.godambe_joshi_variance(VIEWS, P, 1.0)
    assert got == pytest.approx(expected, rel=1e-9)
    # below the HT oracle's expected variance at the same size (it also uses 1 - P)
    pi = harness.optimal_probabilities(VIEWS, P, 1.0)
    assert got < harness.expected_design_variance(pi, VIEWS, P)
