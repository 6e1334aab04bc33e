"""Coverage of the 95% intervals on a small seeded simulation (sim.online_eval_harness).

A hand-made pool where the normal approximation should hold (Poisson views, 5% harmful units,
moderately informative calibrated scores): over 400 bootstrap days the intervals must cover the
true prevalence, precision and prevented views close to 95% of the days (binomial sd ~1.1%), with
either design. A pool where it does not (2% harmful units, geometric views, 100 labels over 2,000
units): the sample's own variance collapses on the days no low-pi harmful unit is drawn (pps
coverage 0.865), the label model's expected variance does not (0.973).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim import online_eval_harness as harness


def _pool(seed: int = 5, n: int = 20_000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    harmful = rng.random(n) < 0.05
    return pd.DataFrame(
        {
            "post_id": np.arange(1, n + 1),
            "day": "2026-10-01",
            "views": rng.poisson(np.where(harmful, 12, 8)),
            "is_harmful": harmful,
        }
    )


@pytest.mark.parametrize("design", ["pps", "calibrated"])
def test_intervals_cover_the_truth_about_95_percent(monkeypatch, design):
    monkeypatch.setattr(harness, "MODELS", {"control": (1.5, 0.0), "candidate": (2.0, 0.0)})
    monkeypatch.setattr(harness, "THRESHOLD", 0.12)  # removals > budget/2: sampled
    out = harness.run(
        _pool(), days=400, seed=3, budget=300, floor=0.01, units_per_day=2000, design=design
    )
    assert abs(out["labels_mean"] - 300) < 3  # expected sample size = the budget
    assert 0.92 <= out["prevalence_coverage"] <= 0.975, out
    for arm in ("control", "candidate"):
        assert 0.90 <= out[f"precision_{arm}_coverage"] <= 0.985, out
        assert 0.90 <= out[f"prevented_{arm}_coverage"] <= 0.985, out
    # the design beats uniform sampling at the same error (scores carry information)
    assert out["uniform_over_budget"] > 1.2, out


def test_calibrated_design_covers_where_the_sample_variance_does_not(monkeypatch):
    rng = np.random.default_rng(5)
    harmful = rng.random(20_000) < 0.02
    pool = pd.DataFrame(
        {
            "post_id": np.arange(1, 20_001),
            "day": "2026-10-01",
            "views": rng.geometric(np.where(harmful, 1 / 6, 1 / 8)) - 1,
            "is_harmful": harmful,
        }
    )
    monkeypatch.setattr(harness, "MODELS", {"control": (2.5, 0.0), "candidate": (3.0, 0.0)})
    kw = {"days": 400, "seed": 3, "budget": 100, "floor": 0.005, "units_per_day": 2000}
    pps = harness.run(pool, design="pps", **kw)
    cal = harness.run(pool, design="calibrated", **kw)
    assert abs(cal["labels_mean"] - 100) < 2, cal
    assert 0.93 <= cal["prevalence_coverage"] <= 0.985, cal
    assert pps["prevalence_coverage"] < cal["prevalence_coverage"] - 0.05, (pps, cal)
    # the same draws judged with the sample's own variance undercover: the variance is the fix
    assert cal["prevalence_coverage_sample_variance"] < 0.9, cal
    # and sampling by the label model lowers the error (0.227 -> 0.109 RSE on this pool)
    assert cal["prevalence_rse"] < pps["prevalence_rse"], (pps, cal)
