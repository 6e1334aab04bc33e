"""Calibration and the decision rule.

- Calibration (isotonic or Platt) is fitted on the validation split, weighted by each label's
  ``sampling_weight``: the labeled set is ~50% harmful but the queues over-sample harmful posts,
  so weighting maps scores to probabilities at the true prevalence.
- Removal threshold: the lowest calibrated score t such that the posts with score >= t have a
  precision whose lower confidence bound is >= the target (0.95). Default bound
  (``threshold_method="bootstrap"``): a stratified bootstrap (strata = labeling queues, i.e.
  distinct sampling weights) of the Horvitz-Thompson precision sum(w y) / sum(w), 5% quantile.
  Alternative (``"wilson"``): Wilson with the weighted proportion and Kish's effective sample size
  n_eff = (sum w)^2 / sum(w^2) in place of n (textbook Wilson with unit weights); it collapses
  when a single heavy-weight audit label enters the removed set, even a harmful one.
- Review band: scores in [review_band x threshold, threshold) go to human review, ordered by
  expected harmful views = p x predicted remaining views.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def wilson_lower_bound(successes: float, n: float, z: float = 1.645) -> float:
    """Wilson score interval's lower end for ``successes`` out of ``n`` (n may be fractional)."""
    if n <= 0:
        return 0.0
    p = successes / n
    denom = 1.0 + z * z / n
    centre = p + z * z / (2.0 * n)
    margin = z * math.sqrt(max(p * (1.0 - p) / n + z * z / (4.0 * n * n), 0.0))
    return max((centre - margin) / denom, 0.0)


def weighted_wilson_lower_bound(y, w, z: float = 1.645) -> float:
    y = np.asarray(y, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if len(w) == 0 or w.sum() <= 0:
        return 0.0
    p = float((w * y).sum() / w.sum())
    n_eff = float(w.sum() ** 2 / (w**2).sum())
    return wilson_lower_bound(p * n_eff, n_eff, z)


def removal_threshold(scores, y, w=None, target: float = 0.95, z: float = 1.645) -> dict:
    """Lowest score whose removed set (score >= t) has precision lower bound >= target.

    Returns {"threshold", "precision", "lower_bound", "n_removed"}; threshold is +inf when no
    score qualifies (nothing is removed automatically).
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.ones_like(s) if w is None else np.asarray(w, dtype=np.float64)
    order = np.argsort(-s, kind="stable")
    s, y, w = s[order], y[order], w[order]
    cw, cwy, cw2 = np.cumsum(w), np.cumsum(w * y), np.cumsum(w * w)
    best = {"threshold": math.inf, "precision": None, "lower_bound": None, "n_removed": 0}
    # Candidate thresholds are the distinct scores; the removed set ends at each tie group's end.
    last_of_group = np.r_[s[1:] != s[:-1], True]
    for i in np.flatnonzero(last_of_group):
        p = cwy[i] / cw[i]
        n_eff = cw[i] ** 2 / cw2[i]
        lb = wilson_lower_bound(p * n_eff, n_eff, z)
        if lb >= target:  # scores descend, so the last qualifying group is the lowest threshold
            best = {
                "threshold": float(s[i]),
                "precision": float(p),
                "lower_bound": float(lb),
                "n_removed": int(i + 1),
            }
    return best


def bootstrap_removal_threshold(
    scores, y, w, target: float = 0.95, level: float = 0.95, n_boot: int = 1000, seed: int = 0
) -> dict:
    """Lowest score whose removed set has a stratified-bootstrap lower bound on precision >= target.

    Precision of the removed set at the true prevalence is the Horvitz-Thompson ratio
    sum(w y) / sum(w) over labels with score >= t. Labels come from queues with known inclusion
    probabilities; every distinct ``w`` is one stratum. Each replicate resamples every stratum with
    replacement at its own size (so the number of labels per queue is fixed, as in the design) and
    recomputes the ratio at every candidate threshold; the bound is the (1 - level) quantile over
    replicates. Unlike Wilson with Kish's n, a heavy-weight *harmful* label does not shrink the
    effective sample; the limit: a stratum with no label above t adds no variance there.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    best = {"threshold": math.inf, "precision": None, "lower_bound": None, "n_removed": 0}
    if not len(s):
        return best
    order = np.argsort(-s, kind="stable")
    s, y, w = s[order], y[order], w[order]
    rng = np.random.default_rng(seed)
    counts = np.zeros((n_boot, len(s)))
    for value in np.unique(w):
        idx = np.flatnonzero(w == value)
        draws = rng.integers(0, len(idx), size=(n_boot, len(idx)))
        for b in range(n_boot):
            counts[b] += np.bincount(idx[draws[b]], minlength=len(s))
    cw = np.cumsum(counts * w, axis=1)
    cwy = np.cumsum(counts * w * y, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = np.where(
            cw > 0, cwy / np.where(cw > 0, cw, 1.0), 1.0
        )  # empty replicate set: vacuous
    lower = np.quantile(prec, 1.0 - level, axis=0)
    point = np.cumsum(w * y) / np.cumsum(w)
    last_of_group = np.r_[s[1:] != s[:-1], True]
    for i in np.flatnonzero(last_of_group):
        if lower[i] >= target:
            best = {
                "threshold": float(s[i]),
                "precision": float(point[i]),
                "lower_bound": float(lower[i]),
                "n_removed": int(i + 1),
            }
    return best


def isotonic_removal_threshold(scores, y, w, target: float = 0.95) -> dict:
    """Lowest score whose *local* precision, the weighted isotonic (PAV) fit of y on the score,
    is >= target: every post removed then sits where harmful posts make up >= target of the
    labels at that score, and the removed set's precision is >= target too.

    Unlike a lower bound on the cumulative precision, one benign label high in the ranking is
    pooled with the harmful labels around it instead of capping the threshold above it; a run of
    benign labels still pulls the fit down. A point estimate: ``precision`` is the removed set's
    weighted precision, ``lower_bound`` is None.
    """
    from sklearn.isotonic import IsotonicRegression

    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    best = {"threshold": math.inf, "precision": None, "lower_bound": None, "n_removed": 0}
    if not len(s):
        return best
    fit = IsotonicRegression(increasing=True).fit(s, y, sample_weight=w).predict(s)
    ok = fit >= target
    if ok.any():
        t = float(s[ok].min())
        m = s >= t
        best = {
            "threshold": t,
            "precision": float((w[m] * y[m]).sum() / w[m].sum()),
            "lower_bound": None,
            "n_removed": int(m.sum()),
        }
    return best


class Calibrator:
    """Monotone map from raw model scores to probabilities at the true prevalence."""

    def __init__(self, method: str = "isotonic"):
        if method not in ("isotonic", "platt"):
            raise ValueError(f"calibration method {method!r}: use 'isotonic' or 'platt'")
        self.method = method
        self.model = None

    @staticmethod
    def _logit(p):
        p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p)).reshape(-1, 1)

    def fit(self, scores, y, w=None) -> Calibrator:
        scores = np.asarray(scores, dtype=np.float64)
        y = np.asarray(y).astype(int)
        if self.method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            self.model = IsotonicRegression(
                y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True
            )
            self.model.fit(scores, y, sample_weight=w)
        else:
            from sklearn.linear_model import LogisticRegression

            self.model = LogisticRegression(C=1e6, max_iter=1000)
            self.model.fit(self._logit(scores), y, sample_weight=w)
        return self

    def transform(self, scores) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float64)
        if self.method == "isotonic":
            # Isotonic regression is a step function; a tiny share of the raw score breaks its
            # ties so the order of posts (and hence thresholds) stays as fine as the model's.
            out = self.model.predict(scores) * (1 - 1e-6) + 1e-6 * scores
        else:
            out = self.model.predict_proba(self._logit(scores))[:, 1]
        return np.clip(out, 0.0, 1.0)


