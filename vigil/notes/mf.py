"""The reference's matrix factorization, solved two ways.

Model (matrix_factorization/model.py): ``rating ~ mu + i_u + i_n + f_u * f_n`` with one factor.
Loss (matrix_factorization.py ``_get_loss`` / ``_get_reg_loss`` with no loss ratio)::

    L = mean_r (y_r - pred_r)^2
        + lambda_uf * mean_u f_u^2 + lambda_ui * mean_u i_u^2
        + lambda_nf * mean_n f_n^2 + lambda_ni * mean_n i_n^2 + lambda_g * mu^2

Ratings are unweighted (the core scorer passes no normalizedLossHyperparameters), and each
penalty is a mean over raters or notes, so on N ratings, U raters and M notes the per-rater
ridge weight is ``lambda * N / U`` once the loss is multiplied by N.

- ``fit_adam``: the reference's method, full-batch Adam in torch (float32, xavier-uniform factors,
  zero intercepts, gradient norm clipped to 1, stop when the loss changes by <= 1e-7 or rises
  after 100 epochs).
- ``fit_als``: alternating exact ridge solves of the same loss (each rater's (i_u, f_u) is a 2x2
  ridge problem given the notes, and vice versa; mu in closed form), in float64 numpy.

Both end with the reference's sign identification: factors are flipped so that at least half of
the raters with a non-zero factor have a negative one (``_flip_factors_for_identification``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from vigil.notes.config import ScoringConfig

log = logging.getLogger(__name__)


@dataclass
class RatingMatrix:
    """Ratings as index arrays: rating r is rater ``rater[r]`` on note ``note[r]``, value ``y[r]``."""

    rater: np.ndarray  # int64 indexes into 0..n_raters-1
    note: np.ndarray  # int64 indexes into 0..n_notes-1
    y: np.ndarray  # float64 helpfulNum: 1, 0.5, 0
    n_raters: int
    n_notes: int


@dataclass
class Params:
    rater_intercept: np.ndarray
    rater_factor: np.ndarray
    note_intercept: np.ndarray
    note_factor: np.ndarray
    global_intercept: float


@dataclass
class FitResult:
    params: Params
    loss: float
    iterations: int
    seconds: float
    solver: str


def predict(m: RatingMatrix, p: Params) -> np.ndarray:
    return (
        p.global_intercept
        + p.rater_intercept[m.rater]
        + p.note_intercept[m.note]
        + p.rater_factor[m.rater] * p.note_factor[m.note]
    )


def loss(m: RatingMatrix, p: Params, cfg: ScoringConfig) -> float:
    """The reference's regularized loss (float64)."""
    err = m.y - predict(m, p)
    return float(np.mean(err * err)) + _penalty(p, cfg)


def identify_sign(p: Params) -> Params:
    """Flip factors so that the larger group of raters gets a negative factor (the reference's
    ``_flip_factors_for_identification``)."""
    nonzero = np.count_nonzero(p.rater_factor)
    negative = np.count_nonzero(p.rater_factor < 0)
    if nonzero and negative / nonzero < 0.5:
        p.rater_factor = -p.rater_factor
        p.note_factor = -p.note_factor
    return p


def xavier_factors(n: int, rng: np.random.Generator) -> np.ndarray:
    """torch.nn.init.xavier_uniform_ on an (n, 1) embedding: U(-b, b), b = sqrt(6 / (1 + n))."""
    bound = np.sqrt(6.0 / (1 + n))
    return rng.uniform(-bound, bound, size=n)


# --- the fast solver ------------------------------------------------------------------------------


