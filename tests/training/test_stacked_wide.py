"""The net's stacked wide part: out-of-fold logits by hand-refitted regressions, and the folded-in
weights reproduce the logit the deep part was trained against."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from training.config import TrainConfig
from training.multitask import stack_logit, stacked_wide


def _data():
    # 8 rows, 4 posts of 2 scoring events each; n-gram columns: 0 "vermin", 1 "brew", 2 "the"
    x = sp.csr_matrix(
        np.array(
            [
                [1, 0, 1], [1, 0, 1],  # post 10: harmful
                [0, 1, 1], [0, 1, 1],  # post 11: benign
                [1, 0, 0], [1, 0, 0],  # post 12: harmful
                [0, 1, 0], [0, 1, 0],  # post 13: benign
            ],
            dtype=np.float64,
        )
    )  # fmt: skip
    y = np.array([1, 1, 0, 0, 1, 1, 0, 0])
    w = np.array([1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 3.0, 1.0])
    posts = np.array([10, 10, 11, 11, 12, 12, 13, 13])
    return x, y, w, posts


def _fit(x, y, w, rows):
    clf = LogisticRegression(C=1.0, solver="liblinear", max_iter=300, random_state=3)
    return clf.fit(x[rows], y[rows], sample_weight=w[rows])


def test_out_of_fold_logits_come_from_regressions_that_never_saw_the_post():
    x, y, w, posts = _data()
    # as many folds as posts: leave one post out, whatever the seeded shuffle
    cfg = TrainConfig(wide_stack_folds=4, wide_stack_C=1.0, baseline_max_iter=300, seed=3)
    out = stacked_wide(x, y, w, posts, cfg)
    for post in np.unique(posts):
        rows = posts == post
        expected = _fit(x, y, w, ~rows).decision_function(x[rows])
        assert out["oof"][rows] == pytest.approx(expected)
    full = _fit(x, y, w, np.ones(len(y), dtype=bool))
    assert out["coef"] == pytest.approx(full.coef_.ravel())
    assert out["intercept"] == pytest.approx(float(full.intercept_[0]))
    # the full regression's logit: coef . x + intercept ("vermin" pushes up, "brew" down)
    logit = stack_logit(out, x)
    assert logit[0] == pytest.approx(out["coef"][0] + out["coef"][2] + out["intercept"], rel=1e-6)
    assert out["coef"][0] > 0 > out["coef"][1]


def test_a_posts_scoring_events_share_a_fold():
    x, y, w, posts = _data()
    cfg = TrainConfig(wide_stack_folds=2, baseline_max_iter=300, seed=3)
    out = stacked_wide(x, y, w, posts, cfg)
    for post in np.unique(posts):
        value = out["oof"][posts == post]
        assert len(set(np.round(value, 12))) == 1  # a post's scoring events share a fold


def test_folded_in_net_scores_deep_plus_regression_logit():
    """After fit, the net's harmful logit = deep part + the full regression's n-gram logit."""
    import torch

    from tests.training.test_losses import _tiny_frame
    from training.multitask import MultiTaskModel

    train, emb_train = _tiny_frame(120, 1)
    val, emb_val = _tiny_frame(60, 2)
    cfg = TrainConfig(epochs=2, batch_size=32, hidden_text=8, hidden_tabular=4, hidden_shared=8,
                      wide_ngrams=2**8, wide_stack=True, wide_stack_folds=3)  # fmt: skip
    model = MultiTaskModel(cfg, ["b1"], ["c1"]).fit(train, emb_train, val, emb_val)
    x = model._inputs(val, emb_val)
    with torch.no_grad():
        full = model.net(*x)[0].numpy()
        deep_and_bias = model.net(*x[:3], None)[0].numpy()
    wide = model.net.wide.detach().numpy()[:, 0]
    assert np.abs(wide).sum() > 0  # the regression's weights, not the zeros it started with
    assert full == pytest.approx(deep_and_bias + x[3] @ wide, abs=1e-4)
