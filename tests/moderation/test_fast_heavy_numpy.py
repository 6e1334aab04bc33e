"""The heavy model's one-post forward in NumPy (training.online.FastHeavy) equals torch's forward
of the same network, wide n-grams (and the numeric linear term, TrainConfig.wide_numeric)
included, and is the path FastHeavy takes."""

from __future__ import annotations

import numpy as np
import pytest

from bench.serving_world import training_set
from training.config import DRY_RUN_OVERRIDES, from_dict


@pytest.mark.parametrize("wide_numeric", [False, True])
def test_numpy_forward_equals_torch_forward(wide_numeric):
    from training.multitask import MultiTaskModel
    from training.online import FastHeavy

    ts = training_set(n_posts=80, seed=9)
    cfg = from_dict(
        {**DRY_RUN_OVERRIDES, "epochs": 2, "wide_ngrams": 2**12, "wide_numeric": wide_numeric}
    )
    train, val = ts.split("train"), ts.split("val")
    rng = np.random.default_rng(4)
    model = MultiTaskModel(cfg, ts.behavior_columns, ts.creator_columns).fit(
        train, rng.normal(size=(len(train), 384)).astype(np.float32)
    )
    fast = FastHeavy.of(model)
    assert fast is not None and fast.layers is not None  # the NumPy path is the one served
    layers = fast.layers
    # the numeric term is served only with the option, and has trained away from its zero start
    assert (layers["numeric"] is not None) == wide_numeric
    if wide_numeric:
        n_numeric = len(model.behavior_columns) + len(model.creator_columns)
        assert layers["numeric"].shape == (n_numeric,) and np.abs(layers["numeric"]).max() > 0
    columns = [*model.behavior_columns, *model.creator_columns]
    frame = val.head(25).reset_index(drop=True)
    frame.loc[0, "text"] = ""  # no n-gram at all
    for i in range(len(frame)):
        row = {c: float(frame.loc[i, c]) for c in columns}
        emb = rng.normal(size=(1, 384)).astype(np.float32)
        fast.layers = layers
        got = fast.predict_all(frame.loc[i, "text"], row, emb)
        fast.layers = None  # torch's forward of the same network
        ref = fast.predict_all(frame.loc[i, "text"], row, emb)
        for key in ("harmful", "report_rate", "harm_types"):
            np.testing.assert_allclose(got[key], ref[key], atol=1e-6, rtol=1e-5)
