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


def _tiny_frame(n: int, seed: int):
    import pandas as pd

    from training.datasets import HARM_COLUMNS

    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.5
    frame = pd.DataFrame(
        {
            "text": np.where(y, "you are vermin", "nice cold brew"),
            "b1": rng.normal(size=n) + y,
            "has_behavior": 1.0,
            "c1": rng.normal(size=n),
            "has_creator": 1.0,
            "is_harmful": y,
            "views_final": rng.integers(0, 500, n).astype(float),
            "report_rate": rng.random(n) * 0.1,
            "sampling_weight": np.where(rng.random(n) < 0.2, 50.0, 1.0),
        }
    )
    for col in HARM_COLUMNS:
        frame[col] = y & (rng.random(n) < 0.5)
    emb = (rng.normal(size=(n, 8)) + y[:, None] * 0.3).astype(np.float32)
    return frame, emb


@pytest.mark.parametrize("rule", ["val_loss", "pr_auc"])
def test_net_keeps_the_epoch_its_selection_rule_names(rule):
    """The kept weights reproduce the best epoch's recorded validation value, recomputed here."""
    from training.multitask import MultiTaskModel

    train, emb_train = _tiny_frame(200, 1)
    val, emb_val = _tiny_frame(120, 2)
    cfg = TrainConfig(
        epochs=5, batch_size=32, hidden_text=8, hidden_tabular=4, hidden_shared=8,
        wide_ngrams=2**8, select_epoch=rule,
    )  # fmt: skip
    model = MultiTaskModel(cfg, ["b1"], ["c1"]).fit(train, emb_train, val, emb_val)
    x, t = model._inputs(val, emb_val), model._targets(val)
    losses = [h["val_loss"] for h in model.history]
    aucs = [h["val_pr_auc"] for h in model.history]
    best = int(np.argmin(losses)) if rule == "val_loss" else int(np.argmax(aucs))
    assert model.best_epoch == best + 1
    assert model.evaluate_loss(x, t)[0] == pytest.approx(losses[best], rel=1e-5)
    assert model._val_pr_auc(x, val) == pytest.approx(aucs[best], rel=1e-6)


def test_unknown_epoch_rule_is_a_user_error():
    from training.config import from_dict
    from vigil.errors import UserError

    with pytest.raises(UserError, match="select_epoch"):
        from_dict({"select_epoch": "last"})
