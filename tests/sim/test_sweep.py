"""The seed sweep's table and target check on hand-made per-seed results (no world is built)."""

import math

from sim import sweep


def _result(seed, base, net, cascade_views, precisions):
    def model(recall, views, precision):
        return {
            "recall_at_95p": recall,
            "views_prevented": views,
            "removal_precision": precision,
            "harassment_recall": 0.5,
            "harassment_posts": 4,
            "young_recall": float("nan"),
            "young_posts": 0,
        }

    return {
        "params": {"seed": seed},
        "test_harmful_posts": 50,
        "models": {
            "baseline": model(base[0], base[1], precisions[0]),
            "multitask": model(net[0], net[1], precisions[1]),
            "cascade": model(float("nan"), cascade_views, precisions[2]),
        },
    }


RESULTS = [
    _result(1, (0.5, 0.6), (0.7, 0.8), 0.7, (0.96, 0.97, 0.99)),
    _result(2, (0.5, 0.6), (0.4, 0.9), 0.5, (0.94, 0.97, 0.99)),
    {"seed": 3, "failed": True},
]


def test_stats_by_hand():
    mean, lo, hi, std = sweep._stats([0.7, 0.4, float("nan")])
    assert (lo, hi) == (0.4, 0.7)
    assert math.isclose(mean, 0.55)
    assert math.isclose(std, math.sqrt(((0.15) ** 2 * 2) / 1))  # sample std of two values


def test_table_rows_and_failed_seed_left_out():
    text = sweep.table(RESULTS)
    assert "| seed 1 | seed 2 | mean |" in text and "seed 3" not in text.split("\n")[0]
    row = next(line for line in text.splitlines() if line.startswith("| multitask | recall@95%P"))
    assert row == "| multitask | recall@95%P | 0.700 | 0.400 | 0.550 | 0.400-0.700 | 0.212 |"
    young = next(line for line in text.splitlines() if "baseline | young" in line)
    assert "nan" in young


def test_targets_name_what_fails():
    lines = sweep.targets(RESULTS)
    assert lines[0] == "seed 1: all hold"
    assert lines[1].startswith("seed 2: NOT: ")
    assert "net beats baseline (recall@95%P)" in lines[1]
    assert "cascade beats baseline (views prevented)" in lines[1]
    assert "removals >= 95% harmful (all models)" in lines[1]
    assert "net beats baseline (views prevented)" not in lines[1]
    assert lines[2] == "seed 3: FAILED"


def test_retrain_results_are_kept_apart_and_need_a_finished_world(tmp_path, monkeypatch):
    import pytest

    from vigil.errors import UserError

    assert sweep.result_file(None) == "sweep-result.json"
    assert sweep.result_file("stack") == "sweep-result-stack.json"
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    with pytest.raises(UserError, match="without --retrain first"):
        sweep.retrain_one(1, None)
