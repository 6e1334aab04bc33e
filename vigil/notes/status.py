"""Note statuses from a round's parameters, and the status history with its stabilization and lock.

Rules, applied in the reference's order (note_ratings.compute_scored_notes; later rules overwrite):

1. InitialNMR: every note starts NEEDS_MORE_RATINGS.
2. GeneralCRH: >= 5 ratings and intercept >= 0.40, unless the note says the post is
   NOT_MISLEADING (``onlyApplyToNotesThatSayTweetIsMisleading``).
3. GeneralCRNH: >= 5 ratings and intercept <= -0.05 - 0.8 * |factor| (the "diamond").
4. RatioCRNH (final round): both factor sides rate it <= 0.4 on average (mean <= 0.3), >= 3 each.
5. NmCRNH: NOT_MISLEADING notes with intercept < -0.15.
6. FilterLargeFactor (final round): CRH with |factor| > 0.5 goes back to NMR (firm reject).
7. MinMinorityRaters (final round): CRH with fewer than 4 net helpful ratings (helpful minus
   not helpful) from its minority factor side -> NEEDS_YOUR_HELP.
8. RaterBalance (final round): CRH with 4..9 such ratings making < 5% of its ratings -> NYH.

The reference's pseudo-rater confidence bound (UCB_CRNH), tag, incorrect and low-diligence
filters need models Vigil does not fit; docs/notes.md lists them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vigil.notes import format as fmt
from vigil.notes.config import ScoringConfig

NEEDS_YOUR_HELP = "NEEDS_YOUR_HELP"  # constants.needsYourHelp: internal, shown as NMR
CORE_MODEL = "CoreModel (v1.1)"  # scoring_rules.RuleID.CORE_MODEL, the decidedBy value


def note_sign_stats(ratings: pd.DataFrame, rater_factor: pd.Series) -> pd.DataFrame:
    """Per note, counts and mean helpfulNum by the sign of the raters' factors
    (note_ratings.get_note_counts_by_rater_sign). ``rater_factor`` is indexed by rater id; notes
    none of whose raters has a factor are left out."""
    note, note_ids = pd.factorize(ratings["noteId"])
    factor = ratings["raterParticipantId"].map(rater_factor).to_numpy(dtype=float)
    out = sign_stats(note, factor, ratings["helpfulNum"].to_numpy(dtype=float), len(note_ids))
    out.insert(0, "noteId", np.asarray(note_ids))
    rated = out["negFactor_ratingCount"] + out["posFactor_ratingCount"] > 0
    return out[rated].reset_index(drop=True)


def sign_stats(note: np.ndarray, factor: np.ndarray, y: np.ndarray, n_notes: int) -> pd.DataFrame:
    """``note_sign_stats`` over codes: one row per note code 0..n_notes-1, from each rating's
    note code, its rater's factor (NaN: the rater has none, the rating does not count) and its
    helpfulNum. A rater with factor 0 counts on the positive side, as in the reference."""
    has = ~np.isnan(factor)
    note, y = note[has], y[has]
    key = note * 2 + (factor[has] < 0)  # column 1: the negative side

    def per_side(weights: np.ndarray | None) -> np.ndarray:
        return np.bincount(key, weights=weights, minlength=2 * n_notes).reshape(n_notes, 2)

    count = per_side(None)
    total = per_side(y)
    net = per_side((y == 1.0).astype(float)) - per_side((y == 0.0).astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        net_min = np.clip(net.min(axis=1), 0, None)
        both = count.sum(axis=1)
        ratio = np.where(both > 0, net_min / np.maximum(both, 1), np.nan)
    return pd.DataFrame(
        {
            "negFactor_ratingCount": count[:, 1].astype(np.int64),
            "negFactorMeanHelpfulNum": mean[:, 1],
            "posFactor_ratingCount": count[:, 0].astype(np.int64),
            "posFactorMeanHelpfulNum": mean[:, 0],
            "minSignCount": count.min(axis=1).astype(np.int64),
            "netMinHelpful": net_min,
            "netMinHelpfulRatio": ratio,
        }
    )


def assign_statuses(notes: pd.DataFrame, cfg: ScoringConfig, final_round: bool) -> pd.DataFrame:
    """``notes`` has noteId, numRatings, classification, internalNoteIntercept,
    internalNoteFactor1 and (final round) the sign stats; returns it with internalRatingStatus
    and internalActiveRules."""
    out = notes.copy()

    def col(name: str) -> np.ndarray:  # NaN compares False, as a missing value should
        return out[name].to_numpy(dtype=float)

    intercept, factor = col("internalNoteIntercept"), col("internalNoteFactor1")
    enough = col("numRatings") >= cfg.min_ratings_needed
    not_misleading = (out["classification"] == fmt.NOT_MISLEADING).to_numpy()
    status = np.full(len(out), fmt.NEEDS_MORE_RATINGS, dtype=object)
    rule = np.full(len(out), "InitialNMR", dtype=object)

    def apply(mask: np.ndarray, new_status: str, name: str) -> None:
        status[mask] = new_status
        rule[mask] = name

    apply(
        enough & (intercept >= cfg.crh_threshold) & ~not_misleading,
        fmt.CURRENTLY_RATED_HELPFUL,
        "GeneralCRH",
    )
    diamond = cfg.crnh_threshold_intercept + cfg.crnh_threshold_note_factor_multiplier * np.abs(
        factor
    )
    apply(enough & (intercept <= diamond), fmt.CURRENTLY_RATED_NOT_HELPFUL, "GeneralCRNH")
    if final_round:
        neg, pos = col("negFactorMeanHelpfulNum"), col("posFactorMeanHelpfulNum")
        ratio = (
            enough
            & (col("minSignCount") >= cfg.ratio_crnh_min_min_sign_count)
            & (neg <= cfg.ratio_crnh_max_helpful_num_per_side)
            & (pos <= cfg.ratio_crnh_max_helpful_num_per_side)
            & ((neg + pos) / 2 <= cfg.ratio_crnh_max_avg_helpful_num_per_side)
        )
        apply(ratio, fmt.CURRENTLY_RATED_NOT_HELPFUL, "RatioCRNH")
    apply(
        (intercept < cfg.crnh_threshold_nm_intercept) & not_misleading,
        fmt.CURRENTLY_RATED_NOT_HELPFUL,
        "NmCRNH",
    )
    if final_round:
        crh = status == fmt.CURRENTLY_RATED_HELPFUL
        apply(
            crh & (np.abs(factor) > cfg.factor_threshold),
            fmt.NEEDS_MORE_RATINGS,
            "FilterLargeFactor",
        )
        crh = status == fmt.CURRENTLY_RATED_HELPFUL
        net = np.nan_to_num(col("netMinHelpful"), nan=0.0)
        apply(
            crh & (net < cfg.min_minority_net_helpful_ratings), NEEDS_YOUR_HELP, "MinMinorityRaters"
        )
        crh = status == fmt.CURRENTLY_RATED_HELPFUL
        balance = (
            crh
            & (net >= cfg.min_minority_net_helpful_ratings)
            & (net < cfg.rater_balance_max_minority_net_helpful)
            & (col("netMinHelpfulRatio") < cfg.min_minority_net_helpful_ratio)
        )
        apply(balance, NEEDS_YOUR_HELP, "RaterBalance")
    out["internalRatingStatus"] = status
    out["internalActiveRules"] = rule
    return out


# --- status history ---------------------------------------------------------------------------


def empty_history(notes: pd.DataFrame) -> pd.DataFrame:
    """A status history with no previous run: one row per note, every status field empty."""
    history = pd.DataFrame(
        {col: np.nan for col in fmt.column_names(fmt.STATUS_HISTORY_FILE)}, index=notes.index
    )
    history["noteId"] = notes["noteId"].to_numpy()
    history["noteAuthorParticipantId"] = notes["noteAuthorParticipantId"].to_numpy()
    history["createdAtMillis"] = notes["createdAtMillis"].to_numpy()
    return history.astype(
        {col: object for col in fmt.STATUS_COLUMNS_WITH_STATUS_VALUES + ("currentDecidedBy",)}
    )


def merge_history(previous: pd.DataFrame | None, notes: pd.DataFrame) -> pd.DataFrame:
    """The previous history plus a fresh row for every note it does not know
    (note_status_history.merge_note_info)."""
    fresh = empty_history(notes)
    if previous is None or previous.empty:
        return fresh.reset_index(drop=True)
    new = fresh[~fresh["noteId"].isin(previous["noteId"])]
    cols = fmt.column_names(fmt.STATUS_HISTORY_FILE)
    return pd.concat([previous[cols], new[cols]], ignore_index=True)


def stabilize(
    history: pd.DataFrame, status: pd.Series, cfg: ScoringConfig, now: int
) -> tuple[pd.Series, pd.Series]:
    """scoring_rules.NmrDueToMinStableCrhTime without the topic and pflip models.

    A note that was not CRH before and now scores CRH waits: it shows NMR for at least 30
    minutes from the run that first saw it qualify, and goes CRH on the first run after that
    (at the latest after 60 minutes). NEEDS_YOUR_HELP keeps a CRH note CRH and is NMR otherwise.
    Returns (status, the new timestampMillisOfNmrDueToMinStableCrhTime)."""
    was_crh = (history["currentStatus"] == fmt.CURRENTLY_RATED_HELPFUL).to_numpy()
    stamp = history["timestampMillisOfNmrDueToMinStableCrhTime"].to_numpy(dtype=float).copy()
    new = status.to_numpy(dtype=object).copy()
    going_crh = (new == fmt.CURRENTLY_RATED_HELPFUL) & ~was_crh
    nyh = new == NEEDS_YOUR_HELP
    new[nyh & was_crh] = fmt.CURRENTLY_RATED_HELPFUL
    new[nyh & ~was_crh] = fmt.NEEDS_MORE_RATINGS
    entering = going_crh & (np.isnan(stamp) | (stamp < 0))
    new[entering] = fmt.NEEDS_MORE_RATINGS
    stamp[entering] = now
    waiting = going_crh & ~entering
    elapsed = now - stamp
    too_early = waiting & (elapsed < cfg.required_stable_crh_minutes * 60_000)
    new[too_early] = fmt.NEEDS_MORE_RATINGS
    stamp[waiting & ~too_early] = -1
    # A note that left the CRH track while waiting ends its stabilization period.
    left = ~going_crh & ~was_crh & (stamp > 0) & (new != fmt.CURRENTLY_RATED_HELPFUL)
    stamp[left] = -1
    return pd.Series(new, index=status.index), pd.Series(stamp, index=status.index)


def update_history(
    rows: pd.DataFrame,
    final: np.ndarray,
    core_status: np.ndarray,
    decided_by: np.ndarray,
    stabilization_stamp: np.ndarray,
    cfg: ScoringConfig,
    now: int,
) -> pd.DataFrame:
    """note_status_history._update_single_note_status_history, vectorized, for scored notes.

    ``rows``: the previous history of the scored notes, in the order of ``final``."""
    rows = rows.astype({col: object for col in fmt.STATUS_COLUMNS_WITH_STATUS_VALUES})
    changed = final != rows["currentStatus"].to_numpy(dtype=object)
    last_change = rows["timestampMillisOfMostRecentStatusChange"].to_numpy(dtype=float)
    rows["timestampMillisOfMostRecentStatusChange"] = np.where(
        changed, now, np.where(np.isnan(last_change), -1, last_change)
    )
    rows["currentStatus"] = final
    rows["currentCoreStatus"] = core_status
    rows["currentDecidedBy"] = decided_by
    rows["timestampMillisOfCurrentStatus"] = now
    rows["timestampMinuteOfFinalScoringOutput"] = np.nan

    # The 2-week lock: a note older than noteLockMillis, not yet locked, whose status the core
    # model decided (a lockingEnabled rule), locks at its current status.
    not_locked = rows["lockedStatus"].isna().to_numpy()
    old_enough = (now - rows["createdAtMillis"].to_numpy(dtype=float)) > cfg.note_lock_millis
    trusted = decided_by == CORE_MODEL
    lock = not_locked & old_enough & trusted
    rows.loc[lock, "lockedStatus"] = final[lock]
    rows.loc[lock, "timestampMillisOfStatusLock"] = now
    locked = rows["lockedStatus"].notna().to_numpy()
    rows["timestampMillisOfNmrDueToMinStableCrhTime"] = np.where(locked, -1, stabilization_stamp)
    first_stamp = rows["timestampMillisOfFirstNmrDueToMinStableCrhTime"].to_numpy(dtype=float)
    entered = ~locked & (stabilization_stamp > 0) & np.isnan(first_stamp)
    rows.loc[entered, "timestampMillisOfFirstNmrDueToMinStableCrhTime"] = stabilization_stamp[
        entered
    ]

    has_status = final != fmt.NEEDS_MORE_RATINGS
    first_time = has_status & rows["firstNonNMRStatus"].isna().to_numpy()
    rows.loc[first_time, "firstNonNMRStatus"] = final[first_time]
    rows.loc[first_time, "timestampMillisOfFirstNonNMRStatus"] = now
    flipped = has_status & (final != rows["mostRecentNonNMRStatus"].to_numpy(dtype=object))
    rows.loc[flipped, "mostRecentNonNMRStatus"] = final[flipped]
    rows.loc[flipped, "timestampMillisOfLatestNonNMRStatus"] = now
    return rows
