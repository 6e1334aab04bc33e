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
from pandas.core.dtypes.cast import find_common_type

from vigil.notes import format as fmt
from vigil.notes import helpfulness, mf, status
from vigil.notes.codes import RatingCodes, compact
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
    # The round's notes and raters as codes of the run's RatingCodes (rows of ``notes`` and
    # ``raters`` in the same order); None when fitted outside a run.
    note_codes: np.ndarray | None = None
    rater_codes: np.ndarray | None = None


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
    return ratings[_filter_mask(RatingCodes.of(ratings), cfg)]


def _filter_mask(codes: RatingCodes, cfg: ScoringConfig) -> np.ndarray:
    keep = np.ones(len(codes), dtype=bool)

    def enough(by: np.ndarray, size: int, minimum: int) -> np.ndarray:
        return keep & (np.bincount(by[keep], minlength=size)[by] >= minimum)

    keep = enough(codes.note, codes.n_notes, cfg.min_raters_per_note)
    keep = enough(codes.rater, codes.n_raters, cfg.min_ratings_per_rater)
    keep = enough(codes.note, codes.n_notes, cfg.min_raters_per_note)
    log.info(
        "filters (raters >= %d ratings, notes >= %d): %d of %d ratings kept, %d notes, %d raters",
        cfg.min_ratings_per_rater,
        cfg.min_raters_per_note,
        int(keep.sum()),
        len(keep),
        np.count_nonzero(np.bincount(codes.note[keep], minlength=codes.n_notes)),
        np.count_nonzero(np.bincount(codes.rater[keep], minlength=codes.n_raters)),
    )
    return keep


def run_round(
    ratings: pd.DataFrame,
    cfg: ScoringConfig,
    solver: str,
    seed: int,
    init: Round | None = None,
) -> Round:
    """Fit one round on ``ratings`` (noteId, raterParticipantId, helpfulNum), warm-started from
    ``init``'s parameters where it has the rater or note (0 elsewhere)."""
    codes = RatingCodes.of(ratings)
    start = None
    if init is not None:
        raters = init.raters.set_index("raterParticipantId").reindex(codes.rater_ids).fillna(0.0)
        notes = init.notes.set_index("noteId").reindex(codes.note_ids).fillna(0.0)
        start = mf.Params(
            rater_intercept=raters["internalRaterIntercept"].to_numpy(),
            rater_factor=raters["internalRaterFactor1"].to_numpy(),
            note_intercept=notes["internalNoteIntercept"].to_numpy(),
            note_factor=notes["internalNoteFactor1"].to_numpy(),
            global_intercept=init.global_intercept,
        )
    return _fit_round(codes, cfg, solver, seed, start)


def _fit_round(
    codes: RatingCodes, cfg: ScoringConfig, solver: str, seed: int, start: mf.Params | None
) -> Round:
    """Fit one round on the ratings ``codes``; ``start`` is indexed by the run's codes."""
    rater_codes, rater = compact(codes.rater, codes.n_raters)
    note_codes, note = compact(codes.note, codes.n_notes)
    matrix = mf.RatingMatrix(rater, note, codes.y, len(rater_codes), len(note_codes))
    if start is not None:
        start = mf.Params(
            rater_intercept=start.rater_intercept[rater_codes],
            rater_factor=start.rater_factor[rater_codes],
            note_intercept=start.note_intercept[note_codes],
            note_factor=start.note_factor[note_codes],
            global_intercept=start.global_intercept,
        )
    result = mf.fit(matrix, cfg, solver=solver, init=start, seed=seed)
    p = result.params
    log.info(
        "%s round on %d ratings (%d notes, %d raters): loss %.6f, %d iterations, %.1f s",
        solver,
        len(codes),
        matrix.n_notes,
        matrix.n_raters,
        result.loss,
        result.iterations,
        result.seconds,
    )
    return Round(
        notes=pd.DataFrame(
            {
                "noteId": codes.note_ids[note_codes],
                "internalNoteIntercept": p.note_intercept,
                "internalNoteFactor1": p.note_factor,
            }
        ),
        raters=pd.DataFrame(
            {
                "raterParticipantId": codes.rater_ids[rater_codes],
                "internalRaterIntercept": p.rater_intercept,
                "internalRaterFactor1": p.rater_factor,
            }
        ),
        global_intercept=p.global_intercept,
        fit=result,
        n_ratings=len(codes),
        note_codes=note_codes,
        rater_codes=rater_codes,
    )


