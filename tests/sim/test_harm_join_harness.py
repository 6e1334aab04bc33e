"""The harm-join harness's grading on hand-made rankings (no world): NDCG@10 and harmful slots."""

import math

import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from sim.harm_join_harness import default_gains, grade_top, spread, summarize


def test_harm_join_grade_hand_made_list():
    # five candidates; the 4th (gain 0) is harmful; shown: harmful one first, then the two best
    gains = np.array([3.0, 2.0, 1.0, 0.0, 0.0])
    harmful = np.array([False, False, False, True, False])
    g = grade_top(gains, harmful, np.array([3, 0, 1]))
    dcg = 0 / math.log2(2) + 3 / math.log2(3) + 2 / math.log2(4)
    ideal = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    assert g["ndcg"] == pytest.approx(dcg / ideal)
    assert g["ndcg"] == pytest.approx(0.607492, abs=1e-6)
    assert (g["harmful_slots"], g["slots"]) == (1, 3)


def test_harm_join_grade_matches_sklearn_on_a_full_order():
    gains = np.array([0.0, 2.2, 0.44, 1.2, 0.0, 3.0, 0.1, 0.0, 1.0, 0.5, 2.0, 0.3])
    harmful = np.zeros(12, dtype=bool)
    harmful[[0, 4]] = True
    scores = np.array([12, 3, 5, 9, 11, 1, 7, 2, 4, 6, 8, 10], dtype=float)  # no ties
    g = grade_top(gains, harmful, np.argsort(-scores))
    assert g["ndcg"] == pytest.approx(ndcg_score(gains[None, :], scores[None, :], k=10))
    assert (g["harmful_slots"], g["slots"]) == (2, 10)  # rows 0 and 4 have scores 12 and 11


def test_harm_join_summarize_shares():
    a = {"ndcg": 0.6, "harmful_slots": 1, "slots": 3}
    b = {"ndcg": 1.0, "harmful_slots": 0, "slots": 10}
    s = summarize([a, b])
    assert s["ndcg_at_10"] == pytest.approx(0.8)
    assert (s["harmful_slots"], s["slots"]) == (1, 13)
    assert s["harmful_slot_share"] == pytest.approx(1 / 13, abs=1e-6)
    assert s["harmful_per_1000_slots"] == pytest.approx(76.923, abs=1e-3)
    assert s["users_with_a_harmful_slot"] == 1
    with pytest.raises(ValueError, match="no graded users"):
        summarize([])


def test_harm_join_default_gains_by_hand():
    # followed fresh benign: 1 + 1.2; same but harmful: 2.2 - 6 -> 0; 10 h old unfollowed: 1.2/e
    g = default_gains(np.array([1, 1, 0]), np.array([0, 0, 10 * 3_600_000]),
                      np.array([0, 1, 0]))  # fmt: skip
    assert g == pytest.approx([2.2, 0.0, 1.2 / math.e])


def test_harm_join_spread_over_seeds():
    runs = [{"without_join": {"ndcg_at_10": x, "harmful_slot_share": 0.0,
                              "harmful_per_1000_slots": 0.0},
             "with_join": {"ndcg_at_10": x, "harmful_slot_share": 0.0,
                           "harmful_per_1000_slots": 0.0}} for x in (0.5, 0.7, 0.9)]  # fmt: skip
    s = spread(runs)["with_join.ndcg_at_10"]
    assert (s["mean"], s["min"], s["max"]) == pytest.approx((0.7, 0.5, 0.9))
    assert s["std"] == pytest.approx(0.2)
