"""The label model: P(harmful | both models' scores, views), learned from past labeled samples.

The online evaluation's default design (``calibrated``) uses one small model for two things:

- **the sample**: pi_i = max(floor, min(1, c * sqrt(q_i) * (views_i + 1))) with q_i the label
  model's probability (the sqrt rule of :mod:`vigil.evaluation.sampling` needs a calibrated
  probability; the models' raw scores are calibrated one by one, not jointly nor given the views);
- **the interval**: the variance of the day's Horvitz-Thompson total is its model expectation
  V = sum_U (1 - pi_i) / pi_i * views_i^2 * q_i over every unit of the day, not the sample's own
  estimate sum_s (1 - pi)/pi^2 y^2. The sample's estimate is near zero on the days none of the
  rare low-pi harmful units is drawn, exactly the days the estimate is low: estimate and variance
  fall together and the normal interval misses (coverage 0.80-0.95). The expectation over the day's
  frame does not depend on which units were drawn.

The model is a logistic regression of the label on (1, logit of each model's score, log(1 +
views), an indicator of "no score" (0 logged, as the cascade does below its threshold)), fitted by penalized iteratively reweighted least squares on the labeled units of the
previous ``history`` days (never the day itself: the variance would again depend on the day's
draw), each weighted 1/pi (a design-weighted fit: it describes the whole population, not the
over-sampled high scores). The penalty ``ridge`` * ||b - b0||^2 pulls the coefficients toward the
scores' own calibration b0 = (0, 1/k, ..., 1/k, 0, 0) (k models), which keeps the fit finite when the
labels separate perfectly (published-quality models, whose removals are all harmful). The point
estimate stays the design-unbiased Horvitz-Thompson total whatever the model: a wrong model
costs efficiency and interval accuracy, never bias.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vigil.errors import UserError

CLIP = 1e-6  # scores are clipped to [CLIP, 1 - CLIP] before the logit
MIN_LABELS = 50  # fewer labeled units in the history: no model (fall back to the scores)


def features(scores, views, reports=None) -> np.ndarray:
    """Design matrix: 1, logit of each model's score, log(1 + views), an indicator of "no
    score" (every model's score at or below :data:`CLIP`: the cascade logs 0 for the posts below
    its threshold tau, a block of identical values whose harm rate the logit line cannot give),
    and with ``reports`` (the unit's user reports of the day) log(1 + reports), a signal that
    does not come from the models, so it still sees the harm they miss, and log(1 + views) for the
    units nobody reported (their own views slope)."""
    s = np.asarray(scores, dtype=float)
    s = s[:, None] if s.ndim == 1 else s
    v = np.asarray(views, dtype=float)
    if len(s) != len(v):
        raise ValueError(f"{len(s)} score rows but {len(v)} view counts")
    p = np.clip(s, CLIP, 1 - CLIP)
    unscored = (s <= CLIP).all(axis=1).astype(float)
    columns = [np.ones(len(v)), np.log(p / (1 - p)), np.log1p(v), unscored]
    if reports is not None:
        r = np.asarray(reports, dtype=float)
        if len(r) != len(v) or np.isnan(r).any() or (r < 0).any():
            raise UserError(
                "user report counts must be one non-negative number per unit: count each post's "
                "report events of the day (0 when none)."
            )
        # a harmful post's viewers report it, so its chance of no report falls with its views:
        # unreported views are evidence of benign content, a slope of their own
        columns += [np.log1p(r), np.log1p(v) * (r == 0)]
    return np.column_stack(columns)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))


@dataclass(frozen=True)
class LabelModel:
    coef: np.ndarray  # intercept, a slope per model's logit, log(1 + views), the no-score block
    labels: int  # labeled units it was fitted on
    harmful: int  # of which harmful
    reports: bool = False  # two last coefficients: log(1 + reports), unreported log(1 + views)

    def predict(self, scores, views, reports=None) -> np.ndarray:
        if self.reports and reports is None:
            raise ValueError("this label model uses user reports: pass the units' report counts")
        return _sigmoid(features(scores, views, reports if self.reports else None) @ self.coef)

    def as_dict(self) -> dict:
        return {
            "coef": [float(c) for c in self.coef],
            "labels": self.labels,
            "harmful": self.harmful,
            "reports": self.reports,
        }


def prior_coef(models: int, reports: bool = False) -> np.ndarray:
    """The scores' own calibration: logit q = mean of the models' logits (reports: slope 0)."""
    return np.concatenate([[0.0], np.full(models, 1.0 / models), [0.0, 0.0], [0.0, 0.0] * reports])


def fit(
    scores, views, labels, pi, ridge: float = 1.0, iterations: int = 100, reports=None
) -> LabelModel | None:
    """Penalized, 1/pi-weighted logistic regression (Newton with step halving); None when fewer than
    :data:`MIN_LABELS` labeled units (the caller falls back to the scores). ``reports``: the
    labeled units' user reports (adds the log(1 + reports) term)."""
    x = features(scores, views, reports)
    h = np.asarray(labels, dtype=float)
    pi = np.asarray(pi, dtype=float)
    if len(h) != len(x) or len(pi) != len(x):
        raise ValueError("scores, views, labels and pi must have one row per labeled unit")
    if ridge <= 0:
        raise UserError(f"label-model ridge {ridge} must be > 0: pass e.g. --ridge 1.")
    if len(h) < MIN_LABELS:
        return None
    if ((pi <= 0) | (pi > 1)).any():
        raise ValueError("inclusion probabilities must be in (0, 1]")
    w = 1.0 / pi
    b0 = prior_coef(x.shape[1] - 3 - 2 * (reports is not None), reports is not None)

    def objective(b: np.ndarray) -> float:  # penalized weighted log-likelihood
        z = x @ b
        return float((w * (h * z - np.logaddexp(0.0, z))).sum() - ridge / 2 * ((b - b0) ** 2).sum())

    b = b0.copy()
    penalty = ridge * np.eye(len(b))
    for _ in range(iterations):
        p = _sigmoid(x @ b)
        hessian = x.T @ (x * (w * p * (1 - p))[:, None]) + penalty
        step = np.linalg.solve(hessian, x.T @ (w * (h - p)) - ridge * (b - b0))
        # Newton with step halving: far from the optimum (scores of 0 give p ~ 1e-6 and a flat
        # Hessian) a full step overshoots by orders of magnitude.
        t, now = 1.0, objective(b)
        while objective(b + t * step) < now and t > 1e-10:
            t /= 2
        b = b + t * step
        if np.abs(t * step).max() < 1e-10:
            break
    return LabelModel(b, len(h), int(h.sum()), reports is not None)


def probabilities(model: LabelModel | None, scores, views, reports=None) -> np.ndarray:
    """q per unit: the label model's, or the highest score when there is no model yet."""
    if model is not None:
        return model.predict(scores, views, reports)
    s = np.asarray(scores, dtype=float)
    return s.max(axis=1) if s.ndim == 2 else s


def error_rates(
    label_error: float, double=None, benign_double=None
) -> tuple[np.ndarray, np.ndarray]:
    """(P(harmful label | benign), P(harmful label | harmful)) per unit when each verdict is wrong
    with probability e: (e, 1 - e) for one review; where ``double`` (the unit's harmful verdict is
    reviewed again, and a third time on disagreement: the majority wins), a benign unit ends
    harmful only if the first verdict and then one of the next two err, e^2 (2 - e), and a harmful
    unit stays harmful with probability (1 - e)^2 (1 + e). ``benign_double``: the unit's BENIGN
    first verdict is reviewed again the same way (a removal's, :mod:`double_review`). With p the
    probability that one verdict says harmful (e for a benign unit, 1 - e for a harmful one):
    P(harmful label) = p (double ? p + (1 - p) p : 1) + (1 - p) (benign_double ? p^2 : 0)."""
    e = _checked_error(label_error)
    twice = np.asarray(double if double is not None else False, dtype=bool)
    back = np.asarray(benign_double if benign_double is not None else False, dtype=bool)

    def harmful_label(p: float) -> np.ndarray:
        kept = np.where(twice, p + (1 - p) * p, 1.0)
        return p * kept + (1 - p) * np.where(back, p * p, 0.0)

    return harmful_label(e), harmful_label(1 - e)


def expected_variance(pi, views, q, label_error: float = 0.0, double=None) -> float:
    """E[sum_U (1 - pi)/pi y^2] with y = views * harmful, harmful ~ Bernoulli(q): the design
    variance of the HT total of harmful views expected under the label model.

    With ``label_error`` e > 0 (the moderators call a post the wrong way with probability e) the
    total is of the corrected labels views * (label - fpr) / (tpr - fpr) (:func:`corrected_labels`,
    :func:`error_rates`; fpr = e, tpr = 1 - e for a single review), whose second moment is
    views^2 (p (1 - fpr)^2 + (1 - p) fpr^2) / (tpr - fpr)^2 with p = fpr + (tpr - fpr) q the
    probability of a harmful label. ``double``: the units whose harmful label is double-reviewed."""
    pi, v, q = (np.asarray(a, dtype=float) for a in (pi, views, q))
    if ((pi <= 0) | (pi > 1)).any():
        raise ValueError("inclusion probabilities must be in (0, 1]")
    fpr, tpr = error_rates(label_error, double)
    p = fpr + (tpr - fpr) * q
    second = (p * (1 - fpr) ** 2 + (1 - p) * fpr**2) / (tpr - fpr) ** 2
    return float(((1 - pi) / pi * v**2 * second).sum())


def corrected_labels(
    labels, label_error: float = 0.0, double=None, benign_double=None
) -> np.ndarray:
    """(label - fpr) / (tpr - fpr): unbiased for the true 0/1 harm when a label is harmful with
    probability fpr for a benign unit and tpr for a harmful one (Rogan & Gladen 1978, per unit;
    :func:`error_rates`: (e, 1 - e) for one review, so (label - e) / (1 - 2e)); the labels
    themselves when e = 0."""
    fpr, tpr = error_rates(label_error, double, benign_double)
    return (np.asarray(labels, dtype=float) - fpr) / (tpr - fpr)


def _checked_error(e: float) -> float:
    if not 0 <= e < 0.5:
        raise UserError(
            f"label error rate {e} must be within [0, 0.5): pass the moderators' measured "
            "error rate, e.g. --label-error 0.01."
        )
    return float(e)
