"""Coverage of the 95% intervals on a small seeded simulation (sim.online_eval_harness).

A hand-made pool where the normal approximation should hold (Poisson views, 5% harmful units,
moderately informative calibrated scores): over 400 bootstrap days the intervals must cover the
true prevalence, precision and prevented views close to 95% of the days (binomial sd ~1.1%).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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


def test_intervals_cover_the_truth_about_95_percent(monkeypatch):
    monkeypatch.setattr(harness, "MODELS", {"control": (1.5, 0.0), "candidate": (2.0, 0.0)})
    monkeypatch.setattr(harness, "THRESHOLD", 0.12)  # removals > budget/2: sampled
    out = harness.run(_pool(), days=400, seed=3, budget=300, floor=0.01, units_per_day=2000)
    assert abs(out["labels_mean"] - 300) < 3  # expected sample size = the budget
    assert 0.92 <= out["prevalence_coverage"] <= 0.975, out
    for arm in ("control", "candidate"):
        assert 0.90 <= out[f"precision_{arm}_coverage"] <= 0.985, out
        assert 0.90 <= out[f"prevented_{arm}_coverage"] <= 0.985, out
    # the design beats uniform sampling at the same error (scores carry information)
    assert out["uniform_over_budget"] > 1.2, out
