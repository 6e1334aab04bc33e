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


def ht_share_expected_variance(y, pi, denominator: float, variance: float) -> Estimate:
    """The HT share of :func:`ht_share` with a GIVEN variance of the total (the label model's
    expected design variance, :func:`vigil.evaluation.calibration.expected_variance`) instead of
    the sample's own estimate: interval share +- z sqrt(variance) / denominator, clipped to [0, 1].
    """
    t = ht_total(y, pi)
    if denominator <= 0:
        return Estimate(math.nan, math.nan, math.nan, math.nan, t.n)
    if not variance >= 0:
        raise ValueError(f"variance {variance} must be >= 0")
    se = math.sqrt(variance) / denominator
    return _interval(t.estimate / denominator, se, t.n, (0.0, 1.0))


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


def ratio_expected_variance(ratio: Estimate, z, pi, q) -> Estimate:
    """The Hajek ratio ``ratio`` (e.g. an arm's precision, from :func:`hajek_ratio`) with the
    variance its design is EXPECTED to have under a label model: over every unit of the
    population (drawn or not) with z_i (0/1: a removal), inclusion probability pi_i and
    P(harmful) q_i, the linearized variance sum z (1 - pi)/pi E[(h - R)^2] / (sum z)^2 with
    E[(h - R)^2] = q (1 - 2R) + R^2 (the denominator sum z is known: the day's removals). As for
    prevalence, the sample's own variance collapses on the days few benign removals are drawn."""
    z, pi, q = (np.asarray(a, dtype=float) for a in (z, pi, q))
    if math.isnan(ratio.estimate) or z.sum() <= 0:
        return ratio
    r = ratio.estimate
    var = float((z * (1 - pi) / pi * (q * (1 - 2 * r) + r * r)).sum()) / float(z.sum()) ** 2
    return _interval(r, math.sqrt(max(var, 0.0)), ratio.n, (0.0, 1.0))


def total_expected_variance(total: Estimate, values, pi, q) -> Estimate:
    """The HT total ``total`` of values x harmful (e.g. harmful views prevented, from
    :func:`ht_total`) with its expected design variance under a label model: sum over every unit
    (drawn or not) of (1 - pi)/pi values^2 q."""
    v, pi, q = (np.asarray(a, dtype=float) for a in (values, pi, q))
    var = float(((1 - pi) / pi * v**2 * q).sum())
    return _interval(total.estimate, math.sqrt(var), total.n)


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


def poisson_interval(k: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) interval for a Poisson mean after observing ``k`` events: the lower bound
    l solves P(X >= k | l) = a/2, the upper u solves P(X <= k | u) = a/2 (k = 0: l = 0,
    u = -log(a/2) = 3.689 at 95%)."""
    a = (1 - level) / 2

    def cdf(j: int, mu: float) -> float:  # P(X <= j | mu)
        term = total = math.exp(-mu)
        for i in range(1, j + 1):
            term *= mu / i
            total += term
        return total

    def solve(f, lo: float, hi: float) -> float:  # f decreasing in mu, root of f(mu) = 0
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if f(mid) > 0 else (lo, mid)
        return (lo + hi) / 2

    top = k + 10 * math.sqrt(k + 1) + 10
    upper = solve(lambda mu: cdf(k, mu) - a, 0.0, top)
    lower = 0.0 if k == 0 else solve(lambda mu: cdf(k - 1, mu) - (1 - a), 0.0, top)
    return lower, upper


def stratified_total(y, pi, stratum, low_pi: float, low_unit: float, low: int = 2) -> Estimate:
    """HT total of a stratified Poisson sample, with a skew-aware 95% interval.

    Point estimate and variance: the per-stratum HT totals and their Poisson-sampling variances
    sum_s (1 - pi)/pi^2 y^2, added over strata (strata are sampled independently). Interval:
    per stratum, the normal one; in the UNIFORM low-score stratum (label ``low``, inclusion
    probability ``low_pi``) also a Poisson-count one: its k drawn units with y > 0 are a Poisson
    count (rate low_pi times the stratum's positive units), Garwood bounds [l, u] times the mean
    drawn positive y (``low_unit`` when k = 0: the stratum's mean y for an average unit) over
    low_pi; the stratum's interval is the wider of the two on each side. Strata are combined by
    MOVER (Zou & Donner 2008): L = T - sqrt(sum (T_h - l_h)^2), U = T + sqrt(sum (u_h - T_h)^2),
    which is the normal interval when every stratum's is.
    """
    y, pi = _checked(y, pi)
    stratum = np.asarray(stratum)
    total, var, down, up = 0.0, 0.0, 0.0, 0.0
    labels = set(stratum.tolist()) | {low}
    for h in sorted(labels):
        mask = stratum == h
        yh, ph = y[mask], pi[mask]
        t = float((yh / ph).sum())
        v = float(((1 - ph) / ph**2 * yh**2).sum())
        lo_h, hi_h = t - Z95 * math.sqrt(v), t + Z95 * math.sqrt(v)
        if h == low and low_pi > 0:
            k = int((yh > 0).sum())
            size = float(yh[yh > 0].mean()) if k else float(low_unit)
            pl, pu = poisson_interval(k)
            lo_h, hi_h = min(lo_h, pl * size / low_pi), max(hi_h, pu * size / low_pi)
        total, var = total + t, var + v
        down, up = down + (t - lo_h) ** 2, up + (hi_h - t) ** 2
    return Estimate(total, math.sqrt(var), total - math.sqrt(down), total + math.sqrt(up), len(y))


def stratified_share(
    y, pi, stratum, denominator: float, low_pi: float, low_unit: float, low: int = 2
) -> Estimate:
    """:func:`stratified_total` divided by a known ``denominator`` (clipped to [0, 1])."""
    t = stratified_total(y, pi, stratum, low_pi, low_unit, low)
    if denominator <= 0:
        return Estimate(math.nan, math.nan, math.nan, math.nan, t.n)
    d = denominator
    return Estimate(t.estimate / d, t.se / d, max(t.low / d, 0.0), min(t.high / d, 1.0), t.n)
