"""The sweep's table prints each seed's timings (and its wall time when the parent kept it)."""

from sim import sweep


def _model():
    return {
        "recall_at_95p": 0.5,
        "views_prevented": 0.5,
        "removal_precision": 0.97,
        "harassment_recall": 0.5,
        "harassment_posts": 3,
        "young_recall": 0.5,
        "young_posts": 2,
    }


def test_table_prints_timings_per_seed():
    results = [
        {
            "params": {"seed": 4},
            "test_harmful_posts": 10,
            "models": {m: _model() for m in sweep.MODELS},
            "timings": {"simulate": 61.4, "vigil_daily": 300.0, "grade": 99.6},
            "wall_seconds": 470.2,
        },
        {
            "params": {"seed": 7},
            "test_harmful_posts": 10,
            "models": {m: _model() for m in sweep.MODELS},
            "timings": {"train": 12.0},
        },
        {"seed": 9, "failed": True},
    ]
    text = sweep.table(results)
    line = next(x for x in text.splitlines() if x.startswith("Timings"))
    assert line == (
        "Timings in seconds: seed 4: simulate 61 / vigil_daily 300 / grade 100 (wall 470), "
        "seed 7: train 12."
    )


def test_table_without_timings_has_no_timings_line():
    results = [
        {
            "params": {"seed": 1},
            "test_harmful_posts": 1,
            "models": {m: _model() for m in sweep.MODELS},
        }
    ]
    assert "Timings" not in sweep.table(results)


def test_slices_by_hand():
    import pandas as pd

    posts = pd.DataFrame(
        {
            "is_harmful": [1, 1, 1, 0, 1],
            "w": [1.0, 1.0, 2.0, 10.0, 1.0],
            "removed": [1, 0, 1, 1, 0],
        },
        index=pd.Index([1, 2, 3, 4, 5], name="post_id"),
    )
    keys = pd.DataFrame(
        {
            "harm_type": ["spam", "spam", "harassment", "benign", "hate"],
            "account_age_bucket": ["<7d", "<7d", "30-90d", "<7d", "unknown"],
        },
        index=posts.index,
    )
    out = sweep._slices(posts, keys)
    assert set(out["harm_type"]) == {"spam", "harassment", "hate"}
    assert out["harm_type"]["spam"] == {"recall": 0.5, "harmful_posts": 2}
    assert out["harm_type"]["harassment"] == {"recall": 1.0, "harmful_posts": 1}
    assert out["harm_type"]["hate"] == {"recall": 0.0, "harmful_posts": 1}
    assert set(out["account_age_bucket"]) == {"<7d", "30-90d"}  # unknown left out
    assert out["account_age_bucket"]["<7d"] == {"recall": 0.5, "harmful_posts": 2}


def _graded(seed, harass, young, young_posts, slices=None):
    m = _model() | {"harassment_recall": harass, "young_recall": young, "young_posts": young_posts}
    if slices is not None:
        m["slices"] = slices
    return {
        "params": {"seed": seed},
        "test_harmful_posts": 10,
        "models": {k: m for k in sweep.MODELS},
    }


def test_slice_targets_by_hand():
    big_low = {
        "harm_type": {
            "spam": {"recall": 0.84, "harmful_posts": 30},
            "hate": {"recall": 0.10, "harmful_posts": 29},
        },
        "account_age_bucket": {"<7d": {"recall": 0.95, "harmful_posts": 200}},
    }
    ok = {"harm_type": {"spam": {"recall": 0.85, "harmful_posts": 30}}, "account_age_bucket": {}}
    lines = sweep.slice_targets(
        [
            _graded(1, 0.90, 0.90, 100, ok),
            _graded(2, 0.899, 0.95, 99, big_low),
            _graded(3, 0.95, 0.80, 150),
            {"seed": 4, "failed": True},
        ],
        models=("multitask",),
    )
    assert lines == [
        "seed 1 slices: multitask: all hold",
        (
            "seed 2 slices: multitask: NOT: harassment 0.899, young-author not judged (99 posts), "
            "harm_type=spam 0.840"
        ),
        "seed 3 slices: multitask: NOT: young-author 0.800, slices not kept",
    ]
