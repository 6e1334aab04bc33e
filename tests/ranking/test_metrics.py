"""NDCG@k against scikit-learn's ndcg_score and a hand computation."""

import math

import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from vigil.ranking.metrics import ndcg_at_k


def test_hand_computed():
    # gains 3, 2, 0 shown in the order 2, 0, 1 (gains 0, 3, 2)
    dcg = 0 / math.log2(2) + 3 / math.log2(3) + 2 / math.log2(4)
    ideal = 3 / math.log2(2) + 2 / math.log2(3) + 0
    assert ndcg_at_k(np.array([3.0, 2.0, 0.0]), np.array([2, 0, 1]), k=3) == pytest.approx(
        dcg / ideal
    )


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [1, 3, 10])
def test_matches_sklearn(seed, k):
    rng = np.random.default_rng(seed)
    gains = rng.integers(0, 5, size=25).astype(float)
    scores = rng.permutation(25).astype(float)  # no ties
    expected = ndcg_score(gains[None, :], scores[None, :], k=k)
    assert ndcg_at_k(gains, np.argsort(-scores), k=k) == pytest.approx(expected)


def test_all_zero_gains_and_negative_gains():
    assert ndcg_at_k(np.zeros(4), np.arange(4)) == 0.0
    with pytest.raises(ValueError):
        ndcg_at_k(np.array([1.0, -1.0]), np.arange(2))