def _ridge_2x2(
    idx: np.ndarray,
    n: int,
    target: np.ndarray,
    other_factor: np.ndarray,
    intercept_penalty: float,
    factor_penalty: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Per group g: argmin sum_r (target_r - a_g - b_g x_r)^2 + ip a_g^2 + fp b_g^2, exactly."""
    count = np.bincount(idx, minlength=n).astype(np.float64)
    sx = np.bincount(idx, weights=other_factor, minlength=n)
    sxx = np.bincount(idx, weights=other_factor * other_factor, minlength=n)
    st = np.bincount(idx, weights=target, minlength=n)
    stx = np.bincount(idx, weights=target * other_factor, minlength=n)
    a11 = count + intercept_penalty
    a22 = sxx + factor_penalty
    det = a11 * a22 - sx * sx
    intercept = (a22 * st - sx * stx) / det
    factor = (a11 * stx - sx * st) / det
    return intercept, factor


def _penalty(p: Params, cfg: ScoringConfig) -> float:
    return float(
        cfg.user_factor_lambda * np.mean(p.rater_factor**2)
        + cfg.user_intercept_lambda * np.mean(p.rater_intercept**2)
        + cfg.note_factor_lambda * np.mean(p.note_factor**2)
        + cfg.note_intercept_lambda * np.mean(p.note_intercept**2)
        + cfg.global_intercept_lambda * p.global_intercept**2
    )


def _als_sweep(m: RatingMatrix, p: Params, cfg: ScoringConfig) -> float:
    """One pass over raters, notes and mu; returns the loss after it."""
    n = len(m.y)
    # Penalties of the loss multiplied by N (means over raters/notes become sums).
    ru_i = cfg.user_intercept_lambda * n / m.n_raters
    ru_f = cfg.user_factor_lambda * n / m.n_raters
    rn_i = cfg.note_intercept_lambda * n / m.n_notes
    rn_f = cfg.note_factor_lambda * n / m.n_notes

    target = m.y - p.global_intercept - p.note_intercept[m.note]
    p.rater_intercept, p.rater_factor = _ridge_2x2(
        m.rater, m.n_raters, target, p.note_factor[m.note], ru_i, ru_f
    )
    target = m.y - p.global_intercept - p.rater_intercept[m.rater]
    p.note_intercept, p.note_factor = _ridge_2x2(
        m.note, m.n_notes, target, p.rater_factor[m.rater], rn_i, rn_f
    )
    rest = target - p.note_intercept[m.note] - p.rater_factor[m.rater] * p.note_factor[m.note]
    rest += p.global_intercept  # the residual without mu
    p.global_intercept = float(rest.sum() / (n * (1.0 + cfg.global_intercept_lambda)))
    rest -= p.global_intercept
    return float(np.mean(rest * rest)) + _penalty(p, cfg)


def fit_als(
    m: RatingMatrix,
    cfg: ScoringConfig,
    init: Params | None = None,
    seed: int = 0,
) -> FitResult:
    """Alternating exact ridge solves of the reference's loss, until the loss stops moving."""
    start = time.perf_counter()
    if init is None:
        rng = np.random.default_rng(seed)
        p = Params(
            rater_intercept=np.zeros(m.n_raters),
            rater_factor=xavier_factors(m.n_raters, rng),
            note_intercept=np.zeros(m.n_notes),
            note_factor=xavier_factors(m.n_notes, rng),
            global_intercept=0.0,
        )
    else:
        p = _copy(init)
    previous = loss(m, p, cfg)
    current = previous
    iteration = 0
    for iteration in range(1, cfg.als_max_iterations + 1):
        current = _als_sweep(m, p, cfg)
        if abs(previous - current) <= cfg.als_tolerance * max(current, 1e-12):
            break
        previous = current
    seconds = time.perf_counter() - start
    log.debug("als: loss %.8f after %d sweeps in %.2f s", current, iteration, seconds)
    return FitResult(identify_sign(p), current, iteration, seconds, "als")


def _copy(p: Params) -> Params:
    return Params(
        p.rater_intercept.astype(np.float64).copy(),
        p.rater_factor.astype(np.float64).copy(),
        p.note_intercept.astype(np.float64).copy(),
        p.note_factor.astype(np.float64).copy(),
        float(p.global_intercept),
    )


# --- the reference's solver -----------------------------------------------------------------------


def fit_adam(
    m: RatingMatrix,
    cfg: ScoringConfig,
    init: Params | None = None,
    seed: int = 0,
) -> FitResult:
    """Full-batch Adam as the reference's ``run_mf`` / ``_fit_model`` runs it."""
    import torch

    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    rater_idx = torch.from_numpy(m.rater.astype(np.int64))
    note_idx = torch.from_numpy(m.note.astype(np.int64))
    labels = torch.from_numpy(m.y.astype(np.float32))

    def param(values: np.ndarray) -> torch.nn.Parameter:
        return torch.nn.Parameter(torch.from_numpy(np.asarray(values, dtype=np.float32).copy()))

    if init is None:
        bound_u = float(np.sqrt(6.0 / (1 + m.n_raters)))
        bound_n = float(np.sqrt(6.0 / (1 + m.n_notes)))
        rf = torch.nn.Parameter(torch.empty(m.n_raters).uniform_(-bound_u, bound_u, generator=gen))
        nf = torch.nn.Parameter(torch.empty(m.n_notes).uniform_(-bound_n, bound_n, generator=gen))
        ri, ni = param(np.zeros(m.n_raters)), param(np.zeros(m.n_notes))
        mu = torch.nn.Parameter(torch.zeros(1))
        lr = cfg.no_init_learning_rate
    else:
        ri, rf = param(init.rater_intercept), param(init.rater_factor)
        ni, nf = param(init.note_intercept), param(init.note_factor)
        mu = torch.nn.Parameter(torch.full((1,), float(init.global_intercept)))
        lr = cfg.init_learning_rate
    params = [rf, nf, ri, ni, mu]
    optimizer = torch.optim.Adam(params, lr=lr)

    # The reference looks parameters up with torch.nn.Embedding; index_select is the same
    # lookup with the same gradient and runs about 6x faster on CPU, so the comparison in the
    # benchmark is against a well-implemented Adam, not a slow one.
    def objective() -> torch.Tensor:
        pred = ri.index_select(0, rater_idx) + ni.index_select(0, note_idx)
        pred = pred + rf.index_select(0, rater_idx) * nf.index_select(0, note_idx) + mu
        fit = ((pred - labels) ** 2).mean()
        reg = (
            cfg.user_factor_lambda * (rf**2).mean()
            + cfg.user_intercept_lambda * (ri**2).mean()
            + cfg.note_factor_lambda * (nf**2).mean()
            + cfg.note_intercept_lambda * (ni**2).mean()
            + cfg.global_intercept_lambda * (mu**2).mean()
        )
        return fit + reg

    prev_loss = 1e10
    current = objective()
    epoch = 0
    while abs(current.item() - prev_loss) > cfg.convergence and not (
        epoch > cfg.min_epochs_before_divergence_stop and current.item() > prev_loss
    ):
        if epoch >= cfg.max_epochs:
            log.warning("adam: stopped at the %d-epoch guard before converging", epoch)
            break
        prev_loss = current.item()
        current.backward()
        torch.nn.utils.clip_grad_norm_(params, max_norm=cfg.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad()
        current = objective()
        epoch += 1
    out = Params(
        rater_intercept=ri.detach().numpy().astype(np.float64),
        rater_factor=rf.detach().numpy().astype(np.float64),
        note_intercept=ni.detach().numpy().astype(np.float64),
        note_factor=nf.detach().numpy().astype(np.float64),
        global_intercept=float(mu.item()),
    )
    seconds = time.perf_counter() - start
    log.debug("adam: loss %.8f after %d epochs in %.2f s", current.item(), epoch, seconds)
    return FitResult(identify_sign(out), loss(m, out, cfg), epoch, seconds, "adam")


SOLVERS = {"als": fit_als, "adam": fit_adam}


def fit(
    m: RatingMatrix,
    cfg: ScoringConfig,
    solver: str = "als",
    init: Params | None = None,
    seed: int = 0,
) -> FitResult:
    return SOLVERS[solver](m, cfg, init=init, seed=seed)
