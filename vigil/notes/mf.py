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


class _Incidence:
    """The ratings as sparse rater x note matrices: sums over a rater's (or a note's) ratings of
    any per-note (per-rater) quantity are one sparse-times-dense product, without N-long
    temporaries. ``a`` holds ones, ``y`` the ratings, on the same structure."""

    def __init__(self, m: RatingMatrix) -> None:
        from scipy import sparse

        shape = (m.n_raters, m.n_notes)
        self.y = sparse.csr_matrix((m.y, (m.rater, m.note)), shape=shape)
        if self.y.nnz == len(m.y):
            # No (rater, note) pair twice: the ones share the ratings' structure.
            self.a = sparse.csr_matrix((np.ones(self.y.nnz), self.y.indices, self.y.indptr), shape)
        else:  # duplicates were summed: count them
            self.a = sparse.csr_matrix((np.ones(len(m.y)), (m.rater, m.note)), shape=shape)
        self.at = self.a.T.tocsr()
        self.yt = self.y.T.tocsr()
        self.n = len(m.y)
        self.count_r = np.bincount(m.rater, minlength=m.n_raters).astype(np.float64)
        self.count_n = np.bincount(m.note, minlength=m.n_notes).astype(np.float64)
        self.sy_r = np.bincount(m.rater, weights=m.y, minlength=m.n_raters)
        self.sy_n = np.bincount(m.note, weights=m.y, minlength=m.n_notes)
        self.syy_r = np.bincount(m.rater, weights=m.y * m.y, minlength=m.n_raters)
        self.sy = float(self.sy_r.sum())


@dataclass
class _SideSums:
    """One side's ridge problem given the other side: per group g, over its ratings r, the
    target t_r = y_r - mu - c_r (c the other side's intercept) and the regressor x_r (the other
    side's factor): sums of x, x^2, t and t x."""

    sx: np.ndarray
    sxx: np.ndarray
    st: np.ndarray
    stx: np.ndarray


def _side_sums(a, y, count, sy, mu, other_i, other_f) -> _SideSums:
    s = a @ np.column_stack([other_f, other_f * other_f, other_i, other_i * other_f])
    sx, sxx, si, sif = s.T
    syx = y @ other_f
    return _SideSums(sx, sxx, sy - count * mu - si, syx - mu * sx - sif)


def _solve_side(s: _SideSums, count, ip, fp) -> tuple[np.ndarray, np.ndarray]:
    """argmin_g sum_r (t_r - a_g - b_g x_r)^2 + ip a_g^2 + fp b_g^2: a 2x2 system per group."""
    a11 = count + ip
    a22 = s.sxx + fp
    det = a11 * a22 - s.sx * s.sx
    return (a22 * s.st - s.sx * s.stx) / det, (a11 * s.stx - s.sx * s.st) / det


def _dot(x: np.ndarray, y: np.ndarray) -> float:
    """x . y without BLAS: OpenBLAS threads its ddot above ~10k elements, and on busy cores the
    threads' handover costs up to milliseconds a call (einsum's own loop: tens of microseconds)."""
    return float(np.einsum("i,i->", x, y))


def _penalty(p: Params, cfg: ScoringConfig) -> float:
    return float(
        cfg.user_factor_lambda * np.mean(p.rater_factor**2)
        + cfg.user_intercept_lambda * np.mean(p.rater_intercept**2)
        + cfg.note_factor_lambda * np.mean(p.note_factor**2)
        + cfg.note_intercept_lambda * np.mean(p.note_intercept**2)
        + cfg.global_intercept_lambda * p.global_intercept**2
    )


def _als_sweep(
    inc: _Incidence, p: Params, cfg: ScoringConfig, n_raters: int, n_notes: int
) -> float:
    """One pass over raters, notes and mu; returns the loss *after* the pass.

    The loss comes from the sums the note update already has (no pass over the ratings): at a
    note's ridge optimum its residuals e satisfy sum e = ip a and sum e x = fp b, so its squared
    error is sum t^2 - a sum t - b sum t x - ip a^2 - fp b^2, and sum t^2 over all ratings is a
    per-rater sum of constants. The mu step then moves the squared error in closed form."""
    n = inc.n
    # Penalties of the loss multiplied by N (means over raters/notes become sums).
    ru_i, ru_f = cfg.user_intercept_lambda * n / n_raters, cfg.user_factor_lambda * n / n_raters
    rn_i, rn_f = cfg.note_intercept_lambda * n / n_notes, cfg.note_factor_lambda * n / n_notes
    mu = p.global_intercept
    raters = _side_sums(inc.a, inc.y, inc.count_r, inc.sy_r, mu, p.note_intercept, p.note_factor)
    p.rater_intercept, p.rater_factor = _solve_side(raters, inc.count_r, ru_i, ru_f)
    notes = _side_sums(inc.at, inc.yt, inc.count_n, inc.sy_n, mu, p.rater_intercept, p.rater_factor)
    a, b = _solve_side(notes, inc.count_n, rn_i, rn_f)
    p.note_intercept, p.note_factor = a, b
    c = mu + p.rater_intercept
    stt = float(np.sum(inc.syy_r - 2 * c * inc.sy_r + inc.count_r * c * c))
    sse = stt - _dot(a, notes.st) - _dot(b, notes.stx) - rn_i * _dot(a, a) - rn_f * _dot(b, b)
    # mu: the residual without mu, summed, is sum y - sum i_u - sum i_n - sum f_u f_n.
    interaction = _dot(b, notes.sx)
    rest = inc.sy - _dot(inc.count_r, p.rater_intercept) - _dot(inc.count_n, a)
    p.global_intercept = float((rest - interaction) / (n * (1.0 + cfg.global_intercept_lambda)))
    step = p.global_intercept - mu
    sse += -2.0 * step * rn_i * float(a.sum()) + n * step * step
    return sse / n + _penalty(p, cfg)


ALS_EXTRAPOLATE_EVERY = 4
ALS_EXTRAPOLATE_STEP = 2.0


def _extrapolate(p: Params, last: Params, step: float) -> None:
    p.rater_intercept += step * (p.rater_intercept - last.rater_intercept)
    p.rater_factor += step * (p.rater_factor - last.rater_factor)
    p.note_intercept += step * (p.note_intercept - last.note_intercept)
    p.note_factor += step * (p.note_factor - last.note_factor)
    p.global_intercept += step * (p.global_intercept - last.global_intercept)


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
    inc = _Incidence(m)
    previous = np.inf
    iteration = 0
    last = _copy(p)
    for iteration in range(1, cfg.als_max_iterations + 1):
        current = _als_sweep(inc, p, cfg, m.n_raters, m.n_notes)
        if abs(previous - current) <= cfg.als_tolerance * max(current, 1e-12):
            break
        previous = current
        if iteration % ALS_EXTRAPOLATE_EVERY == 0:
            # Block coordinate descent converges linearly along a few slow directions; a step
            # along the last move skips much of that walk (about 30% fewer sweeps). The sweeps
            # that follow descend from wherever it lands, and the stopping test waits for two
            # sweeps without a jump.
            moved = _copy(p)
            _extrapolate(p, last, ALS_EXTRAPOLATE_STEP)
            previous = np.inf
            last = moved
        else:
            last = _copy(p)
    current = loss(m, p, cfg)
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
        if epoch % 500 == 0:  # progress on long runs
            log.info("adam: epoch %d, loss %.8f", epoch, current.item())
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
