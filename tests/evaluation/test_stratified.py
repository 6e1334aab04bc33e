"""The stratified design (census / scored / uniform low-score stratum) and its interval, on
hand-computed cases (issue 22)."""

from __future__ import annotations

import math

import pytest

from vigil.evaluation import estimators as est
from vigil.evaluation.sampling import CENSUS, LOW, SCORED, stratified_probabilities

Z = 1.959964


def test_garwood_poisson_bounds_match_the_published_table():
    # Garwood (1936) 95% limits, e.g. Ulm (1990) table: k=0 (0, 3.689), k=1 (0.0253, 5.572),
    # k=2 (0.2422, 7.225), k=5 (1.6235, 11.668)
    for k, (lo, hi) in {
        0: (0, 3.6889),
        1: (0.0253, 5.5716),
        2: (0.2422, 7.2247),
        5: (1.6235, 11.6683),
    }.items():
        got = est.poisson_interval(k)
        assert got[0] == pytest.approx(lo, abs=1e-3)
        assert got[1] == pytest.approx(hi, abs=1e-3)


def test_stratified_probabilities_by_hand():
    # unit 0 is a removal (census: pi = min(1, 0.5 * 3 / 1) = 1); units 1-2 score >= 0.01
    # (scored), units 3-6 below (low). Budget 3: 2 left; low stratum 0.4 * 3 = 1.2 labels over 4
    # units -> 0.3 each; the scored units share 0.8 in proportion to sqrt(score):
    # sqrt(.5) = 0.70711, sqrt(.2) = 0.44721 -> 0.8 * 0.70711 / 1.15432 = 0.49006, 0.30994.
    pi, stratum = stratified_probabilities(
        [0.9, 0.5, 0.2, 0.001, 0.002, 0.003, 0.004],
        [1] * 7,
        budget=3,
        floor=0.0,
        certain=[True] + [False] * 6,
        low_share=0.4,
    )
    assert list(stratum) == [CENSUS, SCORED, SCORED, LOW, LOW, LOW, LOW]
    assert pi == pytest.approx([1.0, 0.49006, 0.30994, 0.3, 0.3, 0.3, 0.3], abs=1e-5)
    assert pi.sum() == pytest.approx(3.0)


def test_unused_scored_budget_goes_to_the_low_stratum():
    # budget 4, no removals: the 2 scored units take at most 2 labels (pi = 1), so the low
    # stratum gets 4 - 2 = 2 labels over 4 units (0.5 each) rather than 0.3 * 4 = 1.2.
    pi, _ = stratified_probabilities([0.5, 0.2, 0.001, 0.002, 0.003, 0.004], [1] * 6, budget=4)
    assert pi == pytest.approx([1, 1, 0.5, 0.5, 0.5, 0.5])


def test_stratified_total_with_no_harm_drawn_in_the_low_stratum_by_hand():
    # census y=5 (pi 1): total 5, variance 0; scored y=(10, 0), pi=(0.5, 0.25): total 20,
    # variance (0.5/0.25) * 100 = 200; low stratum one drawn unit, y=0, pi 0.1: total 0, variance 0,
    # but k = 0 harmful drawn -> Garwood upper 3.6889 units of the mean size 2 at rate 0.1: 73.778.
    # MOVER: L = 25 - sqrt((1.96 sqrt 200)^2) ; U = 25 + sqrt(1.96^2 * 200 + 73.778^2)
    got = est.stratified_total(
        [5, 10, 0, 0], [1, 0.5, 0.25, 0.1], [CENSUS, SCORED, SCORED, LOW], low_pi=0.1, low_unit=2
    )
    assert got.estimate == pytest.approx(25.0)
    assert got.se == pytest.approx(math.sqrt(200))
    assert got.low == pytest.approx(25 - Z * math.sqrt(200), rel=1e-5)
    assert got.high == pytest.approx(25 + math.sqrt(Z**2 * 200 + 73.778**2), rel=1e-4)


def test_stratified_total_with_one_harmful_low_unit_by_hand():
    # low stratum only: y = (6, 0) at pi 0.1: total 60, variance (0.9 / 0.01) * 36 = 3240;
    # normal [60 - 1.96 * 56.921, 60 + 1.96 * 56.921] = [-51.565, 171.565];
    # Poisson k=1: [0.025318, 5.5716] * 6 / 0.1 = [1.519, 334.30]; wider on each side.
    got = est.stratified_total([6, 0], [0.1, 0.1], [LOW, LOW], low_pi=0.1, low_unit=1)
    assert got.estimate == pytest.approx(60.0)
    assert got.se == pytest.approx(math.sqrt(3240))
    assert got.low == pytest.approx(60 - Z * math.sqrt(3240), rel=1e-5)
    assert got.high == pytest.approx(334.30, rel=1e-4)
    share = est.stratified_share([6, 0], [0.1, 0.1], [LOW, LOW], 1000, low_pi=0.1, low_unit=1)
    assert (share.estimate, share.low) == (pytest.approx(0.06), 0.0)  # clipped at 0
    assert share.high == pytest.approx(0.33430, rel=1e-4)


def test_stratified_design_covers_harm_the_models_cannot_see(monkeypatch):
    # 5% harmful units, a quarter of them invisible to both models: the single importance design's
    # normal intervals miss the unseen harm on many days; the stratified design's uniform low
    # stratum with the Poisson-count bound does not (conservative: coverage >= 0.95).
    import numpy as np
    import pandas as pd

    from sim import online_eval_harness as harness

    rng = np.random.default_rng(5)
    harmful = rng.random(20_000) < 0.05
    pool = pd.DataFrame(
        {
            "post_id": np.arange(1, 20_001),
            "day": "2026-10-01",
            "views": rng.poisson(np.where(harmful, 12, 8)),
            "is_harmful": harmful,
        }
    )
    monkeypatch.setattr(harness, "MODELS", {"control": (4.0, 0.25), "candidate": (4.5, 0.25)})
    kw = {"days": 80, "seed": 3, "budget": 300, "floor": 0.002, "units_per_day": 2000}
    pps = harness.run(pool, design="pps", **kw)
    strat = harness.run(pool, design="stratified", low_cut=0.05, **kw)  # scores >= 0.013 here
    assert abs(strat["labels_mean"] - 300) < 5, strat
    assert strat["prevalence_coverage"] >= 0.95, strat
    assert pps["prevalence_coverage"] < strat["prevalence_coverage"] - 0.05, (pps, strat)
    # the price: wider intervals (median width / prevalence 0.43 -> 0.86 on this pool)
    assert strat["prevalence_width_median"] > pps["prevalence_width_median"], (pps, strat)
