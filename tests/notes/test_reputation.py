"""Reputation by propagation: hand-derived fixed points, a clique that cannot inflate itself, and
convergence from any seeded start."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vigil.errors import UserError
from vigil.notes import reputation as rp
from vigil.notes.format import HELPFUL, NOT_HELPFUL, SOMEWHAT_HELPFUL


def _frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["noteId", "raterParticipantId", "helpfulnessLevel"])


def test_three_raters_on_one_note_match_the_hand_computed_fixed_point():
    """A and B say HELPFUL, C NOT_HELPFUL. Leave-one-out consensus: A sees (1 + 0)/2 -> agrees
    0.5, B likewise, C sees 1 -> agrees 0. The note returns all trust to A and B in halves.
    With p = 1/3 each and d = 0.85: t_A = t_B = 0.05 + 0.85 / 2 = 0.475, t_C = 0.05;
    reputation = t / (1/3): 1.425, 1.425, 0.15."""
    ratings = _frame([(1, "A", HELPFUL), (1, "B", HELPFUL), (1, "C", NOT_HELPFUL)])
    res = rp.reputation(ratings)
    rep = res.raters.set_index("raterParticipantId")["reputation"]
    assert rep["A"] == pytest.approx(1.425)
    assert rep["B"] == pytest.approx(1.425)
    assert rep["C"] == pytest.approx(0.15)
    assert res.converged


def _community_and_clique() -> pd.DataFrame:
    """Six honest raters H0..H5 rate 12 notes (each note by 4 of them); H5 is a contrarian who
    rates against the others. A clique K0..K2 rates only its own 8 notes, all HELPFUL, so each
    member has 8 ratings, as H0 has."""
    rows = []
    for n in range(12):
        truth = HELPFUL if n % 3 else NOT_HELPFUL
        raters = [f"H{(n + j) % 6}" for j in range(4)]
        for r in raters:
            contrary = HELPFUL if truth == NOT_HELPFUL else NOT_HELPFUL
            rows.append((n, r, contrary if r == "H5" else truth))
    for n in range(100, 108):
        rows += [(n, f"K{k}", HELPFUL) for k in range(3)]
    return _frame(rows)


def test_a_clique_rating_only_itself_gets_no_more_than_an_honest_rater_with_the_same_count():
    ratings = _community_and_clique()
    res = rp.reputation(ratings)
    raters = res.raters.set_index("raterParticipantId")
    assert raters.loc["H0", "ratings"] == raters.loc["K0", "ratings"] == 8
    # a closed group keeps exactly its personalization: reputation 1, however much it agrees
    for k in ("K0", "K1", "K2"):
        assert raters.loc[k, "reputation"] == pytest.approx(1.0, abs=1e-8)
        assert raters.loc[k, "meanAgreement"] == pytest.approx(1.0)
    honest = raters.loc[["H0", "H1", "H2", "H3", "H4"], "reputation"]
    assert (honest > 1.0 + 1e-3).all()  # they gain what the contrarian loses
    assert raters.loc["H5", "reputation"] < 0.5
    # ... and a denser clique (three times as many of its own notes each) is still held at 1
    denser = pd.concat(
        [ratings, _frame([(n, f"K{k}", HELPFUL) for n in range(200, 216) for k in range(3)])]
    )
    dense = rp.reputation(denser).raters.set_index("raterParticipantId")
    assert dense.loc["K0", "reputation"] == pytest.approx(1.0, abs=1e-8)


def test_a_given_consensus_decides_who_agrees():
    """Two raters on one note, A HELPFUL, B NOT_HELPFUL: symmetric without a consensus (both
    agree 0, shares 1/2 -> reputation 1 each). With the note's consensus given as 0 (the scorer
    found it not helpful), B agrees 1 and A 0: t_B = 0.5 * 0.15 + 0.85 = 0.925, t_A = 0.075."""
    ratings = _frame([(1, "A", HELPFUL), (1, "B", NOT_HELPFUL)])
    plain = rp.reputation(ratings).raters.set_index("raterParticipantId")["reputation"]
    assert plain["A"] == pytest.approx(1.0) and plain["B"] == pytest.approx(1.0)
    given = rp.reputation(ratings, note_consensus=pd.Series({1: 0.0}))
    rep = given.raters.set_index("raterParticipantId")["reputation"]
    assert rep["B"] == pytest.approx(0.925 / 0.5)
    assert rep["A"] == pytest.approx(0.075 / 0.5)


def test_converges_to_the_same_point_from_any_seed_within_the_contraction_bound():
    rng = np.random.default_rng(3)
    levels = np.array([NOT_HELPFUL, SOMEWHAT_HELPFUL, HELPFUL])
    rows = [
        (int(n), f"R{int(u)}", levels[int(v)])
        for n, u, v in zip(rng.integers(0, 300, 6000), rng.integers(0, 400, 6000), rng.integers(0, 3, 6000))
    ]  # fmt: skip
    ratings = _frame(rows).drop_duplicates(["noteId", "raterParticipantId"])
    cfg = rp.ReputationConfig(tolerance=1e-12)
    results = [
        rp.reputation(ratings, rp.ReputationConfig(tolerance=1e-12, seed=s)) for s in (0, 1, 2)
    ]
    for r in results:
        assert r.converged
        # the L1 change shrinks by d = 0.85 a round from at most 2: log(1e-12 / 2) / log(0.85)
        assert r.iterations <= np.ceil(np.log(cfg.tolerance / 2) / np.log(cfg.damping)) + 1
    a, b, c = (r.raters["reputation"].to_numpy() for r in results)
    assert np.abs(a - b).max() < 1e-8 and np.abs(a - c).max() < 1e-8
    # trust is conserved: reputations weighted by rating share average to 1
    share = results[0].raters["ratings"] / results[0].raters["ratings"].sum()
    assert float((share * results[0].raters["reputation"]).sum()) == pytest.approx(1.0)


def test_version_one_ratings_and_bad_levels():
    ratings = pd.DataFrame(
        {
            "noteId": [1, 1],
            "raterParticipantId": ["A", "B"],
            "helpfulnessLevel": [None, HELPFUL],
            "helpful": [1, 0],
            "notHelpful": [0, 0],
        }
    )
    assert rp.helpful_num(ratings).tolist() == [1.0, 1.0]
    bad = _frame([(1, "A", "VERY_HELPFUL")])
    with pytest.raises(UserError, match="VERY_HELPFUL"):
        rp.reputation(bad)
    with pytest.raises(UserError, match="damping"):
        rp.reputation(_frame([(1, "A", HELPFUL)]), rp.ReputationConfig(damping=1.0))
