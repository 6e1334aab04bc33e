"""The bot harness's grading on hand-made rows: which row is "the second day of activity", and the
figures graded on it (sim.accounts_harness)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.accounts_harness import _grade, activity_day2_rows, target_met


def _rows(user_id: int, events: list[int], first: str = "2026-10-02") -> pd.DataFrame:
    ets = pd.date_range(first, periods=len(events), freq="D", tz="UTC")
    return pd.DataFrame({"user_id": user_id, "event_timestamp": ets, "events_7d": events})


def test_activity_day2_row_is_the_day_after_the_first_active_row():
    rows = pd.concat(
        [
            # signs up on 10-01, silent on 10-01 and 10-02, first event on 10-03 (its first row
            # with events is 10-04 00:00); its second day of activity is 10-04: row 10-05
            _rows(1, [0, 0, 1, 3, 3]),
            # acts on its sign-up day 10-01: second day of activity = second day of life, row 10-03
            _rows(2, [2, 5, 5, 0, 0]),
            # never acts: no row
            _rows(3, [0, 0, 0, 0, 0]),
            # first event on 10-05, the last day: its second day of activity is past the last row
            _rows(4, [0, 0, 0, 0, 4]),
            # created on 10-03 (first row 10-04), first event 10-04: row 10-06
            _rows(5, [1, 1, 1], first="2026-10-05"),
        ],
        ignore_index=True,
    )
    got = activity_day2_rows(rows).set_index("user_id")["event_timestamp"]
    want = {
        1: pd.Timestamp("2026-10-05", tz="UTC"),
        2: pd.Timestamp("2026-10-03", tz="UTC"),
        5: pd.Timestamp("2026-10-06", tz="UTC"),
    }
    assert got.to_dict() == want


def test_grade_counts_silent_bots_ceiling_and_false_positives():
    # 4 bots (one silent), 3 humans; threshold 0.5; the silent bot scores 0.9 but cannot be flagged
    rows = pd.DataFrame(
        {
            "is_bot": [1, 1, 1, 1, 0, 0, 0],
            "bot_score": [0.9, 0.8, 0.3, 0.9, 0.7, 0.2, 0.1],
            "is_flagged": [1, 1, 0, 0, 1, 0, 0],
            "events_7d": [5, 3, 2, 0, 1, 1, 0],
        }
    )
    g = _grade(rows, 0.5)
    # flagged: the two active bots >= 0.5 and one human -> precision 2/3, recall 2/4
    assert g["precision_at_threshold"] == pytest.approx(2 / 3)
    assert g["recall_at_threshold"] == pytest.approx(0.5)
    assert g["false_positives"] == 1 and g["silent_bots"] == 1
    assert g["recall_ceiling_active"] == pytest.approx(3 / 4)
    # over active accounts only: 0.9 (bot), 0.8 (bot) reach precision 1 -> recall 2/4
    assert g["best_recall_at_p95_active"] == pytest.approx(0.5)
    # unrestricted: 0.9, 0.9, 0.8 are all bots -> 3/4
    assert g["best_recall_at_p95"] == pytest.approx(0.75)
    assert not target_met(g)
    assert target_met({"precision_at_threshold": 0.95, "recall_at_threshold": 0.9})
    assert not target_met({"precision_at_threshold": np.nan, "recall_at_threshold": 0.0})
