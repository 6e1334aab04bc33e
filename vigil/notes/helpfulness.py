"""Contributor helpfulness from the first round's statuses (helpfulness_scores.py, note_ratings.py).

- Author record: per author, the share of their scored notes that are CRH minus 5 times the share
  that are CRNH (``crhCrnhRatioDifference``) and the mean intercept of their notes
  (``meanNoteScore``).
- Rater agreement: over the rater's *valid* ratings (made within 48 hours of the note's creation
  and before its latest non-NMR status, on notes the first round made CRH or CRNH, answering
  HELPFUL or NOT_HELPFUL), the share that agrees with the status (``raterAgreeRatio``).
- A contributor is above the threshold when raterAgreeRatio >= 0.66 and, if they wrote scored
  notes, crhCrnhRatioDifference >= 0 and meanNoteScore >= 0.05. Raters without a valid rating
  have no agreement ratio and are not above it, as in the reference.
The reference's harassment-tag penalty needs its tag-consensus model; Vigil does not apply it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vigil.notes import format as fmt
from vigil.notes.codes import RatingCodes
from vigil.notes.config import ScoringConfig

COUNTS = [
    "ratingAgreesWithNoteStatus",
    "ratingCount",
    "successfulRatingNotHelpfulCount",
    "successfulRatingHelpfulCount",
    "unsuccessfulRatingNotHelpfulCount",
    "unsuccessfulRatingHelpfulCount",
]


def rater_agreement(
    codes: RatingCodes, note_status: np.ndarray, history: pd.DataFrame, cfg: ScoringConfig
) -> dict[str, np.ndarray]:
    """note_ratings.get_valid_ratings summed per rater: the COUNTS, each an array by rater code.

    ``codes``: the run's ratings; ``note_status``: the first round's internalRatingStatus per
    note code; ``history``: the status history, with a row for every note."""
    rows = pd.Index(history["noteId"]).get_indexer(codes.note_ids)
    if len(rows) and rows.min() < 0:
        raise ValueError("the status history lacks notes being scored (status.merge_history)")
    note_created = history["createdAtMillis"].astype(float).to_numpy()[rows]
    latest = history["timestampMillisOfLatestNonNMRStatus"].astype(float).to_numpy()[rows]
    note, y = codes.note, codes.y
    latest_r = latest[note]
    before_status = np.isnan(latest_r) | (codes.created < latest_r)
    before_tsv = codes.created - note_created[note] < cfg.public_tsv_delay_millis
    crh_note = note_status == fmt.CURRENTLY_RATED_HELPFUL
    crnh_note = note_status == fmt.CURRENTLY_RATED_NOT_HELPFUL
    crh, crnh = crh_note[note], crnh_note[note]
    helpful, not_helpful = y == 1.0, y == 0.0
    valid = before_status & before_tsv & (crh | crnh) & (helpful | not_helpful)
    rater = codes.rater[valid]
    crh, crnh, helpful = crh[valid], crnh[valid], helpful[valid]

    def per_rater(flags: np.ndarray) -> np.ndarray:
        return np.bincount(rater, weights=flags, minlength=codes.n_raters).astype(np.int64)

    sums = {
        "ratingAgreesWithNoteStatus": per_rater((crh & helpful) | (crnh & ~helpful)),
        "ratingCount": np.bincount(rater, minlength=codes.n_raters),
        "successfulRatingNotHelpfulCount": per_rater(crnh & ~helpful),
        "successfulRatingHelpfulCount": per_rater(crh & helpful),
        "unsuccessfulRatingNotHelpfulCount": per_rater(crnh & helpful),
        "unsuccessfulRatingHelpfulCount": per_rater(crh & ~helpful),
    }
    return {k: v.astype(np.int64) for k, v in sums.items()}


def helpfulness_scores(
    codes: RatingCodes,
    scored: pd.DataFrame,
    authors: np.ndarray,
    agreement: dict[str, np.ndarray],
    cfg: ScoringConfig,
) -> pd.DataFrame:
    """helpfulness_scores.compute_general_helpfulness_scores (without the harassment penalty).

    One row per contributor: the rater codes 0..R-1 of ``codes`` first, then authors who never
    rated. ``scored``: the first round's status table (one row per note code: internalRatingStatus,
    internalNoteIntercept); ``authors``: noteAuthorParticipantId per note code; ``agreement``:
    ``rater_agreement``'s. ``hasScore`` marks the contributors the reference scores: authors of
    notes with an intercept and raters with a valid rating."""
    intercept = scored["internalNoteIntercept"].to_numpy(dtype=float)
    status = scored["internalRatingStatus"].to_numpy(dtype=object)
    authored = ~np.isnan(intercept) & pd.notna(authors)
    ids = pd.Index(codes.rater_ids)
    newcomers = pd.unique(authors[authored][ids.get_indexer(authors[authored]) < 0])
    ids = ids.append(pd.Index(newcomers, dtype=object))
    author = ids.get_indexer(authors[authored])
    size = len(ids)

    def per_author(weights: np.ndarray | None) -> np.ndarray:
        return np.bincount(author, weights=weights, minlength=size)

    note_count = per_author(None)
    crh = per_author((status[authored] == fmt.CURRENTLY_RATED_HELPFUL).astype(float))
    crnh = per_author((status[authored] == fmt.CURRENTLY_RATED_NOT_HELPFUL).astype(float))
    is_author = note_count > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        difference = np.where(
            is_author, crh / note_count - cfg.crnh_multiplier * crnh / note_count, np.nan
        )
        mean_score = np.where(is_author, per_author(intercept[authored]) / note_count, np.nan)
    extra = np.zeros(size - codes.n_raters, dtype=np.int64)
    counts = {k: np.concatenate([v, extra]) for k, v in agreement.items()}
    rated = counts["ratingCount"] > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        agree = np.where(
            rated,
            counts["ratingAgreesWithNoteStatus"] / np.maximum(counts["ratingCount"], 1),
            np.nan,
        )
    good_author = (difference >= cfg.min_crh_vs_crnh_ratio) & (
        mean_score >= cfg.min_mean_note_score
    )
    return pd.DataFrame(
        {
            "raterParticipantId": np.asarray(ids, dtype=object),
            "crhCrnhRatioDifference": difference,
            "meanNoteScore": mean_score,
            "raterAgreeRatio": agree,
            "aboveHelpfulnessThreshold": (~is_author | good_author)
            & (agree >= cfg.min_rater_agree_ratio),
            "ratingCount": counts["ratingCount"],
            **{k: counts[k] for k in COUNTS[2:]},
            "hasScore": is_author | rated,
        }
    )
