"""sim.online_eval_e2e: decision-log rows from batch scores and grading a day's report."""

from __future__ import annotations

import pandas as pd
import pytest

from sim import online_eval_e2e as e2e


def _report(low: float, high: float) -> dict:
    return {
        "day": "2026-10-21",
        "units": 4,
        "labels": 3,
        "prevalence": {"estimate": (low + high) / 2, "low": low, "high": high},
        "prevalence_sample_variance": {"estimate": 0.5, "low": 0.1, "high": 0.2},
        "control": {"precision": {"estimate": 0.9}, "removals": 2},
    }


def test_grade_day_by_hand():
    # harmful views 10 (post 1) + 5 (post 4) of 20: prevalence 0.75; post 5 has no truth (benign)
    units = pd.DataFrame({"post_id": [1, 2, 3, 4, 5], "views": [10, 5, 0, 5, 0]})
    harmful = pd.Series({1: True, 2: False, 3: True, 4: True})
    got = e2e.grade_day(_report(0.6, 0.8), units, harmful)
    assert got["prevalence_true"] == pytest.approx(0.75)
    assert got["covered"] and not got["covered_sample_variance"]
    assert got["width_over_true"] == pytest.approx(0.2 / 0.75)
    assert got["precision_control"] == 0.9 and got["removals_control"] == 2
    assert not e2e.grade_day(_report(0.76, 0.9), units, harmful)["covered"]


def test_decision_rows_with_and_without_the_student():
    events = pd.DataFrame(
        {
            "post_id": [7],
            "author_id": [3],
            "scored_at": [pd.Timestamp("2026-10-21 23:30", tz="UTC")],
            "offset_hours": [24],
            "model_id": ["m"],
            "student": [0.04],
            "routed_to_heavy": [False],
            "probability": [0.0],
            "decision": ["allow"],
        }
    )
    (row,) = e2e.decision_rows(events)
    assert row["decided_at"] == "2026-10-21T23:30:00+00:00"  # the simulated time, not the clock
    assert (row["student"], row["routed_to_heavy"], row["probability"]) == (0.04, False, 0.0)
    (old,) = e2e.decision_rows(events, student=False)
    assert old["student"] is None and old["routed_to_heavy"] is None
