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
) -> pd.DataFrame:
    """note_ratings.get_valid_ratings summed per rater: for raters with at least one valid
    rating, indexed by raterParticipantId, the COUNTS columns.

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
    has = sums["ratingCount"] > 0
    index = pd.Index(codes.rater_ids[has], name="raterParticipantId")
    return pd.DataFrame({k: v[has].astype(np.int64) for k, v in sums.items()}, index=index)


def helpfulness_scores(
    scored: pd.DataFrame, authors: pd.DataFrame, agreement: pd.DataFrame, cfg: ScoringConfig
) -> pd.DataFrame:
    """helpfulness_scores.compute_general_helpfulness_scores (without the harassment penalty).

    ``scored``: noteId, internalRatingStatus, internalNoteIntercept for notes the round scored;
    ``authors``: noteId, noteAuthorParticipantId; ``agreement``: ``rater_agreement``'s."""
    notes = scored.merge(authors, on="noteId")
    notes = notes[notes["internalNoteIntercept"].notna()]
    notes = notes.assign(
        crh=notes["internalRatingStatus"] == fmt.CURRENTLY_RATED_HELPFUL,
        crnh=notes["internalRatingStatus"] == fmt.CURRENTLY_RATED_NOT_HELPFUL,
    )
    author = notes.groupby("noteAuthorParticipantId").agg(
        noteCount=("noteId", "size"),
        crh=("crh", "sum"),
        crnh=("crnh", "sum"),
        interceptSum=("internalNoteIntercept", "sum"),
    )
    author["crhCrnhRatioDifference"] = (
        author["crh"] / author["noteCount"]
        - cfg.crnh_multiplier * author["crnh"] / author["noteCount"]
    )
    author["meanNoteScore"] = author["interceptSum"] / author["noteCount"]
    counts = COUNTS
    rater = agreement[counts].copy()
    rater["raterAgreeRatio"] = rater["ratingAgreesWithNoteStatus"] / rater["ratingCount"]
    scores = author[["crhCrnhRatioDifference", "meanNoteScore"]].join(rater, how="outer")
    scores.index.name = "raterParticipantId"
    scores = scores.reset_index()
    no_record = scores["crhCrnhRatioDifference"].isna() & scores["meanNoteScore"].isna()
    good_author = (scores["crhCrnhRatioDifference"] >= cfg.min_crh_vs_crnh_ratio) & (
        scores["meanNoteScore"] >= cfg.min_mean_note_score
    )
    scores["aboveHelpfulnessThreshold"] = (no_record | good_author) & (
        scores["raterAgreeRatio"] >= cfg.min_rater_agree_ratio
    )
    for col in counts[2:]:
        scores[col] = scores[col].fillna(0).astype(np.int64)
    return scores[
        [
            "raterParticipantId",
            "crhCrnhRatioDifference",
            "meanNoteScore",
            "raterAgreeRatio",
            "aboveHelpfulnessThreshold",
            "ratingCount",
            *counts[2:],
        ]
    ]