class RemainingViews:
    """Predicted views a post will still get after a scoring time, from its views so far.

    Per scoring offset, a least-squares line of log1p(remaining) on log1p(views so far),
    fitted on the training split (remaining = eventual views - views at scoring time).
    """

    def __init__(self):
        self.coef: dict[float, tuple[float, float]] = {}

    def fit(self, offsets, views_now, views_final) -> RemainingViews:
        offsets = np.asarray(offsets, dtype=np.float64)
        x = np.log1p(np.nan_to_num(np.asarray(views_now, dtype=np.float64)))
        final = np.nan_to_num(np.asarray(views_final, dtype=np.float64))
        r = np.log1p(np.maximum(final - np.expm1(x), 0.0))
        for off in np.unique(offsets):
            m = offsets == off
            if m.sum() >= 2 and np.ptp(x[m]) > 0:
                slope, intercept = np.polyfit(x[m], r[m], 1)
            else:
                slope, intercept = 0.0, float(r[m].mean()) if m.any() else 0.0
            self.coef[float(off)] = (float(slope), float(intercept))
        return self

    def predict(self, offsets, views_now) -> np.ndarray:
        offsets = np.asarray(offsets, dtype=np.float64)
        x = np.log1p(np.nan_to_num(np.asarray(views_now, dtype=np.float64)))
        known = np.array(sorted(self.coef)) if self.coef else np.array([0.0])
        out = np.zeros_like(x)
        for i, (off, xi) in enumerate(zip(offsets, x)):
            key = float(known[np.argmin(np.abs(known - off))])
            slope, intercept = self.coef.get(key, (0.0, 0.0))
            out[i] = np.expm1(max(slope * xi + intercept, 0.0))
        return out


def decide(probabilities, remove_threshold: float, review_band: float) -> np.ndarray:
    """'remove' / 'review' / 'allow' for calibrated probabilities."""
    p = np.asarray(probabilities, dtype=np.float64)
    review_low = remove_threshold * review_band if math.isfinite(remove_threshold) else 1.0
    out = np.full(p.shape, "allow", dtype=object)
    out[p >= review_low] = "review"
    out[p >= remove_threshold] = "remove"
    return out


def review_queue(frame: pd.DataFrame, probability_col: str, remaining_col: str) -> pd.DataFrame:
    """Review rows ordered by expected harmful views = p x predicted remaining views."""
    q = frame.copy()
    q["expected_harmful_views"] = q[probability_col] * q[remaining_col]
    return q.sort_values("expected_harmful_views", ascending=False, kind="stable")
