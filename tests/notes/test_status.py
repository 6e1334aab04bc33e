"""Status rules at their boundaries, the filters, stabilization and the 2-week lock (hand cases)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vigil.notes import format as fmt
from vigil.notes import scoring, status
from vigil.notes.config import DAY_MILLIS, MINUTE_MILLIS, ScoringConfig

CFG = ScoringConfig()
CRH, CRNH, NMR = (
    fmt.CURRENTLY_RATED_HELPFUL,
    fmt.CURRENTLY_RATED_NOT_HELPFUL,
    fmt.NEEDS_MORE_RATINGS,
)
NOW = 1_770_000_000_000


def _notes(rows: list[dict]) -> pd.DataFrame:
    base = {
        "numRatings": 20,
        "classification": fmt.MISLEADING,
        "internalNoteFactor1": 0.0,
        "negFactorMeanHelpfulNum": 0.8,
        "posFactorMeanHelpfulNum": 0.8,
        "minSignCount": 10,
        "netMinHelpful": 10,
        "netMinHelpfulRatio": 0.5,
    }
    return pd.DataFrame([{"noteId": i, **base, **row} for i, row in enumerate(rows)])


def test_crh_threshold_is_an_intercept_of_0_40():
    out = status.assign_statuses(
        _notes([{"internalNoteIntercept": 0.399}, {"internalNoteIntercept": 0.401}]), CFG, True
    )
    assert out["internalRatingStatus"].tolist() == [NMR, CRH]


def test_large_factor_keeps_a_note_from_crh_in_the_final_round_only():
    notes = _notes(
        [
            {"internalNoteIntercept": 0.5, "internalNoteFactor1": 0.49},
            {"internalNoteIntercept": 0.5, "internalNoteFactor1": 0.51},
            {"internalNoteIntercept": 0.5, "internalNoteFactor1": -0.51},
        ]
    )
    final = status.assign_statuses(notes, CFG, final_round=True)
    assert final["internalRatingStatus"].tolist() == [CRH, NMR, NMR]
    assert final["internalActiveRules"].tolist()[1] == "FilterLargeFactor"
    first = status.assign_statuses(notes, CFG, final_round=False)
    assert first["internalRatingStatus"].tolist() == [CRH, CRH, CRH]


def test_not_misleading_notes_never_reach_crh_and_go_crnh_below_minus_0_15():
    notes = _notes(
        [
            {"internalNoteIntercept": 0.6, "classification": fmt.NOT_MISLEADING},
            {"internalNoteIntercept": -0.149, "classification": fmt.NOT_MISLEADING},
            {"internalNoteIntercept": -0.151, "classification": fmt.NOT_MISLEADING},
        ]
    )
    out = status.assign_statuses(notes, CFG, final_round=True)
    # -0.149 is also under the diamond (-0.05 - 0.8 * 0): CRNH by GeneralCRNH.
    assert out["internalRatingStatus"].tolist() == [NMR, CRNH, CRNH]
    assert out["internalActiveRules"].tolist() == ["InitialNMR", "GeneralCRNH", "NmCRNH"]


def test_crnh_diamond_widens_with_the_factor():
    # threshold = -0.05 - 0.8 * |f|: at f = 0.25 it is -0.25.
    notes = _notes(
        [
            {"internalNoteIntercept": -0.249, "internalNoteFactor1": 0.25},
            {"internalNoteIntercept": -0.251, "internalNoteFactor1": -0.25},
        ]
    )
    out = status.assign_statuses(notes, CFG, final_round=False)
    assert out["internalRatingStatus"].tolist() == [NMR, CRNH]


def test_fewer_than_5_ratings_get_no_status():
    notes = _notes(
        [
            {"internalNoteIntercept": 0.9, "numRatings": 4},
            {"internalNoteIntercept": 0.9, "numRatings": 5},
        ]
    )
    assert status.assign_statuses(notes, CFG, True)["internalRatingStatus"].tolist() == [NMR, CRH]


def test_minority_side_needs_4_net_helpful_ratings_and_a_5_percent_balance():
    notes = _notes(
        [
            {"internalNoteIntercept": 0.5, "netMinHelpful": 3, "netMinHelpfulRatio": 0.5},
            {"internalNoteIntercept": 0.5, "netMinHelpful": 4, "netMinHelpfulRatio": 0.05},
            {"internalNoteIntercept": 0.5, "netMinHelpful": 4, "netMinHelpfulRatio": 0.049},
            {"internalNoteIntercept": 0.5, "netMinHelpful": 10, "netMinHelpfulRatio": 0.01},
        ]
    )
    out = status.assign_statuses(notes, CFG, True)
    assert out["internalRatingStatus"].tolist() == [
        status.NEEDS_YOUR_HELP,
        CRH,
        status.NEEDS_YOUR_HELP,
        CRH,
    ]


def test_sign_stats_count_net_helpful_ratings_per_factor_side():
    ratings = pd.DataFrame(
        {
            "noteId": [1] * 7,
            "raterParticipantId": list("abcdefg"),
            "helpfulNum": [1.0, 1.0, 0.0, 0.5, 1.0, 1.0, 1.0],
        }
    )
    factors = pd.Series({"a": -1.0, "b": -0.5, "c": -0.2, "d": -0.1, "e": 0.3, "f": 0.4, "g": 0.9})
    row = status.note_sign_stats(ratings, factors).iloc[0]
    assert row["negFactor_ratingCount"] == 4 and row["posFactor_ratingCount"] == 3
    assert row["netMinHelpful"] == 1  # negative side: 2 helpful - 1 not helpful
    assert row["netMinHelpfulRatio"] == 1 / 7
    assert row["negFactorMeanHelpfulNum"] == (1 + 1 + 0 + 0.5) / 4


def test_filters_drop_a_rater_with_9_ratings_and_notes_left_with_4():
    rows = []
    # Raters r0..r5 rate notes 0..9 (10 ratings each); r9 rates notes 0..7 and 99 (9 ratings).
    for r in range(6):
        rows += [(f"r{r}", n) for n in range(10)]
    rows += [("r9", n) for n in range(8)]
    # Note 99 has 5 ratings, but 1 is from r9: after r9 goes, 4 are left and it goes too.
    rows += [(f"r{r}", 99) for r in range(4)] + [("r9", 99)]
    ratings = pd.DataFrame(rows, columns=["raterParticipantId", "noteId"]).assign(helpfulNum=1.0)
    kept = scoring.filter_ratings(ratings, CFG)
    assert "r9" not in set(kept["raterParticipantId"])
    assert set(kept["raterParticipantId"]) == {f"r{r}" for r in range(6)}
    assert 99 not in set(kept["noteId"])
    assert len(kept) == 60


def _history(created: int, current: str | float = np.nan, stamp: float = np.nan) -> pd.DataFrame:
    notes = pd.DataFrame(
        {"noteId": [1], "noteAuthorParticipantId": ["a"], "createdAtMillis": [created]}
    )
    history = status.empty_history(notes)
    history["currentStatus"] = current
    history["timestampMillisOfNmrDueToMinStableCrhTime"] = stamp
    return history


def test_stabilization_holds_a_new_crh_note_for_30_minutes():
    crh = pd.Series([CRH])
    first, stamp = status.stabilize(_history(NOW - DAY_MILLIS), crh, CFG, NOW)
    assert first.tolist() == [NMR] and stamp.tolist() == [NOW]
    later = NOW + 29 * MINUTE_MILLIS
    held, stamp2 = status.stabilize(_history(NOW - DAY_MILLIS, NMR, NOW), crh, CFG, later)
    assert held.tolist() == [NMR] and stamp2.tolist() == [NOW]
    later = NOW + 31 * MINUTE_MILLIS
    shown, stamp3 = status.stabilize(_history(NOW - DAY_MILLIS, NMR, NOW), crh, CFG, later)
    assert shown.tolist() == [CRH] and stamp3.tolist() == [-1]
    # A note that was CRH stays CRH without waiting, and NYH keeps it CRH.
    kept, _ = status.stabilize(
        _history(NOW - DAY_MILLIS, CRH), pd.Series([status.NEEDS_YOUR_HELP]), CFG, NOW
    )
    assert kept.tolist() == [CRH]


def _update(created: int, final: str, locked: str | float = np.nan) -> pd.DataFrame:
    rows = _history(created)
    rows["lockedStatus"] = locked
    return status.update_history(
        rows,
        np.array([final], dtype=object),
        np.array([final], dtype=object),
        np.array([status.CORE_MODEL]),
        np.array([np.nan]),
        CFG,
        NOW,
    )


def test_statuses_lock_two_weeks_after_the_note_was_written():
    two_weeks = 14 * DAY_MILLIS
    young = _update(NOW - two_weeks + 1, CRH)
    assert pd.isna(young.loc[0, "lockedStatus"])
    old = _update(NOW - two_weeks - 1, CRH)
    assert old.loc[0, "lockedStatus"] == CRH
    assert old.loc[0, "timestampMillisOfStatusLock"] == NOW
    assert old.loc[0, "firstNonNMRStatus"] == CRH
    assert old.loc[0, "timestampMillisOfFirstNonNMRStatus"] == NOW


def test_a_locked_note_keeps_its_status_whatever_the_new_scores():
    notes = pd.DataFrame(
        {
            "noteId": [1],
            "noteAuthorParticipantId": ["a"],
            "createdAtMillis": [NOW - 30 * DAY_MILLIS],
            "classification": [fmt.MISLEADING],
        }
    )
    history = status.empty_history(notes)
    history["lockedStatus"] = CRH
    history["currentStatus"] = CRH
    scored = status.assign_statuses(
        _notes([{"internalNoteIntercept": -0.5}]).assign(noteId=[1]), CFG, True
    ).assign(coreNumFinalRoundRatings=20)
    assert scored["internalRatingStatus"].tolist() == [CRNH]
    out, new_history = scoring.finish_statuses(scored, notes, history, CFG, NOW)
    assert out["finalRatingStatus"].tolist() == [CRH]
    assert out["coreRatingStatus"].tolist() == [CRNH]
    assert new_history["currentStatus"].tolist() == [CRH]
