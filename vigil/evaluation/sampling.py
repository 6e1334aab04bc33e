"""Who gets a label: arms by a hash of the post id, and the day's importance sample.

Inclusion probability of unit i (a post's impressions on one day):

    pi_i = max(floor, min(1, c * f(s_i) * w_i))

``s_i`` the highest calibrated score the models gave the post (control and candidate), ``f`` =
``s ** exponent`` (default 0.5: for the harmful-views total y_i = w_i h_i, the Poisson design that
minimizes the variance at a fixed expected size has pi_i proportional to sqrt(E[y_i^2]) =
w_i sqrt(P(h_i)), so sqrt of a calibrated probability), ``w_i`` the impression weight (views + 1,
so a post removed before anyone saw it can still be drawn above the floor), ``floor`` a uniform
floor (every unit has pi >= floor, which keeps the estimates unbiased when the scores are wrong).
``c`` is solved so that sum pi_i = the label budget: the expected sample size is the budget.

Units are drawn independently (Poisson sampling): one uniform per unit from a generator keyed by
(seed, day), given in post-id order, so a rerun of the same day's frame draws the same posts.
"""

from __future__ import annotations

import hashlib

import numpy as np

from vigil.errors import UserError

ARMS = ("control", "candidate")


def arm_of(post_ids, salt: str, candidate_share: float = 0.5) -> np.ndarray:
    """'control' or 'candidate' per post: a SHA-256 of ``salt:post_id`` mapped to [0, 1)."""
    ids = np.asarray(post_ids, dtype=np.int64)
    u = np.array(
        [
            int.from_bytes(hashlib.sha256(f"{salt}:{int(p)}".encode()).digest()[:8], "big") / 2**64
            for p in ids
        ],
        dtype=float,
    )
    return np.where(u < candidate_share, "candidate", "control")


def inclusion_probabilities(
    scores,
    weights,
    budget: float,
    floor: float = 0.002,
    exponent: float = 0.5,
    score_floor: float = 0.0,
    certain=None,
    certain_share: float = 0.5,
) -> tuple[np.ndarray, float]:
    """(pi per unit, c) with sum(pi) == budget (to 1e-9 relative), or all ones when the budget
    covers every unit.

    ``scores``: one row per unit (one column per model, or a vector): the highest is used.
    ``certain``: a mask of units taken with certainty (the removals: their precision needs them
    all); they get pi = min(1, certain_share * budget / their count) and the rest of the budget
    goes to the other units by the formula.
    """
    s = np.asarray(scores, dtype=float)
    s = s.max(axis=1) if s.ndim == 2 else s
    w = np.asarray(weights, dtype=float)
    n = len(s)
    if n == 0:
        return np.zeros(0), 0.0
    if np.isnan(s).any() or np.isnan(w).any() or (w < 0).any():
        raise UserError(
            "scores or impression weights contain NaN or negative values: score every post and "
            "count views as non-negative integers before sampling."
        )
    if not 0 <= floor <= 1:
        raise UserError(f"sampling floor {floor} must be within [0, 1]: pass e.g. --floor 0.002.")
    if budget >= n:
        return np.ones(n), float("inf")
    pi = np.zeros(n)
    take = np.zeros(n, dtype=bool) if certain is None else np.asarray(certain, dtype=bool)
    if take.any():
        pi[take] = min(1.0, certain_share * budget / take.sum())
    rest = ~take
    left = budget - pi[take].sum()
    if floor * rest.sum() > left:
        raise UserError(
            f"the uniform floor {floor} over {int(rest.sum())} units already asks "
            f"{floor * rest.sum():.0f} labels, over the budget of {left:g} left: lower the floor or "
            "raise the budget."
        )
    pi[rest], c = _solve(np.clip(s[rest], score_floor, 1.0) ** exponent * w[rest], left, floor)
    return pi, c


def _solve(a: np.ndarray, budget: float, floor: float) -> tuple[np.ndarray, float]:
    """max(floor, min(1, c a)) with c such that the sum is ``budget`` (bisection: the sum is
    continuous and non-decreasing in c)."""
    if len(a) == 0:
        return a, 0.0
    if budget >= len(a):
        return np.ones(len(a)), float("inf")
    if a.sum() == 0:  # no signal at all: uniform
        return np.full(len(a), budget / len(a)), 0.0

    def expected(c: float) -> float:
        return float(np.maximum(floor, np.minimum(1.0, c * a)).sum())

    lo, hi = 0.0, 1.0
    while expected(hi) < budget:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if expected(mid) < budget:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * hi:
            break
    return np.maximum(floor, np.minimum(1.0, hi * a)), hi


def draw(post_ids, pi, seed: int, day: str) -> np.ndarray:
    """Poisson sample: a boolean mask, unit i drawn when its uniform < pi_i."""
    ids = np.asarray(post_ids, dtype=np.int64)
    key = int.from_bytes(hashlib.sha256(f"{seed}:{day}".encode()).digest()[:8], "big")
    order = np.argsort(ids, kind="stable")
    u = np.empty(len(ids))
    u[order] = np.random.default_rng(key).random(len(ids))
    return u < np.asarray(pi, dtype=float)
