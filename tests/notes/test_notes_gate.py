"""The status-distribution gate and the publishing rules, on hand-made numbers.

Shares are worked out by hand: 10/200 = 5%, 40/200 = 20%, a shift of 15 points > 10 fails; a
shift of exactly 10 points passes (the limit is "more than 0.10")."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from vigil.notes import outputs, status_gate
from vigil.notes.format import (
    CURRENTLY_RATED_HELPFUL as CRH,
)
from vigil.notes.format import (
    CURRENTLY_RATED_NOT_HELPFUL as CRNH,
)
from vigil.notes.format import (
    NEEDS_MORE_RATINGS as NMR,
)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "vigil"))
    return tmp_path / "vigil"


def test_shift_of_exactly_the_limit_passes():
    before = {CRH: 30, CRNH: 30, NMR: 140}  # 15%, 15%, 70%
    now = {CRH: 10, CRNH: 30, NMR: 160}  # 5%, 15%, 80%: CRH -10 points, NMR +10 points
    result = status_gate.compare(now, before)
    assert result["passed"]
    assert result["largest"] == pytest.approx(0.10)
    assert result["shifts"][CRH] == pytest.approx(-0.10)
    assert result["shifts"][CRNH] == pytest.approx(0.0)


def test_a_jump_fails_and_small_or_first_runs_pass():
    assert not status_gate.compare({CRH: 40, CRNH: 30, NMR: 130}, {CRH: 10, CRNH: 30, NMR: 160})[
        "passed"
    ]
    first = status_gate.compare({CRH: 40, CRNH: 30, NMR: 130}, None)
    assert first["passed"] and "first run" in first["reason"]
    tiny = status_gate.compare({CRH: 9, CRNH: 0, NMR: 1}, {CRH: 0, CRNH: 0, NMR: 10})
    assert tiny["passed"] and "fewer than 100" in tiny["reason"]


def test_check_names_the_numbers_and_the_fix(home):
    status_gate.record({CRH: 10, CRNH: 30, NMR: 160}, published_at_millis=1_790_000_000_000)
    status_gate.check({CRH: 12, CRNH: 30, NMR: 158})  # 1 point: passes
    with pytest.raises(status_gate.StatusShift) as err:
        status_gate.check({CRH: 40, CRNH: 30, NMR: 130})
    message = str(err.value)
    assert "CURRENTLY_RATED_HELPFUL 5.0% -> 20.0% (+15.0 points)" in message
    assert "NEEDS_MORE_RATINGS 80.0% -> 65.0% (-15.0 points)" in message
    assert "CURRENTLY_RATED_NOT_HELPFUL" not in message.split(":", 1)[1].split(".")[0]
    assert str(status_gate.state_path()) in message
    saved = json.loads(status_gate.state_path().read_text())
    assert saved["counts"] == {CRH: 10, CRNH: 30, NMR: 160}  # a failed check records nothing


def _status_rows(ts: str, rows: list[tuple]) -> pd.DataFrame:
    """rows: (note_id, post_id, status, intercept)."""
    frame = pd.DataFrame(rows, columns=["note_id", "post_id", "status", "note_intercept"])
    frame["event_timestamp"] = pd.Timestamp(ts, tz="UTC")
    frame["post_id"] = frame["post_id"].astype("Int64")
    frame["is_shown"] = (frame["status"] == CRH).astype("int64")
    frame["note_factor"] = 0.1
    frame["first_round_intercept"] = frame["note_intercept"]
    frame["num_ratings"] = 9
    frame["status_since_millis"] = 0
    return frame


def test_best_shown_note_per_post():
    ts = pd.Timestamp("2026-10-10", tz="UTC")
    notes = _status_rows(
        "2026-10-10",
        [
            (1, 100, CRH, 0.45),
            (2, 100, CRH, 0.52),  # the best of post 100
            (3, 100, NMR, 0.90),  # higher, but not shown
            (4, 200, CRNH, -0.2),  # post 200: notes but none shown
            (5, None, CRH, 0.70),  # no post: no row
        ],
    )
    best = outputs._post_best_note(notes, ts).set_index("post_id")
    assert list(best.index) == [100, 200]
    assert best.loc[100, "shown_note_id"] == 2
    assert best.loc[100, "shown_note_intercept"] == pytest.approx(0.52)
    assert (best.loc[100, "notes_on_post"], best.loc[100, "helpful_notes_on_post"]) == (3, 2)
    assert best.loc[200, "shown_note_id"] == 0  # no note shown
    assert (best.loc[200, "notes_on_post"], best.loc[200, "helpful_notes_on_post"]) == (1, 0)


def test_publishing_keeps_one_row_per_note_and_change():
    cols = outputs.features.table_columns("note_status")
    run1 = _status_rows("2026-10-10 10:00", [(1, 100, NMR, 0.2), (2, 100, CRH, 0.5)])[cols]
    run2 = _status_rows("2026-10-10 11:00", [(1, 100, CRH, 0.45), (2, 100, CRH, 0.5)])[cols]
    merged = outputs.merge_changes(None, run1, "note_status")
    merged = outputs.merge_changes(merged, run2, "note_status")
    # note 1 changed (2 rows), note 2 did not (its 11:00 row is a repeat: dropped)
    assert list(zip(merged["note_id"], merged["status"], strict=True)) == [
        (1, NMR),
        (1, CRH),
        (2, CRH),
    ]
    again = outputs.merge_changes(merged, run2, "note_status")  # the same run published twice
    assert again.equals(merged)
