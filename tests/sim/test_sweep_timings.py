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
