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


def _arm(p: tuple[float, float, float], v: tuple[float, float, float], removals: int) -> dict:
    keys = ("estimate", "low", "high")
    return {
        "removals": removals,
        "precision": dict(zip(keys, p, strict=True)),
        "harmful_views_prevented": dict(zip(keys, v, strict=True)),
    }


def test_grade_day_arms_labels_and_reports_by_hand():
    # harmful: posts 1, 3, 4 (5 has no truth: benign); harmful views 10 + 0 + 5 = 15
    units = pd.DataFrame(
        {
            "post_id": [1, 2, 3, 4, 5],
            "views": [10, 5, 0, 5, 0],
            "reports": [3, 0, 1, 0, 2],
            "drawn": [True, True, False, False, True],
            # control removes 1 (harmful) and 2 (benign): precision 1/2, prevented harmful 6
            "removed_control": [True, True, False, False, False],
            "prevented_control": [6, 2, 0, 0, 0],
            # candidate removes 1 and 3 (both harmful): precision 1, prevented harmful 4
            "removed_candidate": [True, False, True, False, False],
            "prevented_candidate": [4, 0, 0, 0, 0],
        }
    )
    harmful = pd.Series({1: True, 2: False, 3: True, 4: True})
    report = {
        **_report(0.6, 0.8),
        "reviews": {"first": 3, "second": 2, "third": 1, "labels_used": 6},
        "control": _arm((0.5, 0.4, 0.6), (2.0, 0.0, 5.0), 2),
        "candidate": _arm((0.95, 0.9, 1.0), (4.0, 4.0, 4.0), 2),
    }
    got = e2e.grade_day(report, units, harmful)
    assert got["precision_true_control"] == pytest.approx(0.5)
    assert got["precision_covered_control"] is True
    assert got["prevented_true_control"] == 6.0 and got["prevented_covered_control"] is False
    assert got["precision_true_candidate"] == 1.0 and got["precision_covered_candidate"] is True
    assert got["prevented_true_candidate"] == 4.0 and got["prevented_covered_candidate"] is True
    assert got["removals_drawn_control"] == 2 and got["removals_drawn_candidate"] == 1
    assert (got["reviews_first"], got["reviews_second"], got["reviews_third"]) == (3, 2, 1)
    assert got["labels_used"] == 6 and got["drawn"] == 3
    # reported: posts 1, 3, 5; drawn among them: 1 and 5; harmful: 1 and 3 (10 of 15 views)
    assert (got["reported_units"], got["reported_drawn"], got["reported_harmful"]) == (3, 2, 2)
    assert got["reported_harmful_views_share"] == pytest.approx(10 / 15)
    # a second day: control's intervals miss precision (0.5 outside [0.6, 0.7]), no labels_used
    miss = {**report, "control": _arm((0.65, 0.6, 0.7), (6.0, 5.0, 7.0), 2)}
    other = e2e.grade_day(miss, units, harmful)
    assert other["precision_covered_control"] is False and other["prevented_covered_control"]
    total = e2e.summary([got, other])
    assert total["days"] == 2 and total["covered"] == 2
    assert total["precision_covered_control"] == 1 and total["prevented_covered_control"] == 1
    assert total["precision_covered_candidate"] == 2 and total["prevented_covered_candidate"] == 2
    assert total["labels_used"] == [6, 6, 12] and total["reported_drawn"] == [2, 2, 4]


def test_reports_counted_from_the_lake_for_a_run_without_them(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    units = pd.DataFrame({"post_id": [1, 2, 3], "reports": [0, 0, 0]})
    # no lake partition: unchanged
    assert e2e.with_lake_reports(units, "2026-10-21")["reports"].tolist() == [0, 0, 0]
    from vigil.config import paths

    part = paths().lake_events / "dt=2026-10-21"
    part.mkdir(parents=True)
    ts = pd.Timestamp("2026-10-21 12:00", tz="UTC")
    pd.DataFrame(
        {
            # post 1: two reports, post 3: one report and a view; post 9 is not a unit
            "action": ["report", "report", "view", "report", "report"],
            "post_id": [1, 1, 3, 3, 9],
            "event_ts": [ts] * 5,
        }
    ).to_parquet(part / "events.parquet")
    got = e2e.with_lake_reports(units, "2026-10-21")
    assert got["reports"].tolist() == [2, 0, 1]
