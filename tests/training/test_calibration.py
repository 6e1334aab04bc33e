"""Calibration is monotone and matches the weighted prevalence."""

import numpy as np
import pytest

from training.calibrate import Calibrator, RemainingViews


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibration_is_monotone(method):
    rng = np.random.default_rng(0)
    s = rng.random(2000)
    y = (rng.random(2000) < s**2).astype(int)
    w = np.where(y == 1, 1.0, 10.0)
    cal = Calibrator(method).fit(s, y, w)
    grid = np.linspace(0, 1, 501)
    out = cal.transform(grid)
    assert np.all(np.diff(out) >= 0)
    assert out.min() >= 0 and out.max() <= 1


def test_isotonic_preserves_weighted_prevalence():
    # isotonic regression's fitted values have the same weighted mean as the labels
    rng = np.random.default_rng(1)
    s = rng.random(1000)
    y = (rng.random(1000) < s).astype(int)
    w = np.where(y == 1, 1.0, 20.0)
    cal = Calibrator("isotonic").fit(s, y, w)
    assert np.average(cal.transform(s), weights=w) == pytest.approx(
        np.average(y, weights=w), abs=1e-3
    )


def test_remaining_views_line_per_offset():
    # remaining = final - now; at offset 1 h: now (0, 9, 99) -> final (10, 99, 999) so
    # log1p(remaining) = (log 11, log 91, log 901) vs log1p(now) = (0, log 10, log 100)
    rv = RemainingViews().fit([1, 1, 1], [0, 9, 99], [10, 99, 999])
    slope, intercept = rv.coef[1.0]
    x = np.log1p([0, 9, 99])
    r = np.log1p([10, 90, 900])
    expected = np.polyfit(x, r, 1)
    assert (slope, intercept) == pytest.approx(tuple(expected))
    assert rv.predict([1.0], [0])[0] == pytest.approx(np.expm1(intercept))
