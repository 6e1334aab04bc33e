"""Ranking metrics: NDCG@k with linear gains and log2 discounts (scikit-learn's definition)."""

from __future__ import annotations

import numpy as np


def dcg_at_k(gains_in_order: np.ndarray, k: int) -> float:
    g = np.asarray(gains_in_order, dtype=float)[:k]
    return float((g / np.log2(np.arange(2, len(g) + 2))).sum())


def ndcg_at_k(gains: np.ndarray, order: np.ndarray, k: int = 10) -> float:
    """NDCG@k of showing items ``order`` (positions into ``gains``, best first).

    ``gains`` must be non-negative; 0.0 when every gain is 0 (as scikit-learn's ``ndcg_score``).
    """
    gains = np.asarray(gains, dtype=float)
    if (gains < 0).any():
        raise ValueError("NDCG needs non-negative gains.")
    ideal = dcg_at_k(np.sort(gains)[::-1], k)
    return dcg_at_k(gains[np.asarray(order)], k) / ideal if ideal > 0 else 0.0
