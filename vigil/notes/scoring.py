"""The scorer: filters, first round, contributor helpfulness, second round, statuses, history.

Follows the reference's core scorer prescoring path (mf_base_scorer.MFBaseScorer.
_prescore_notes_and_users) and the meta scorer's status history (note_status_history.py):

1. keep notes with >= 5 ratings, then raters with >= 10, then notes with >= 5 again
   (process_data.filter_ratings: one pass back and forth, not to a fixed point);
2. first round of matrix factorization on those ratings -> prescoring_note_model_output;
3. first-round statuses (status.assign_statuses, final_round=False), contributor helpfulness
   (helpfulness.py);
4. second round on the ratings of raters above the helpfulness threshold, warm-started from the
   first round (the reference's initLearningRate path);
5. final statuses (all rules), stabilization, the 2-week lock, the new status history.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vigil.notes import format as fmt
from vigil.notes import helpfulness, mf, status
from vigil.notes.config import ScoringConfig

log = logging.getLogger(__name__)

SCORER_NAME = "MFCoreScorer"


@dataclass
class Round:
    """One matrix factorization round, keyed by the download's ids."""

    notes: pd.DataFrame  # noteId, internalNoteIntercept, internalNoteFactor1
    raters: pd.DataFrame  # raterParticipantId, internalRaterIntercept, internalRaterFactor1
    global_intercept: float
    fit: mf.FitResult
    n_ratings: int


@dataclass
class ScoringResult:
    prescoring_notes: pd.DataFrame
    scored_notes: pd.DataFrame
    helpfulness_scores: pd.DataFrame
    status_history: pd.DataFrame
    rounds: list[Round] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def filter_ratings(ratings: pd.DataFrame, cfg: ScoringConfig) -> pd.DataFrame:
    """process_data.filter_ratings: notes, then raters, then notes again."""

    # Counts over integer codes (np.bincount) rather than value_counts/isin on string ids.
    raters = pd.factorize(ratings["raterParticipantId"])[0]
    notes = pd.factorize(ratings["noteId"])[0]
    keep = np.ones(len(ratings), dtype=bool)

    def enough(codes: np.ndarray, minimum: int) -> np.ndarray:
        counts = np.bincount(codes[keep], minlength=int(codes.max(initial=-1)) + 1)
        return keep & (counts[codes] >= minimum)

    keep = enough(notes, cfg.min_raters_per_note)
    keep = enough(raters, cfg.min_ratings_per_rater)
    keep = enough(notes, cfg.min_raters_per_note)
    out = ratings[keep]
    log.info(
        "filters (raters >= %d ratings, notes >= %d): %d of %d ratings kept, %d notes, %d raters",
        cfg.min_ratings_per_rater,
        cfg.min_raters_per_note,
        len(out),
        len(ratings),
        out["noteId"].nunique(),
        out["raterParticipantId"].nunique(),
    )
    return out


def run_round(
    ratings: pd.DataFrame,
    cfg: ScoringConfig,
    solver: str,
    seed: int,
    init: Round | None = None,
) -> Round:
    """Fit one round on ``ratings`` (noteId, raterParticipantId, helpfulNum)."""
    rater_codes, rater_ids = pd.factorize(ratings["raterParticipantId"])
    note_codes, note_ids = pd.factorize(ratings["noteId"])
    matrix = mf.RatingMatrix(
        rater=rater_codes.astype(np.int64),
        note=note_codes.astype(np.int64),
        y=ratings["helpfulNum"].to_numpy(dtype=np.float64),
        n_raters=len(rater_ids),
        n_notes=len(note_ids),
    )
    start = None
    if init is not None:
        raters = init.raters.set_index("raterParticipantId").reindex(rater_ids).fillna(0.0)
        notes = init.notes.set_index("noteId").reindex(note_ids).fillna(0.0)
        start = mf.Params(
            rater_intercept=raters["internalRaterIntercept"].to_numpy(),
            rater_factor=raters["internalRaterFactor1"].to_numpy(),
            note_intercept=notes["internalNoteIntercept"].to_numpy(),
            note_factor=notes["internalNoteFactor1"].to_numpy(),
            global_intercept=init.global_intercept,
        )
    result = mf.fit(matrix, cfg, solver=solver, init=start, seed=seed)
    p = result.params
    log.info(
        "%s round on %d ratings (%d notes, %d raters): loss %.6f, %d iterations, %.1f s",
        solver,
        len(ratings),
        matrix.n_notes,
        matrix.n_raters,
        result.loss,
        result.iterations,
        result.seconds,
    )
    return Round(
        notes=pd.DataFrame(
            {
                "noteId": np.asarray(note_ids),
                "internalNoteIntercept": p.note_intercept,
                "internalNoteFactor1": p.note_factor,
            }
        ),
        raters=pd.DataFrame(
            {
                "raterParticipantId": np.asarray(rater_ids),
                "internalRaterIntercept": p.rater_intercept,
                "internalRaterFactor1": p.rater_factor,
            }
        ),
        global_intercept=p.global_intercept,
        fit=result,
        n_ratings=len(ratings),
    )


