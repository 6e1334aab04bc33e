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


def reported(reports, at_least: int | None) -> np.ndarray:
    """Units with at least ``at_least`` user reports (None: no unit): the design takes them with
    certainty, like the removals. Reports come from viewers, not from the models, so a harmful
    post the models cannot see is still reported by some of its viewers and drawn."""
    r = np.asarray(reports, dtype=float)
    if at_least is None:
        return np.zeros(len(r), dtype=bool)
    if at_least < 1:
        raise UserError(
            f"report threshold {at_least} must be >= 1: pass e.g. --report-census 1, or off."
        )
    if np.isnan(r).any() or (r < 0).any():
        raise UserError(
            "user report counts contain NaN or negative values: count each post's report events "
            "of the day (0 when none)."
        )
    return r >= at_least


def views_mixture(pi, weights, budget: float, share: float, floor: float = 0.002, certain=None):
    """(1 - share) * pi + share * pi_views, with pi_views proportional to the impression weights
    (PPS on views + 1, the same ``certain`` units at the same probability, the same floor, summing
    to ``budget``): a defensive mixture whose every unit has pi >= share * pi_views, which bounds
    its weight views / pi whatever the scores say. ``share`` 0: ``pi`` itself."""
    if not 0 <= share < 1:
        raise UserError(f"views share {share} must be within [0, 1): pass e.g. --views-share 0.1.")
    pi = np.asarray(pi, dtype=float)
    if share == 0:
        return pi
    w = np.asarray(weights, dtype=float)
    pi_views, _ = inclusion_probabilities(np.ones(len(w)), w, budget, floor, certain=certain)
    return (1 - share) * pi + share * pi_views


def _solve(a: np.ndarray, budget: float, floor: float) -> tuple[np.ndarray, float]:
    """max(floor, min(1, c a)) with c such that the sum is ``budget`` (bisection: the sum is
    continuous and non-decreasing in c)."""
    if len(a) == 0:
        return a, 0.0
    if budget >= len(a):
        return np.ones(len(a)), float("inf")
    if a.sum() == 0:  # no signal at all: uniform
        return np.full(len(a), budget / len(a)), 0.0
    weighted = a > 0
    if weighted.sum() + floor * (~weighted).sum() <= budget:
        # every unit with a weight at pi = 1 still leaves budget (e.g. a day where the scores are 0
        # but for a few posts): the rest goes uniformly to the units without weight, above the
        # floor, instead of c growing without bound (inf * 0 = NaN)
        pi = np.ones(len(a))
        pi[~weighted] = (budget - weighted.sum()) / (~weighted).sum()
        return pi, float("inf")

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


CENSUS, SCORED, LOW = 0, 1, 2  # strata of the stratified design


def stratified_probabilities(
    scores,
    weights,
    budget: float,
    floor: float = 0.002,
    exponent: float = 0.5,
    certain=None,
    certain_share: float = 0.5,
    low_cut: float = 0.01,
    low_share: float = 0.3,
) -> tuple[np.ndarray, np.ndarray]:
    """(pi, stratum) of the stratified design: CENSUS = the ``certain`` units (removals, pi as in
    :func:`inclusion_probabilities`), LOW = the other units whose highest score is below
    ``low_cut``, sampled UNIFORMLY with ``low_share`` of the budget (pi = low_share * budget /
    their count), SCORED = the rest, by the importance formula with what is left (floor
    ``floor``). A uniform low stratum keeps the harm the models miss countable: its drawn harmful
    units are a Poisson count with one known rate, which the stratified interval
    (:func:`vigil.evaluation.estimators.stratified_share`) uses.
    """
    s = np.asarray(scores, dtype=float)
    s = s.max(axis=1) if s.ndim == 2 else s
    w = np.asarray(weights, dtype=float)
    n = len(s)
    if not 0 < low_share < 1:
        raise UserError(
            f"low-score budget share {low_share} must be within (0, 1): pass e.g. --low-share 0.3."
        )
    if np.isnan(s).any() or np.isnan(w).any() or (w < 0).any():
        raise UserError(
            "scores or impression weights contain NaN or negative values: score every post and "
            "count views as non-negative integers before sampling."
        )
    take = np.zeros(n, dtype=bool) if certain is None else np.asarray(certain, dtype=bool)
    stratum = np.where(take, CENSUS, np.where(s < low_cut, LOW, SCORED))
    if budget >= n:
        return np.ones(n), stratum
    pi = np.zeros(n)
    if take.any():
        pi[take] = min(1.0, certain_share * budget / take.sum())
    left = budget - pi[take].sum()
    low, scored = stratum == LOW, stratum == SCORED
    if not scored.any():
        low_budget = left
    elif not low.any():
        low_budget = 0.0
    else:
        low_budget = min(low_share * budget, left - floor * scored.sum())
    if scored.any() and left - low_budget >= scored.sum():  # the scored units are a census
        low_budget = left - scored.sum()
    if low.any():
        pi[low] = min(1.0, low_budget / low.sum())
    if scored.any():
        rest = left - pi[low].sum()
        if floor * scored.sum() > rest:
            raise UserError(
                f"the uniform floor {floor} over {int(scored.sum())} scored units already asks "
                f"{floor * scored.sum():.0f} labels, over the budget of {rest:g} left: lower the "
                "floor or raise the budget."
            )
        pi[scored], _ = _solve(s[scored] ** exponent * w[scored], rest, floor)
    return pi, stratum
