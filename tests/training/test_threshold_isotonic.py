"""The isotonic removal-threshold rule (local precision >= target) on hand-made scores."""

import math

import numpy as np
import pytest

from training.calibrate import isotonic_removal_threshold
from training.config import from_dict


def pav_by_hand(y, w):
    """Pool adjacent violators on labels sorted by ascending score (a reference implementation):
    returns the fitted value per position."""
    blocks = []  # [sum of w * y, sum of w, count]
    for yi, wi in zip(y, w):
        blocks.append([wi * yi, wi, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, ws, n = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += ws
            blocks[-1][2] += n
    out = []
    for s, ws, n in blocks:
        out += [s / ws] * n
    return np.array(out)


def hand_made():
    # 30 harmful, 1 benign, 12 harmful, then 20 benign; scores strictly descending
    labels = np.array([1] * 30 + [0] + [1] * 12 + [0] * 20)
    return np.linspace(1.0, 0.38, len(labels)), labels


def test_one_benign_label_is_pooled_not_a_cap():
    scores, y = hand_made()
    # By hand: the benign post at rank 31 pools with the 12 harmful below it: 12 / 13 = 0.923.
    out = isotonic_removal_threshold(scores, y, np.ones(len(y)), target=0.9)
    assert out["n_removed"] == 43
    assert out["threshold"] == pytest.approx(scores[42])
    assert out["precision"] == pytest.approx(42 / 43)
    # 0.923 < 0.95: only the 30 harmful posts above it (fit 1.0) are removed
    out = isotonic_removal_threshold(scores, y, np.ones(len(y)), target=0.95)
    assert out["n_removed"] == 30
    assert out["threshold"] == pytest.approx(scores[29])


def test_a_heavy_benign_label_weighs_more():
    # 20 harmful, 1 benign, 20 harmful. Weight 1: the pool below rank 20 is 20 / 21 = 0.952.
    y = np.array([1] * 20 + [0] + [1] * 20)
    scores = np.linspace(1.0, 0.5, len(y))
    assert isotonic_removal_threshold(scores, y, np.ones(41), 0.95)["n_removed"] == 41
    # Weight 10 on the benign label: 20 / 30 = 0.667 < 0.95, so only the top 20
    w = np.ones(41)
    w[20] = 10.0
    out = isotonic_removal_threshold(scores, y, w, 0.95)
    assert out["n_removed"] == 20
    assert out["threshold"] == pytest.approx(scores[19])


def test_agrees_with_pool_adjacent_violators_by_hand():
    rng = np.random.default_rng(5)
    for _ in range(20):
        n = 200
        scores = rng.random(n)
        y = (rng.random(n) < scores**0.2).astype(float)
        w = rng.choice([1.0, 4.0, 10.0], size=n)
        order = np.argsort(scores)
        fit = pav_by_hand(y[order], w[order])
        ok = fit >= 0.9
        want = scores[order][ok].min() if ok.any() else math.inf
        got = isotonic_removal_threshold(scores, y, w, 0.9)["threshold"]
        assert got == pytest.approx(want)


def test_nothing_qualifies_is_inf_and_empty_input():
    assert isotonic_removal_threshold([0.9, 0.8], [0, 1], [1, 1], 0.95)["threshold"] == math.inf
    assert isotonic_removal_threshold([], [], [], 0.95)["n_removed"] == 0


def test_config_accepts_the_rule_and_rejects_unknown_names():
    assert from_dict({"threshold_method": "isotonic"}).threshold_method == "isotonic"
    with pytest.raises(Exception, match="threshold_method"):
        from_dict({"threshold_method": "median"})
