"""The online evaluation's sampling and estimators on hand-made samples with known answers."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from vigil.errors import UserError
from vigil.evaluation import estimators as est
from vigil.evaluation.sampling import arm_of, draw, inclusion_probabilities


def test_ht_total_and_poisson_variance_by_hand():
    # y = (10, 0, 4), pi = (0.5, 0.2, 1.0): total 10/0.5 + 0 + 4/1 = 24;
    # variance (1-0.5)/0.25*100 + 0 + 0 = 200; se = 14.142...; 95% CI 24 -+ 1.96*14.142
    got = est.ht_total([10, 0, 4], [0.5, 0.2, 1.0])
    assert got.estimate == pytest.approx(24.0)
    assert got.se == pytest.approx(math.sqrt(200.0))
    assert got.low == pytest.approx(24 - 1.959964 * math.sqrt(200), rel=1e-6)
    assert got.high == pytest.approx(24 + 1.959964 * math.sqrt(200), rel=1e-6)
    assert got.n == 3


def test_share_with_known_denominator_by_hand():
    # harmful views 3 (pi 0.25) and 5 (pi 1) over 100 views in all: (12 + 5) / 100 = 0.17;
    # variance (0.75 / 0.0625) * 9 / 100^2 = 108 / 10000 -> se 0.10392
    got = est.ht_share([3, 5], [0.25, 1.0], 100)
    assert got.estimate == pytest.approx(0.17)
    assert got.se == pytest.approx(math.sqrt(108) / 100)
    assert got.low == 0.0  # 0.17 - 0.2037 clipped to a share
    assert got.high == pytest.approx(0.17 + 1.959964 * math.sqrt(108) / 100, rel=1e-6)


def test_hajek_ratio_by_hand():
    # Removed units (z = 1) with labels y = (1, 0, 1) and pi = (0.5, 0.5, 1):
    # sum y/pi = 2 + 0 + 1 = 3, sum z/pi = 2 + 2 + 1 = 5 -> R = 0.6;
    # residuals y - R z = (0.4, -0.6, 0.4); variance (0.5/0.25)(0.16 + 0.36) + 0 = 1.04, / 25
    got = est.hajek_ratio([1, 0, 1], [1, 1, 1], [0.5, 0.5, 1.0])
    assert got.estimate == pytest.approx(0.6)
    assert got.se == pytest.approx(math.sqrt(1.04 / 25))


def test_census_has_no_variance():
    got = est.ht_total([3.0, 7.0], [1.0, 1.0])
    assert (got.estimate, got.se) == (10.0, 0.0)


def test_estimators_refuse_probabilities_outside_zero_one():
    with pytest.raises(ValueError):
        est.ht_total([1.0], [0.0])
    with pytest.raises(ValueError):
        est.ht_total([1.0], [1.5])


def test_uniform_sample_size_by_hand():
    # y = (1, 1, 0, 0): T = 2, sum y^2 = 2, N = 4; RSE 0.5 -> n = 4 / (1 + 0.25 * 4 / 2) = 8/3;
    # check: variance (N/n - 1) sum y^2 = (1.5 - 1) * 2 = 1 = (0.5 * 2)^2
    assert est.uniform_sample_size_for(0.5, [1, 1, 0, 0]) == pytest.approx(8 / 3)


def _brute_force_c(a, budget, floor):
    """c by scanning the breakpoints of sum max(floor, min(1, c a)) (piecewise linear)."""
    a = np.asarray(a, float)
    points = sorted({floor / x for x in a if x > 0} | {1 / x for x in a if x > 0})
    total = lambda c: np.maximum(floor, np.minimum(1, c * a)).sum()
    prev = 0.0
    for p in points:
        if total(p) >= budget:
            lo, hi = prev, p  # linear between breakpoints
            f_lo, f_hi = total(lo), total(hi)
            return lo + (budget - f_lo) * (hi - lo) / (f_hi - f_lo)
        prev = p
    raise AssertionError("budget beyond reach")


def test_inclusion_probabilities_sum_to_budget_and_match_a_brute_force():
    rng = np.random.default_rng(3)
    scores = rng.beta(0.4, 6, size=(2000, 2))
    views = rng.poisson(12, 2000) + 1
    pi, c = inclusion_probabilities(scores, views, 150, floor=0.003, exponent=0.5)
    assert pi.sum() == pytest.approx(150, rel=1e-9)
    assert pi.min() >= 0.003 and pi.max() <= 1.0
    a = np.sqrt(scores.max(axis=1)) * views
    assert c == pytest.approx(_brute_force_c(a, 150, 0.003), rel=1e-7)
    # rises with the score at equal weight and with the weight at equal score
    order = np.argsort(a)
    assert (np.diff(pi[order]) >= -1e-15).all()


def test_hand_made_inclusion_probabilities():
    # a = sqrt(s) * w = (0.5*4, 1*1, 0.5*1, 0) = (2, 1, 0.5, 0); budget 2, floor 0.1:
    # unit 4 stays at 0.1; c solves min(1, 2c) + c + 0.5c = 1.9 -> c = 0.6 (2c >= 1):
    # pi = (1, 0.6, 0.3, 0.1)
    pi, c = inclusion_probabilities([0.25, 1.0, 0.25, 0.0], [4, 1, 1, 1], 2, floor=0.1)
    assert c == pytest.approx(0.6)
    assert pi == pytest.approx([1.0, 0.6, 0.3, 0.1])


def test_certain_units_and_the_rest_of_the_budget():
    scores = np.array([0.9, 0.95, 0.01, 0.02, 0.03, 0.04])
    certain = scores > 0.5
    # certain_share 0.5 of a budget 4 covers both removals: pi 1; the other 4 units share 2
    pi, _ = inclusion_probabilities(scores, np.ones(6), 4, floor=0.0, certain=certain)
    assert pi[certain] == pytest.approx([1.0, 1.0])
    assert pi.sum() == pytest.approx(4.0)
    # a = sqrt(s): c (0.1 + 0.1414 + 0.1732 + 0.2) = 2
    assert pi[~certain] == pytest.approx(
        2 * np.sqrt(scores[~certain]) / np.sqrt(scores[~certain]).sum()
    )
    # more certain units than half the budget: they share it
    pi, _ = inclusion_probabilities(scores, np.ones(6), 1, floor=0.0, certain=certain)
    assert pi[certain] == pytest.approx([0.25, 0.25])
    assert pi.sum() == pytest.approx(1.0)


def test_budget_beyond_the_units_takes_all_and_an_impossible_floor_is_refused():
    pi, _ = inclusion_probabilities([0.1, 0.2], [1, 1], 5)
    assert list(pi) == [1.0, 1.0]
    with pytest.raises(UserError, match="lower the floor or raise the budget"):
        inclusion_probabilities(np.full(1000, 0.1), np.ones(1000), 5, floor=0.01)


def test_arms_by_a_salted_hash():
    ids = np.arange(1, 2001)
    arms = arm_of(ids, "salt-1")
    for p in (1, 17, 1999):
        u = int.from_bytes(hashlib.sha256(f"salt-1:{p}".encode()).digest()[:8], "big") / 2**64
        assert arms[p - 1] == ("candidate" if u < 0.5 else "control")
    assert 0.45 < (arms == "candidate").mean() < 0.55
    assert (arm_of(ids, "salt-2") != arms).any()


def test_draw_is_seeded_and_follows_pi():
    ids = np.arange(50_000)
    pi = np.where(ids % 2 == 0, 0.1, 0.4)
    a = draw(ids, pi, seed=1, day="2026-10-05")
    assert (a == draw(ids[::-1], pi[::-1], seed=1, day="2026-10-05")[::-1]).all()
    assert not (a == draw(ids, pi, seed=2, day="2026-10-05")).all()
    assert a[::2].mean() == pytest.approx(0.1, abs=0.01)
    assert a[1::2].mean() == pytest.approx(0.4, abs=0.015)


def test_budget_left_after_every_weighted_unit_goes_uniformly_to_the_unweighted():
    # 2 units with a score, 8 at score 0 (the cascade's probability below tau); budget 4, floor
    # 0.1: the weighted units at pi = 1 take 2, the floor would give the others 0.8 only: the 2
    # left are spread over the 8 (0.25 each) instead of c growing to infinity (inf * 0 = NaN)
    scores = np.array([0.5, 0.2, *np.zeros(8)])
    pi, c = inclusion_probabilities(scores, np.ones(10), 4, floor=0.1)
    assert not np.isnan(pi).any()
    assert pi == pytest.approx([1.0, 1.0, *np.full(8, 0.25)])
    assert pi.sum() == pytest.approx(4.0) and c == math.inf