def _status_table(notes: pd.DataFrame, ratings: pd.DataFrame, rnd: Round) -> pd.DataFrame:
    counts = ratings["noteId"].value_counts().rename("numRatings")
    table = notes[["noteId", "classification"]].merge(rnd.notes, on="noteId", how="left")
    table = table.merge(counts, left_on="noteId", right_index=True, how="left")
    table["numRatings"] = table["numRatings"].fillna(0).astype(np.int64)
    return table


def first_round_statuses(
    notes: pd.DataFrame, ratings: pd.DataFrame, rnd: Round, cfg: ScoringConfig
) -> pd.DataFrame:
    return status.assign_statuses(_status_table(notes, ratings, rnd), cfg, final_round=False)


def final_round_statuses(
    notes: pd.DataFrame, ratings: pd.DataFrame, rnd: Round, cfg: ScoringConfig
) -> pd.DataFrame:
    table = _status_table(notes, ratings, rnd)
    factors = rnd.raters.set_index("raterParticipantId")["internalRaterFactor1"]
    signs = status.note_sign_stats(ratings, factors)
    table = table.merge(signs, on="noteId", how="left")
    return status.assign_statuses(table, cfg, final_round=True)


def score(
    notes: pd.DataFrame,
    ratings: pd.DataFrame,
    cfg: ScoringConfig,
    *,
    previous_history: pd.DataFrame | None = None,
    solver: str = "als",
    seed: int = 0,
    now_millis: int,
) -> ScoringResult:
    """Score ``ratings`` of ``notes`` (frames from vigil.notes.io)."""
    known = ratings["noteId"].isin(notes["noteId"])
    counts = {"ratings_on_unknown_notes": int((~known).sum())}
    if counts["ratings_on_unknown_notes"]:
        log.warning("%d ratings are on notes missing from the notes file: left out", (~known).sum())
    ratings = ratings[known]
    history = status.merge_history(previous_history, notes)

    filtered = filter_ratings(ratings, cfg)
    if filtered.empty:
        counts["ratings_after_filters"] = 0
        log.warning("no ratings pass the filters: every note stays %s", fmt.NEEDS_MORE_RATINGS)
    first = run_round(filtered, cfg, solver, seed) if len(filtered) else None
    rounds = [first] if first else []
    empty = Round(
        pd.DataFrame(columns=["noteId", "internalNoteIntercept", "internalNoteFactor1"]),
        pd.DataFrame(
            columns=["raterParticipantId", "internalRaterIntercept", "internalRaterFactor1"]
        ),
        0.0,
        mf.FitResult(mf.Params(*(np.zeros(0),) * 4, 0.0), 0.0, 0, 0.0, solver),
        0,
    )
    first = first or empty
    scored1 = first_round_statuses(notes, ratings, first, cfg)
    valid = helpfulness.valid_ratings(ratings, scored1, history, cfg)
    scores = helpfulness.helpfulness_scores(
        scored1[["noteId", "internalRatingStatus", "internalNoteIntercept"]],
        notes[["noteId", "noteAuthorParticipantId"]],
        valid,
        cfg,
    )
    helpful = set(scores.loc[scores["aboveHelpfulnessThreshold"], "raterParticipantId"])
    second_ratings = filtered[filtered["raterParticipantId"].isin(helpful)]
    log.info(
        "helpfulness: %d of %d raters above the threshold, %d of %d ratings kept for round 2",
        filtered["raterParticipantId"].drop_duplicates().isin(helpful).sum(),
        filtered["raterParticipantId"].nunique(),
        len(second_ratings),
        len(filtered),
    )
    second = (
        run_round(second_ratings, cfg, solver, seed, init=first) if len(second_ratings) else empty
    )
    if len(second_ratings):
        rounds.append(second)
    scored2 = final_round_statuses(notes, ratings, second, cfg)
    final_counts = second_ratings["noteId"].value_counts()
    scored2["coreNumFinalRoundRatings"] = scored2["noteId"].map(final_counts)
    scored_notes, new_history = finish_statuses(
        scored2, notes, history, cfg, now_millis, stabilize=previous_history is not None
    )
    counts.update(
        ratings=len(ratings),
        ratings_after_filters=len(filtered),
        ratings_round2=len(second_ratings),
        notes=len(notes),
        raters_above_threshold=len(helpful),
    )
    return ScoringResult(
        prescoring_notes=first.notes.assign(scorerName=SCORER_NAME),
        scored_notes=scored_notes,
        helpfulness_scores=_helpfulness_output(scores, first, second),
        status_history=new_history,
        rounds=rounds,
        counts=counts,
    )