def _spread(rnd: Round, codes: RatingCodes) -> mf.Params:
    """A round's parameters over all of the run's codes: NaN for raters and notes it lacks."""

    def full(size: int, where: np.ndarray, values: np.ndarray) -> np.ndarray:
        out = np.full(size, np.nan)
        out[where] = values
        return out

    p = rnd.fit.params
    return mf.Params(
        rater_intercept=full(codes.n_raters, rnd.rater_codes, p.rater_intercept),
        rater_factor=full(codes.n_raters, rnd.rater_codes, p.rater_factor),
        note_intercept=full(codes.n_notes, rnd.note_codes, p.note_intercept),
        note_factor=full(codes.n_notes, rnd.note_codes, p.note_factor),
        global_intercept=rnd.global_intercept,
    )


def _status_table(notes: pd.DataFrame, codes: RatingCodes, params: mf.Params) -> pd.DataFrame:
    """One row per note (the notes frame's order): the round's intercept and factor (NaN when
    the round did not score it) and its number of ratings."""
    return pd.DataFrame(
        {
            "noteId": notes["noteId"].to_numpy(),
            "classification": notes["classification"].to_numpy(),
            "internalNoteIntercept": params.note_intercept,
            "internalNoteFactor1": params.note_factor,
            "numRatings": codes.note_counts().astype(np.int64),
        }
    )


def _empty_round(codes: RatingCodes, solver: str) -> Round:
    return Round(
        pd.DataFrame(columns=["noteId", "internalNoteIntercept", "internalNoteFactor1"]),
        pd.DataFrame(
            columns=["raterParticipantId", "internalRaterIntercept", "internalRaterFactor1"]
        ),
        0.0,
        mf.FitResult(mf.Params(*(np.zeros(0),) * 4, 0.0), 0.0, 0, 0.0, solver),
        0,
        np.zeros(0, dtype=np.int64),
        np.zeros(0, dtype=np.int64),
    )


def _known_ratings(notes: pd.DataFrame, ratings: pd.DataFrame) -> tuple[RatingCodes, int]:
    """The codes of the ratings on notes of ``notes``, and how many were on other notes."""
    if not notes["noteId"].is_unique:
        raise ValueError("notes: a noteId occurs twice; pass one row per note (io.read_notes)")
    rows = pd.Index(notes["noteId"]).get_indexer(ratings["noteId"])
    known = rows >= 0
    unknown = int((~known).sum())
    if unknown:
        log.warning("%d ratings are on notes missing from the notes file: left out", unknown)
        ratings = ratings[known]
    return RatingCodes.of(ratings, note_ids=notes["noteId"].to_numpy()), unknown


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
    notes = notes.reset_index(drop=True)
    codes, unknown = _known_ratings(notes, ratings)
    counts = {"ratings_on_unknown_notes": unknown}
    history = status.merge_history(previous_history, notes)

    keep = _filter_mask(codes, cfg)
    filtered = codes.subset(keep)
    if not len(filtered):
        log.warning("no ratings pass the filters: every note stays %s", fmt.NEEDS_MORE_RATINGS)
    empty = _empty_round(codes, solver)
    first = _fit_round(filtered, cfg, solver, seed, None) if len(filtered) else empty
    rounds = [first] if len(filtered) else []
    first_params = _spread(first, codes)
    scored1 = status.assign_statuses(
        _status_table(notes, codes, first_params), cfg, final_round=False
    )
    agreement = helpfulness.rater_agreement(
        codes, scored1["internalRatingStatus"].to_numpy(), history, cfg
    )
    scores = helpfulness.helpfulness_scores(
        codes, scored1, notes["noteAuthorParticipantId"].to_numpy(dtype=object), agreement, cfg
    )
    # Contributors above the threshold all have valid ratings: they are among the raters.
    above = scores["aboveHelpfulnessThreshold"].to_numpy()[: codes.n_raters]
    second_ratings = filtered.subset(above[filtered.rater])
    in_first = first.rater_codes
    log.info(
        "helpfulness: %d of %d raters above the threshold, %d of %d ratings kept for round 2",
        int(above[in_first].sum()),
        len(in_first),
        len(second_ratings),
        len(filtered),
    )
    second = empty
    if len(second_ratings):
        start = mf.Params(*(np.nan_to_num(v) for v in vars(first_params).values()))
        second = _fit_round(second_ratings, cfg, solver, seed, start)
        rounds.append(second)
    scored2 = _final_statuses(notes, codes, second, cfg)
    final_counts = pd.Series(second_ratings.note_counts())
    # Notes without final-round ratings have none (empty in the file); integers otherwise.
    scored2["coreNumFinalRoundRatings"] = (
        final_counts if final_counts.all() else final_counts.where(final_counts > 0)
    )
    scored_notes, new_history = finish_statuses(
        scored2, notes, history, cfg, now_millis, stabilize=previous_history is not None
    )
    counts.update(
        ratings=len(codes),
        ratings_after_filters=len(filtered),
        ratings_round2=len(second_ratings),
        notes=len(notes),
        raters_above_threshold=int(above.sum()),
    )
    return ScoringResult(
        prescoring_notes=first.notes.assign(scorerName=SCORER_NAME),
        scored_notes=scored_notes,
        helpfulness_scores=_helpfulness_output(scores, first_params, _spread(second, codes)),
        status_history=new_history,
        rounds=rounds,
        counts=counts,
    )


