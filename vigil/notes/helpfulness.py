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
from vigil.notes.config import ScoringConfig


def valid_ratings(
    ratings: pd.DataFrame, scored: pd.DataFrame, history: pd.DataFrame, cfg: ScoringConfig
) -> pd.DataFrame:
    """note_ratings.get_valid_ratings, with each rating's agreement and success counts."""
    notes = history[["noteId", "createdAtMillis", "timestampMillisOfLatestNonNMRStatus"]].rename(
        columns={"createdAtMillis": "noteCreatedAtMillis"}
    )
    merged = ratings[["raterParticipantId", "noteId", "helpfulNum", "createdAtMillis"]].merge(
        notes, on="noteId", how="left"
    )
    latest = merged["timestampMillisOfLatestNonNMRStatus"].astype(float)
    before_status = latest.isna() | (merged["createdAtMillis"] < latest)
    before_tsv = (
        merged["createdAtMillis"] - merged["noteCreatedAtMillis"] < cfg.public_tsv_delay_millis
    )
    merged = merged[before_status & before_tsv]
    merged = merged.merge(scored[["noteId", "internalRatingStatus"]], on="noteId")
    crh = merged["internalRatingStatus"] == fmt.CURRENTLY_RATED_HELPFUL
    crnh = merged["internalRatingStatus"] == fmt.CURRENTLY_RATED_NOT_HELPFUL
    binary = merged["helpfulNum"].isin([0.0, 1.0])
    merged = merged[(crh | crnh) & binary].copy()
    crh, crnh = crh[merged.index], crnh[merged.index]
    helpful = merged["helpfulNum"] == 1.0
    merged["successfulRatingHelpfulCount"] = crh & helpful
    merged["successfulRatingNotHelpfulCount"] = crnh & ~helpful
    merged["unsuccessfulRatingHelpfulCount"] = crh & ~helpful
    merged["unsuccessfulRatingNotHelpfulCount"] = crnh & helpful
    merged["ratingAgreesWithNoteStatus"] = (crh & helpful) | (crnh & ~helpful)
    merged["ratingCount"] = 1
    return merged


def helpfulness_scores(
    scored: pd.DataFrame, authors: pd.DataFrame, valid: pd.DataFrame, cfg: ScoringConfig
) -> pd.DataFrame:
    """helpfulness_scores.compute_general_helpfulness_scores (without the harassment penalty).

    ``scored``: noteId, internalRatingStatus, internalNoteIntercept for notes the round scored;
    ``authors``: noteId, noteAuthorParticipantId."""
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
    counts = [
        "ratingAgreesWithNoteStatus",
        "ratingCount",
        "successfulRatingNotHelpfulCount",
        "successfulRatingHelpfulCount",
        "unsuccessfulRatingNotHelpfulCount",
        "unsuccessfulRatingHelpfulCount",
    ]
    rater = valid.groupby("raterParticipantId")[counts].sum()
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