def _helpfulness_output(scores: pd.DataFrame, first: Round, second: Round) -> pd.DataFrame:
    out = scores.merge(
        second.raters.rename(
            columns={
                "internalRaterIntercept": "coreRaterIntercept",
                "internalRaterFactor1": "coreRaterFactor1",
            }
        ),
        on="raterParticipantId",
        how="outer",
    ).merge(
        first.raters.rename(
            columns={
                "internalRaterIntercept": "internalFirstRoundRaterIntercept",
                "internalRaterFactor1": "internalFirstRoundRaterFactor1",
            }
        ),
        on="raterParticipantId",
        how="outer",
    )
    for col in [c for c in out.columns if c.endswith("Count")]:
        out[col] = out[col].fillna(0).astype(np.int64)
    out["successfulRatingTotal"] = (
        out["successfulRatingHelpfulCount"] + out["successfulRatingNotHelpfulCount"]
    )
    out["unsuccessfulRatingTotal"] = (
        out["unsuccessfulRatingHelpfulCount"] + out["unsuccessfulRatingNotHelpfulCount"]
    )
    out["aboveHelpfulnessThreshold"] = (
        out["aboveHelpfulnessThreshold"].astype("boolean").fillna(False).astype(bool)
    )
    return out[
        [
            "raterParticipantId",
            "coreRaterIntercept",
            "coreRaterFactor1",
            "crhCrnhRatioDifference",
            "meanNoteScore",
            "raterAgreeRatio",
            "successfulRatingHelpfulCount",
            "successfulRatingNotHelpfulCount",
            "successfulRatingTotal",
            "unsuccessfulRatingHelpfulCount",
            "unsuccessfulRatingNotHelpfulCount",
            "unsuccessfulRatingTotal",
            "aboveHelpfulnessThreshold",
            "internalFirstRoundRaterIntercept",
            "internalFirstRoundRaterFactor1",
        ]
    ].sort_values("raterParticipantId", kind="stable", ignore_index=True)


def finish_statuses(
    scored: pd.DataFrame,
    notes: pd.DataFrame,
    history: pd.DataFrame,
    cfg: ScoringConfig,
    now: int,
    stabilize: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stabilization, the lock, and the updated status history (note_status_history.py).

    Without a previous history (``stabilize=False``) there is no earlier run to wait from: the
    run is treated as the start of a backfill and no note is held back (the reference would
    hold every new CRH note at NMR for one run)."""
    hist = history.set_index("noteId")
    rows = hist.loc[scored["noteId"]].reset_index()
    core_status = scored["internalRatingStatus"].replace(
        status.NEEDS_YOUR_HELP, fmt.NEEDS_MORE_RATINGS
    )
    if stabilize:
        stabilized, stamp = status.stabilize(rows, scored["internalRatingStatus"], cfg, now)
    else:
        stabilized, stamp = core_status, pd.Series(np.nan, index=core_status.index)
    decided_by = np.where(
        (stabilized != core_status) & (core_status == fmt.CURRENTLY_RATED_HELPFUL),
        "NmrDueToMinStableCrhTime (v1.0)",
        status.CORE_MODEL,
    )
    locked = rows["lockedStatus"].notna().to_numpy()
    final = np.where(
        locked, rows["lockedStatus"].to_numpy(dtype=object), stabilized.to_numpy(dtype=object)
    )
    rows = status.update_history(
        rows, final, core_status.to_numpy(), decided_by, stamp.to_numpy(), cfg, now
    )
    out = pd.DataFrame(
        {
            "noteId": scored["noteId"].to_numpy(),
            "coreNoteIntercept": scored["internalNoteIntercept"].to_numpy(),
            "coreNoteFactor1": scored["internalNoteFactor1"].to_numpy(),
            "finalRatingStatus": final,
            "coreActiveRules": scored["internalActiveRules"].to_numpy(),
            "classification": scored["classification"].to_numpy(),
            "createdAtMillis": notes.set_index("noteId")
            .loc[scored["noteId"], "createdAtMillis"]
            .to_numpy(),
            "coreRatingStatus": core_status.to_numpy(),
            "metaScorerActiveRules": decided_by,
            "decidedBy": np.where(locked, "LockedStatus", decided_by),
            "numRatings": scored["numRatings"].to_numpy(),
            "timestampMillisOfCurrentStatus": now,
            "coreNumFinalRoundRatings": scored["coreNumFinalRoundRatings"].to_numpy(),
            "unlockedRatingStatus": stabilized.to_numpy(dtype=object),
            "preStabilizationRatingStatus": core_status.to_numpy(),
        }
    )
    untouched = history[~history["noteId"].isin(scored["noteId"])]
    cols = fmt.column_names(fmt.STATUS_HISTORY_FILE)
    new_history = pd.concat([rows[cols], untouched[cols]], ignore_index=True)
    for name, n in out["finalRatingStatus"].value_counts().items():
        log.info("final status %s: %d notes", name, n)
    return out, new_history.sort_values("noteId", ignore_index=True)