def _final_statuses(
    notes: pd.DataFrame, codes: RatingCodes, rnd: Round, cfg: ScoringConfig
) -> pd.DataFrame:
    params = _spread(rnd, codes)
    table = _status_table(notes, codes, params)
    signs = status.sign_stats(codes.note, params.rater_factor[codes.rater], codes.y, codes.n_notes)
    table = pd.concat([table, signs], axis=1)
    return status.assign_statuses(table, cfg, final_round=True)


def _helpfulness_output(scores: pd.DataFrame, first: mf.Params, second: mf.Params) -> pd.DataFrame:
    """helpfulness_scores.tsv: every contributor the scores or either round know, by id.

    ``scores``: helpfulness.helpfulness_scores' (rater codes first); ``first``, ``second``: the
    rounds' parameters by rater code (NaN where a round lacks the rater)."""
    extra = np.full(len(scores) - len(first.rater_factor), np.nan)

    def by_contributor(values: np.ndarray) -> np.ndarray:
        return np.concatenate([values, extra])

    out = scores.assign(
        coreRaterIntercept=by_contributor(second.rater_intercept),
        coreRaterFactor1=by_contributor(second.rater_factor),
        internalFirstRoundRaterIntercept=by_contributor(first.rater_intercept),
        internalFirstRoundRaterFactor1=by_contributor(first.rater_factor),
    )
    known = (
        out["hasScore"]
        | out["coreRaterIntercept"].notna()
        | out["internalFirstRoundRaterIntercept"].notna()
    )
    out = out[known]
    out = out.assign(
        successfulRatingTotal=out["successfulRatingHelpfulCount"]
        + out["successfulRatingNotHelpfulCount"],
        unsuccessfulRatingTotal=out["unsuccessfulRatingHelpfulCount"]
        + out["unsuccessfulRatingNotHelpfulCount"],
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
    if len(untouched):
        new_history = pd.concat([rows[cols], untouched[cols]], ignore_index=True)
    else:  # the same columns and dtypes without concat (it checks all-NaN columns value by value)
        common = {c: find_common_type([rows[c].dtype, history[c].dtype]) for c in cols}
        new_history = rows[cols].astype(common)
    for name, n in out["finalRatingStatus"].value_counts().items():
        log.info("final status %s: %d notes", name, n)
    return out, new_history.sort_values("noteId", ignore_index=True)
