"""The matrix factorization: the fast solver and the reference's Adam reach the same optimum.

Worlds are drawn from the model's own latent structure (vigil.notes.latent, seeded); the closed
form below is solved independently as one augmented least-squares problem.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vigil.notes import format as fmt
from vigil.notes import mf
from vigil.notes.config import ScoringConfig
from vigil.notes.latent import latent_world

CFG = ScoringConfig()


def _matrix(n_ratings: int, seed: int) -> mf.RatingMatrix:
    _, ratings = latent_world(n_ratings, seed=seed)
    rater, _ = pd.factorize(ratings["raterParticipantId"])
    note, _ = pd.factorize(ratings["noteId"])
    return mf.RatingMatrix(
        rater.astype(np.int64),
        note.astype(np.int64),
        ratings["helpfulnessLevel"].map(fmt.HELPFUL_NUM).to_numpy(dtype=float),
        int(rater.max()) + 1,
        int(note.max()) + 1,
    )


@pytest.fixture(scope="module")
def world() -> mf.RatingMatrix:
    return _matrix(20_000, seed=11)


@pytest.fixture(scope="module")
def fits(world):
    return mf.fit_als(world, CFG, seed=0), mf.fit_adam(world, CFG, seed=0)


def test_fast_solver_and_adam_reach_the_same_optimum(fits):
    als, adam = fits
    gap = np.abs(als.params.note_intercept - adam.params.note_intercept)
    assert np.quantile(gap, 0.99) <= 0.02, np.quantile(gap, 0.99)
    corr = np.corrcoef(als.params.note_factor, adam.params.note_factor)[0, 1]
    assert corr >= 0.99, corr
    # Both sign-identified the same way: the factors agree, not only up to sign.
    assert np.sign(als.params.note_factor @ adam.params.note_factor) > 0
    # The exact solver's loss is no worse than Adam's (same loss function).
    assert als.loss <= adam.loss + 1e-6


def test_adam_seed_to_seed_spread(world, fits):
    """The reference's Adam stops at the first rising loss after 100 epochs, so its optimum
    moves with the seed: mean spread < 0.01 (the issue's figure); at q99 it measures 0.012-0.017
    on these worlds, which the ALS-vs-Adam gap (q99 <= 0.01) stays inside."""
    als, adam0 = fits
    adam1 = mf.fit_adam(world, CFG, seed=1)
    spread = np.abs(adam0.params.note_intercept - adam1.params.note_intercept)
    assert spread.mean() < 0.01, spread.mean()
    assert np.quantile(spread, 0.99) < 0.02, np.quantile(spread, 0.99)
    gap = np.abs(als.params.note_intercept - adam1.params.note_intercept)
    assert np.quantile(gap, 0.99) <= np.quantile(spread, 0.99) + 0.005


def test_als_solution_is_a_stationary_point_of_the_reference_loss(world, fits):
    """Gradient of the loss written as the reference writes it (torch autograd) is ~0."""
    import torch

    p = fits[0].params
    t = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in vars(p).items()}
    ru, rn = torch.from_numpy(world.rater), torch.from_numpy(world.note)
    pred = t["global_intercept"] + t["rater_intercept"][ru] + t["note_intercept"][rn]
    pred = pred + t["rater_factor"][ru] * t["note_factor"][rn]
    loss = ((pred - torch.from_numpy(world.y)) ** 2).mean()
    loss = loss + 0.03 * (t["rater_factor"] ** 2).mean() + 0.15 * (t["rater_intercept"] ** 2).mean()
    loss = loss + 0.03 * (t["note_factor"] ** 2).mean() + 0.15 * (t["note_intercept"] ** 2).mean()
    loss = loss + 0.15 * t["global_intercept"] ** 2
    loss.backward()
    assert abs(loss.item() - fits[0].loss) < 1e-9
    # Gradient of N * loss (per parameter: a sum over its ratings); at the random start it is
    # of order 1 to 100, at the optimum it vanishes.
    for name, tensor in t.items():
        assert float(tensor.grad.abs().max()) * len(world.y) < 0.05, name


def test_sign_identification_puts_the_larger_rater_group_negative(fits):
    for fit in fits:
        factors = fit.params.rater_factor
        assert (factors < 0).sum() / (factors != 0).sum() >= 0.5


def test_closed_form_when_factors_are_zero():
    """Raters differ only by an additive effect: the optimum has zero factors, and the
    intercepts are the ridge solution of the reference's penalties, solved here as one
    augmented least-squares problem."""
    n_raters, n_notes = 12, 6
    rater, note = (
        a.ravel() for a in np.meshgrid(np.arange(n_raters), np.arange(n_notes), indexing="ij")
    )
    y = 0.5 + 0.1 * (rater % 2 - 0.5)
    m = mf.RatingMatrix(rater, note, y, n_raters, n_notes)
    n = len(y)
    design = np.zeros((n, 1 + n_raters + n_notes))
    design[:, 0] = 1
    design[np.arange(n), 1 + rater] = 1
    design[np.arange(n), 1 + n_raters + note] = 1
    penalty = np.concatenate(
        [[0.15 * n], np.full(n_raters, 0.15 * n / n_raters), np.full(n_notes, 0.15 * n / n_notes)]
    )
    lhs = np.vstack([design, np.diag(np.sqrt(penalty))])
    rhs = np.concatenate([y, np.zeros(len(penalty))])
    solution = np.linalg.lstsq(lhs, rhs, rcond=None)[0]

    # Run to a tight tolerance: the default (1e-9 relative loss change) stops ~1e-5 away.
    als = mf.fit_als(m, CFG.replace(als_tolerance=1e-15, als_max_iterations=50_000), seed=0)
    assert np.abs(als.params.rater_factor).max() < 1e-6
    assert np.abs(als.params.note_factor).max() < 1e-6
    assert als.params.global_intercept == pytest.approx(solution[0], abs=1e-7)
    assert np.allclose(als.params.rater_intercept, solution[1 : 1 + n_raters], atol=1e-7)
    assert np.allclose(als.params.note_intercept, solution[1 + n_raters :], atol=1e-7)
    adam = mf.fit_adam(m, CFG, seed=0)
    assert np.allclose(adam.params.note_intercept, solution[1 + n_raters :], atol=0.01)


def test_als_reaches_the_optimum_a_quasi_newton_solver_finds():
    """The issue's claim that an ALS solver of the same loss reaches the same optimum, checked
    against scipy's L-BFGS-B run to a tight tolerance on the reference's loss, written out here
    with its gradient (independently of mf.py's sums)."""
    from scipy.optimize import minimize

    m = _matrix(5_000, seed=3)
    n, nu, nn = len(m.y), m.n_raters, m.n_notes
    lam = {"uf": 0.03, "ui": 0.15, "nf": 0.03, "ni": 0.15, "g": 0.15}

    def split(x):
        return x[:nu], x[nu : 2 * nu], x[2 * nu : 2 * nu + nn], x[2 * nu + nn : -1], x[-1]

    def loss_and_grad(x):
        ri, rf, ni, nf, mu = split(x)
        err = mu + ri[m.rater] + ni[m.note] + rf[m.rater] * nf[m.note] - m.y
        value = np.mean(err**2) + lam["uf"] * np.mean(rf**2) + lam["ui"] * np.mean(ri**2)
        value += lam["nf"] * np.mean(nf**2) + lam["ni"] * np.mean(ni**2) + lam["g"] * mu**2
        d = 2 * err / n
        grad = np.concatenate(
            [
                np.bincount(m.rater, d, nu) + 2 * lam["ui"] * ri / nu,
                np.bincount(m.rater, d * nf[m.note], nu) + 2 * lam["uf"] * rf / nu,
                np.bincount(m.note, d, nn) + 2 * lam["ni"] * ni / nn,
                np.bincount(m.note, d * rf[m.rater], nn) + 2 * lam["nf"] * nf / nn,
                [d.sum() + 2 * lam["g"] * mu],
            ]
        )
        return value, grad

    rng = np.random.default_rng(0)
    x0 = np.concatenate(
        [np.zeros(nu), mf.xavier_factors(nu, rng), np.zeros(nn), mf.xavier_factors(nn, rng), [0]]
    )
    opts = {"maxiter": 20_000, "ftol": 1e-16, "gtol": 1e-12}
    res = minimize(loss_and_grad, x0, jac=True, method="L-BFGS-B", options=opts)
    ri, rf, ni, nf, mu = split(res.x)
    ref = mf.identify_sign(mf.Params(ri, rf, ni, nf, float(mu)))
    als = mf.fit_als(m, CFG, seed=0)
    assert als.loss == pytest.approx(res.fun, abs=1e-9)
    assert np.abs(als.params.note_intercept - ref.note_intercept).max() < 1e-4
    assert np.abs(als.params.note_factor - ref.note_factor).max() < 1e-4
    assert als.params.global_intercept == pytest.approx(ref.global_intercept, abs=1e-5)
