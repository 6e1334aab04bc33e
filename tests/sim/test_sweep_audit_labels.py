"""The seed sweep's table names the score-audit reviews each seed's model paid for (issue 26)."""

from sim import sweep


def _result(seed, labels=None):
    model = {
        "recall_at_95p": 0.5,
        "views_prevented": 0.5,
        "removal_precision": 1.0,
        "harassment_recall": 0.5,
        "harassment_posts": 4,
        "young_recall": 0.5,
        "young_posts": 2,
    }
    out = {
        "params": {"seed": seed},
        "test_harmful_posts": 50,
        "models": {m: dict(model) for m in sweep.MODELS},
    }
    return out | ({"audit_labels": labels} if labels is not None else {})


def test_reviews_line_per_seed():
    text = sweep.table(
        [
            _result(4, {"reviews": 826, "second_reviews": 48, "disagreements": 1}),
            _result(5, {"reviews": 775, "second_reviews": 0, "disagreements": 0}),
        ]
    )
    line = next(x for x in text.splitlines() if x.startswith("Score-audit reviews"))
    assert line == (
        "Score-audit reviews (labels paid for): seed 4: 826 (48 second, 1 disagreeing), "
        "seed 5: 775 (0 second, 0 disagreeing)."
    )


def test_no_line_for_results_graded_before_the_count():
    assert "Score-audit reviews" not in sweep.table([_result(1)])
