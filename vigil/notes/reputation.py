"""Contributor reputation by propagation over the rater-note graph (PageRank style).

Trust is a unit of mass spread over raters. Each round, every rater sends their trust in equal
parts to the notes they rated; each note hands what it received back to its raters in proportion
to how well each rating agrees with the note's eventual consensus: the consensus the caller gives
(the scorer's verdict, which bridges viewpoints), else the mean rating of the *other* raters of the
note (leave-one-out, so a rating never confirms itself). With damping ``d`` a share ``1 - d`` of all
trust is handed out afresh by a personalization vector ``p`` (default: by number of ratings)::

    t <- (1 - d) * p + d * B A t

``A`` spreads each rater's trust over their notes, ``B`` returns each note's trust to its raters by
agreement. Both are column-stochastic, so trust is conserved and the iteration contracts by ``d``
per round to one fixed point whatever the (seeded) start. A group of raters that only rates its
own notes keeps exactly the personalization it was given (``t_S = (1 - d) p_S + d t_S``) however
densely its members rate each other and however much they agree, while raters in the open graph
gain the trust of raters who disagree with consensus. Reputation is reported as ``t / b`` with
``b`` the rater's share of all ratings: 1 is a rater who neither gains nor loses.

The consensus is fixed during the propagation rather than re-weighted by trust each round: that
re-weighting makes the map non-linear and, on simulated worlds, left it cycling at an L1 change
of ~1e-4 instead of converging.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vigil.errors import UserError
from vigil.notes import format as fmt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReputationConfig:
    damping: float = 0.85
    tolerance: float = 1e-10  # L1 change of the trust vector between rounds
    max_iterations: int = 500
    seed: int = 0


@dataclass
class ReputationResult:
    raters: pd.DataFrame  # raterParticipantId, reputation, ratings, meanAgreement
    notes: pd.DataFrame  # noteId, consensus (trust-weighted mean rating), ratings
    iterations: int
    converged: bool
    delta: float


def helpful_num(ratings: pd.DataFrame) -> np.ndarray:
    """1 / 0.5 / 0 from helpfulnessLevel; version-1 rows (empty level) from helpful/notHelpful."""
    level = ratings["helpfulnessLevel"].astype("string")
    y = level.map(fmt.HELPFUL_NUM).astype("float64")
    if y.isna().any() and {"helpful", "notHelpful"} <= set(ratings.columns):
        old = (
            ratings["helpful"]
            .eq(1)
            .astype("float64")
            .where(ratings["helpful"].eq(1) | ratings["notHelpful"].eq(1))
        )
        y = y.fillna(old)
    if y.isna().any():
        row = int(np.flatnonzero(y.isna().to_numpy())[0])
        raise UserError(
            f"rating row {row} has helpfulnessLevel {ratings['helpfulnessLevel'].iloc[row]!r}: "
            f"use one of {', '.join(fmt.HELPFULNESS_LEVELS)} (quarantine bad rows before scoring)."
        )
    return y.to_numpy()


def reputation(
    ratings: pd.DataFrame,
    cfg: ReputationConfig = ReputationConfig(),
    note_consensus: pd.Series | None = None,
    personalization: pd.Series | None = None,
) -> ReputationResult:
    """Reputation of every rater in ``ratings`` (noteId, raterParticipantId, helpfulnessLevel).

    ``note_consensus``: the notes' eventual consensus in [0, 1] by noteId (for instance a neutral
    rater's predicted rating from the scorer, ``mu + note intercept``); notes without one use the
    mean rating of the other raters. ``personalization``: teleport weight per raterParticipantId
    (> 0; default: the rater's number of ratings, so an unremarkable rater keeps reputation 1).
    """
    if not 0.0 <= cfg.damping < 1.0:
        raise UserError(f"damping {cfg.damping} must be in [0, 1).")
    if ratings.empty:
        raise UserError("no ratings to propagate reputation over: give a non-empty ratings file.")
    y = helpful_num(ratings)
    u, rater_ids = pd.factorize(ratings["raterParticipantId"], sort=True)
    n, note_ids = pd.factorize(ratings["noteId"], sort=True)
    n_u, n_n = len(rater_ids), len(note_ids)
    per_rater = np.bincount(u, minlength=n_u).astype(np.float64)
    baseline = per_rater / per_rater.sum()
    p = _personalization(personalization, rater_ids, baseline)
    fixed = None
    if note_consensus is not None:
        fixed = note_consensus.reindex(pd.Index(note_ids)).to_numpy(np.float64)
    agree = _agreement(u, n, y, n_n, fixed)
    back = _return_share(agree, n, n_n)
    t = np.random.default_rng(cfg.seed).dirichlet(np.ones(n_u))
    delta, it = np.inf, 0
    for it in range(1, cfg.max_iterations + 1):
        received = np.bincount(n, weights=t[u] / per_rater[u], minlength=n_n)
        t_new = (1 - cfg.damping) * p + cfg.damping * np.bincount(
            u, weights=received[n] * back, minlength=n_u
        )
        delta = float(np.abs(t_new - t).sum())
        t = t_new
        if delta <= cfg.tolerance:
            break
    converged = delta <= cfg.tolerance
    log.log(
        logging.INFO if converged else logging.WARNING,
        "reputation: %d raters, %d notes, %d ratings (%d notes with a given consensus); "
        "%s after %d rounds (L1 change %.1e)",
        n_u,
        n_n,
        len(y),
        0 if fixed is None else int(np.isfinite(fixed).sum()),
        "converged" if converged else "NOT converged",
        it,
        delta,
    )
    rep = t / baseline
    raters = pd.DataFrame(
        {
            "raterParticipantId": np.asarray(rater_ids),
            "reputation": rep,
            "ratings": per_rater.astype(np.int64),
            "meanAgreement": np.bincount(u, weights=agree, minlength=n_u) / per_rater,
        }
    )
    w_sum = np.bincount(n, weights=rep[u], minlength=n_n)
    notes = pd.DataFrame(
        {
            "noteId": np.asarray(note_ids),
            "consensus": np.bincount(n, weights=rep[u] * y, minlength=n_n) / w_sum,
            "ratings": np.bincount(n, minlength=n_n),
        }
    )
    return ReputationResult(raters, notes, it, converged, delta)


def _personalization(personalization: pd.Series | None, rater_ids, baseline) -> np.ndarray:
    if personalization is None:
        return baseline
    p = personalization.reindex(pd.Index(rater_ids)).fillna(0.0).to_numpy(np.float64)
    if (p < 0).any() or p.sum() <= 0:
        raise UserError("personalization weights must be >= 0 with a positive sum.")
    return p / p.sum()


def _agreement(u, n, y, n_notes: int, fixed: np.ndarray | None) -> np.ndarray:
    """1 - |rating - consensus|: the note's given consensus, else the mean of the other ratings
    (leave-one-out, so a rating never confirms itself); 0.5 when nobody else rated the note."""
    count = np.bincount(n, minlength=n_notes)
    total = np.bincount(n, weights=y, minlength=n_notes)
    others = count[n] - 1
    loo = (total[n] - y) / np.maximum(others, 1)
    agree = np.where(others > 0, 1.0 - np.abs(y - loo), 0.5)
    if fixed is not None:
        given = fixed[n]
        agree = np.where(np.isfinite(given), 1.0 - np.abs(y - np.clip(given, 0.0, 1.0)), agree)
    return agree


def _return_share(agree, n, n_notes: int) -> np.ndarray:
    """Each rating's share of its note's trust: agreement over the note's total agreement."""
    total = np.bincount(n, weights=agree, minlength=n_notes)
    count = np.bincount(n, minlength=n_notes)
    return np.where(total[n] > 0, agree / np.where(total[n] > 0, total[n], 1), 1.0 / count[n])
