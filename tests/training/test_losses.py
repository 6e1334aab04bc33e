"""Harmful-head loss weighting, checked against hand-computed values."""

import math

import numpy as np
import pytest
import torch

from training.config import TrainConfig
from training.multitask import view_weights, weighted_bce


def test_view_weights_floor_log_and_cap():
    # views 0 -> log(1) = 0 -> floor 0.5; views 10 -> log(11) = 2.397895; views 1000 -> log(1001) = 6.9088 -> cap 5
    w = view_weights([0, 10, 1000, np.nan], cap=5.0, floor=0.5)
    assert w == pytest.approx([0.5, 2.3978952728, 5.0, 0.5])


def test_weighted_bce_three_examples():
    logits = torch.tensor([0.0, 2.0, -1.0])
    y = torch.tensor([1.0, 0.0, 0.0])
    w = torch.tensor([0.5, 2.3978952728, 5.0])
    # BCE(z, 1) = log(1 + e^-z), BCE(z, 0) = log(1 + e^z)
    bce = [
        math.log(2.0),
        math.log(1 + math.e**2),
        math.log(1 + math.e**-1),
    ]  # 0.693147, 2.126928, 0.313262
    expected = (0.5 * bce[0] + 2.3978952728 * bce[1] + 5.0 * bce[2]) / (0.5 + 2.3978952728 + 5.0)
    assert expected == pytest.approx(0.8880, abs=1e-4)  # (0.34657 + 5.10013 + 1.56631) / 7.89790
    assert float(weighted_bce(logits, y, w)) == pytest.approx(expected, rel=1e-6)


def test_total_loss_combines_heads_with_alpha_beta_gamma():
    from training.multitask import MultiTaskModel

    cfg = TrainConfig(alpha=2.0, beta=0.5, gamma=3.0)
    model = MultiTaskModel(cfg, [], [])
    logit = torch.tensor([0.0, 0.0])
    rate_pred = torch.tensor([1.0, 3.0])
    type_logits = torch.zeros(2, 4)
    targets = (
        torch.tensor([1.0, 0.0]),
        torch.tensor([1.0, 1.0]),
        torch.tensor([0.0, 1.0]),
        torch.zeros(2, 4),
    )
    total, parts = model.loss((logit, rate_pred, type_logits), targets)
    # every BCE at logit 0 is log 2; MSE = ((1-0)^2 + (3-1)^2) / 2 = 2.5
    assert parts["primary"] == pytest.approx(math.log(2))
    assert parts["reports"] == pytest.approx(2.5)
    assert parts["types"] == pytest.approx(math.log(2))
    assert float(total) == pytest.approx(2.0 * math.log(2) + 0.5 * 2.5 + 3.0 * math.log(2))
