"""training.online: the fast student path computes exactly what the sklearn student computes.

Reference: ``training.cascade.student_scores`` (the fitted sklearn Pipeline) on the same rows,
for a student distilled on the synthetic training set; no Feast, no server.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bench.serving_world import training_set
from training import cascade
from training.config import DRY_RUN_OVERRIDES, from_dict
from training.online import FastStudent


@pytest.fixture(scope="module")
def student():
    ts = training_set(n_posts=120, seed=5)
    train = ts.split("train")
    teacher = np.where(train["is_harmful"], 0.9, 0.1)
    cfg = from_dict(DRY_RUN_OVERRIDES)
    return cascade.fit_student(train, teacher, ts.numeric_columns, cfg), ts.numeric_columns


WORDS = [
    "you",
    "idiot",
    "hate",
    "sunny",
    "coffee",
    "garden",
    "loser",
    "scam",
    "trash",
    "Émile",
    "café",
    "42",
    "a",
    "I",
    "!!",
    "—",
    "🙂",
]


def test_fast_student_equals_the_sklearn_pipeline(student):
    model, columns = student
    fast = FastStudent.of(model)
    assert fast is not None and fast.hasher.analyzer is not None
    rng = np.random.default_rng(11)
    rows, texts = [], []
    for _ in range(300):
        texts.append(" ".join(rng.choice(WORDS, rng.integers(0, 14))))
        rows.append(
            {
                c: (math.nan if rng.random() < 0.25 else float(rng.integers(-5, 5000)))
                for c in columns
            }
        )
    frame = pd.DataFrame(rows).assign(text=texts)
    reference = cascade.student_scores(model, frame)
    got = np.array([fast.score(t, r) for t, r in zip(texts, rows)])
    np.testing.assert_allclose(got, reference, rtol=0, atol=1e-12)
    assert texts.count("") >= 1  # an empty text scores on the numbers alone


def test_other_student_layouts_keep_the_sklearn_path(student):
    model, _ = student
    words = model.named_steps["features"].named_transformers_["word"]
    saved = words.norm
    try:
        words.norm = None  # not what make_student builds: the hashed path would differ
        fast = FastStudent.of(model)
        assert fast is None or fast.hasher.analyzer is None
    finally:
        words.norm = saved
    assert FastStudent.of(object()) is None


def test_fast_heavy_equals_the_multitask_models_predict_all():
    """A MultiTaskModel fitted on random embeddings (no encoder needed): the one-post path gives
    predict_all's numbers, wide n-grams included."""
    from training.multitask import MultiTaskModel
    from training.online import FastHeavy

    ts = training_set(n_posts=80, seed=6)
    cfg = from_dict({**DRY_RUN_OVERRIDES, "epochs": 2, "wide_ngrams": 2**12})
    train, val = ts.split("train"), ts.split("val")
    rng = np.random.default_rng(2)
    emb = rng.normal(size=(len(train), 384)).astype(np.float32)
    model = MultiTaskModel(cfg, ts.behavior_columns, ts.creator_columns).fit(train, emb)
    fast = FastHeavy.of(model)
    assert fast is not None and fast.hashers is not None
    frame = val.head(40).reset_index(drop=True)
    frame.loc[0, "text"] = ""
    val_emb = rng.normal(size=(len(frame), 384)).astype(np.float32)
    reference = model.predict_all(frame, val_emb)
    columns = [*model.behavior_columns, *model.creator_columns]
    for i in range(len(frame)):
        row = {c: float(frame.loc[i, c]) for c in columns}
        got = fast.predict_all(frame.loc[i, "text"], row, val_emb[i : i + 1])
        assert got["harmful"][0] == pytest.approx(reference["harmful"][i], abs=1e-6)
        np.testing.assert_allclose(got["harm_types"][0], reference["harm_types"][i], atol=1e-6)
