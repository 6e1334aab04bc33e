"""Horvitz-Thompson and Hajek estimators for a Poisson sample, with normal 95% intervals.

For a sample s drawn unit by unit with inclusion probabilities pi_i (Poisson sampling):

- total T = sum_U y_i: HT estimate sum_s y_i / pi_i; its unbiased variance estimator under Poisson
  sampling is sum_s (1 - pi_i) / pi_i^2 * y_i^2 (Sarndal, Swensson & Wretman 1992, eq. 3.4.x:
  the joint probabilities are pi_i pi_j, so only the diagonal terms remain);
- a share with a KNOWN denominator (prevalence = harmful views / all views, every view counted by
  the platform): the HT total divided by the denominator, variance divided by its square;
- a ratio R = sum y / sum z with both totals estimated (precision of an arm's removals = harmful
  removed / removed): Hajek estimate sum_s y/pi / sum_s z/pi, Taylor-linearized variance
  sum_s (1 - pi_i) / pi_i^2 * (y_i - R z_i)^2 / (sum_s z_i/pi_i)^2.

Intervals are normal: estimate +- z_{0.975} * standard error (shares clipped to [0, 1]).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    estimate: float
    se: float
    low: float
    high: float
    n: int  # sampled units that entered the estimate

    @property
    def rse(self) -> float:
        return self.se / self.estimate if self.estimate else math.inf

    def as_dict(self) -> dict:
        return {**asdict(self), "rse": self.rse if math.isfinite(self.rse) else None}


def _interval(est: float, se: float, n: int, bounds=(-math.inf, math.inf)) -> Estimate:
    low, high = est - Z95 * se, est + Z95 * se
    return Estimate(est, se, max(low, bounds[0]), min(high, bounds[1]), n)


def _checked(y, pi) -> tuple[np.ndarray, np.ndarray]:
    y, pi = np.asarray(y, dtype=float), np.asarray(pi, dtype=float)
    if y.shape != pi.shape:
        raise ValueError(f"y has shape {y.shape}, pi {pi.shape}")
    if ((pi <= 0) | (pi > 1)).any():
        raise ValueError("inclusion probabilities must be in (0, 1]")
    return y, pi


def ht_total(y, pi) -> Estimate:
    """HT estimate of sum_U y over the sampled units' ``y`` and ``pi``."""
    y, pi = _checked(y, pi)
    total = float((y / pi).sum())
    var = float(((1 - pi) / pi**2 * y**2).sum())
    return _interval(total, math.sqrt(var), len(y))


def ht_share(y, pi, denominator: float) -> Estimate:
    """sum_U y / ``denominator`` (a known total), e.g. harmful views / all views."""
    t = ht_total(y, pi)
    if denominator <= 0:
        return Estimate(math.nan, math.nan, math.nan, math.nan, t.n)
    return _interval(t.estimate / denominator, t.se / denominator, t.n, (0.0, 1.0))


def hajek_ratio(y, z, pi) -> Estimate:
    """sum_U y / sum_U z with both totals estimated from the sample (linearized variance)."""
    y, pi = _checked(y, pi)
    z = np.asarray(z, dtype=float)
    zhat = float((z / pi).sum())
    n = int((z != 0).sum())
    if zhat <= 0:
        return Estimate(math.nan, math.nan, math.nan, math.nan, n)
    r = float((y / pi).sum()) / zhat
    var = float(((1 - pi) / pi**2 * (y - r * z) ** 2).sum()) / zhat**2
    return _interval(r, math.sqrt(var), n, (0.0, 1.0))


def uniform_sample_size_for(rse: float, prevalence_views: np.ndarray) -> float:
    """Expected size of a UNIFORM Poisson sample (pi = n/N for all) whose HT estimate of the
    harmful-views total has relative standard error ``rse``, computed from the population's y.

    Var = sum (1 - n/N) / (n/N) y^2 = (N/n - 1) sum y^2; solve (N/n - 1) sum y^2 = (rse * T)^2.
    """
    y = np.asarray(prevalence_views, dtype=float)
    n_units, total, sq = len(y), float(y.sum()), float((y**2).sum())
    if total <= 0:
        return math.nan
    return n_units / (1.0 + (rse * total) ** 2 / sq)
