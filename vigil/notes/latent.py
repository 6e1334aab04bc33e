"""Seeded rating worlds drawn from the scorer's own latent model, for parity tests and benchmarks.

Not a simulator of contributors (that is the ``sim`` package's notes world): raters and notes get
an intercept and one factor (two camps of raters of unequal size), and each rating is
``mu + i_u + i_n + f_u f_n + noise`` rounded to NOT_HELPFUL / SOMEWHAT_HELPFUL / HELPFUL.
The frames have the download format's columns the scorer needs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vigil.notes import format as fmt

START_MILLIS = 1_767_225_600_000  # 2026-01-01 UTC
HOUR_MILLIS = 3_600_000


def latent_world(
    n_ratings: int,
    seed: int,
    ratings_per_rater: float = 25.0,
    ratings_per_note: float = 40.0,
    majority_share: float = 0.6,
    noise: float = 0.25,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(notes, ratings) frames with about ``n_ratings`` distinct (rater, note) ratings."""
    rng = np.random.default_rng(seed)
    n_raters = max(20, int(n_ratings / ratings_per_rater))
    n_notes = max(10, int(n_ratings / ratings_per_note))
    camp = np.where(rng.random(n_raters) < majority_share, -1.0, 1.0)
    rater_factor = camp * rng.uniform(0.5, 1.0, n_raters)
    rater_intercept = rng.normal(0.0, 0.1, n_raters)
    note_factor = rng.normal(0.0, 0.35, n_notes)
    note_intercept = rng.normal(0.15, 0.3, n_notes)

    # Activity and popularity are skewed, as on the real service.
    activity = rng.lognormal(0.0, 0.8, n_raters)
    popularity = rng.lognormal(0.0, 0.8, n_notes)
    draws = int(n_ratings * 1.15)
    rater = rng.choice(n_raters, size=draws, p=activity / activity.sum())
    note = rng.choice(n_notes, size=draws, p=popularity / popularity.sum())
    pairs = np.unique(rater.astype(np.int64) * n_notes + note)[:n_ratings]
    rater, note = pairs // n_notes, pairs % n_notes

    value = (
        0.1
        + rater_intercept[rater]
        + note_intercept[note]
        + rater_factor[rater] * note_factor[note]
        + rng.normal(0.0, noise, len(pairs))
    )
    level = np.where(
        value >= 0.75, fmt.HELPFUL, np.where(value >= 0.25, fmt.SOMEWHAT_HELPFUL, fmt.NOT_HELPFUL)
    )
    note_created = START_MILLIS + rng.integers(0, 20 * 24, n_notes) * HOUR_MILLIS
    rated_at = note_created[note] + rng.integers(60_000, 72 * HOUR_MILLIS, len(pairs))
    notes = pd.DataFrame(
        {
            "noteId": np.arange(n_notes, dtype=np.int64) + 1_000_000,
            "noteAuthorParticipantId": [f"R{i:07d}" for i in rng.integers(0, n_raters, n_notes)],
            "createdAtMillis": note_created,
            "tweetId": rng.integers(1, 10**12, n_notes),
            "classification": np.where(
                rng.random(n_notes) < 0.9, fmt.MISLEADING, fmt.NOT_MISLEADING
            ),
        }
    )
    ratings = pd.DataFrame(
        {
            "noteId": note.astype(np.int64) + 1_000_000,
            "raterParticipantId": [f"R{i:07d}" for i in rater],
            "createdAtMillis": rated_at,
            "helpfulnessLevel": level,
        }
    )
    return notes, ratings
