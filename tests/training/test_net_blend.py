"""The net blended with the baseline (TrainConfig.net_blend): the harmful logit is the weighted
sum of the net's logit and the baseline regression's decision function, on every scoring path."""

import numpy as np
import pytest

from tests.training.conftest import make_training_set
from training import baseline
from training.config import DRY_RUN_OVERRIDES, from_dict
from training.multitask import MultiTaskModel


@pytest.fixture(scope="module")
def fitted():
    """(net, baseline, validation rows, their embeddings, training set): fitted once."""
    ts = make_training_set()
    cfg = from_dict({**DRY_RUN_OVERRIDES, "epochs": 2, "wide_ngrams": 2**10})
    train, val = ts.split("train"), ts.split("val").head(40).reset_index(drop=True)
    rng = np.random.default_rng(2)
    net = MultiTaskModel(cfg, ts.behavior_columns, ts.creator_columns).fit(
        train, rng.normal(size=(len(train), 384)).astype(np.float32)
    )
    base = baseline.fit(train, ts.numeric_columns, cfg)
    emb = rng.normal(size=(len(val), 384)).astype(np.float32)
    return net, base, val, emb, ts


def _logit(p):
    return np.log(p / (1 - p))


def test_blend_is_the_weighted_sum_of_both_logits(fitted):
    net, base, val, emb, ts = fitted
    alone = net.predict(val, emb)
    # the regression's own logit, not through predict_proba
    base_logit = base.decision_function(val[["text", *ts.numeric_columns]])
    net.blend_with(base, 0.3)
    blended = net.predict(val, emb)
    assert _logit(blended) == pytest.approx(0.7 * _logit(alone) + 0.3 * base_logit, abs=1e-6)
    net.blend_with(base, 1.0)  # all baseline
    assert net.predict(val, emb) == pytest.approx(base.predict_proba(val[base_cols(base)])[:, 1])
    net.blend_with(base, 0.0)  # off: the net alone again
    assert net.predict(val, emb) == pytest.approx(alone)
    assert net.blend is None
    with pytest.raises(ValueError, match="net_blend"):
        net.blend_with(base, 1.5)


def base_cols(base):
    return ["text", *base.named_steps["features"].transformers[2][2]]


def test_one_post_serving_path_blends_too(fitted):
    from training.online import FastHeavy

    net, base, val, emb, _ = fitted
    net.blend_with(base, 0.4)
    fast = FastHeavy.of(net)
    batch = net.predict(val, emb)
    columns = [*net.behavior_columns, *net.creator_columns]
    for i in range(5):
        row = {c: float(val.loc[i, c]) for c in columns}
        got = fast.predict_all(val.loc[i, "text"], row, emb[i : i + 1])["harmful"]
        assert got[0] == pytest.approx(batch[i], abs=1e-5)


def test_config_rejects_a_weight_outside_0_1():
    assert from_dict({"net_blend": 0.3}).net_blend == 0.3
    with pytest.raises(Exception, match="net_blend"):
        from_dict({"net_blend": -0.1})
