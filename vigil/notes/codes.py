"""The ratings as integer codes, made once per scoring run and shared by its steps.

The download's ids are strings (raters) and large integers (notes); every step of the scorer
(filters, both rounds, rater agreement, sign counts, status tables) groups ratings by one of
them. Grouping by string ids costs a hash of every id each time; here each rating's rater gets a
code 0..R-1 once (one ``pd.factorize``) and each rating's note its row in the notes frame, so the
steps count with ``np.bincount`` and align by indexing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class RatingCodes:
    note: np.ndarray  # int64: the rating's note, as its row in ``note_ids``
    rater: np.ndarray  # int64: the rating's rater, as its row in ``rater_ids``
    y: np.ndarray  # float64 helpfulNum: 1, 0.5, 0
    created: np.ndarray  # int64 createdAtMillis of the rating
    note_ids: np.ndarray  # noteId by note code
    rater_ids: np.ndarray  # raterParticipantId by rater code

    @property
    def n_notes(self) -> int:
        return len(self.note_ids)

    @property
    def n_raters(self) -> int:
        return len(self.rater_ids)

    def __len__(self) -> int:
        return len(self.y)

    @classmethod
    def of(cls, ratings: pd.DataFrame, note_ids: np.ndarray | None = None) -> RatingCodes:
        """Codes of ``ratings`` (noteId, raterParticipantId, helpfulNum[, createdAtMillis]).

        With ``note_ids`` (unique; the notes frame's noteId) a note's code is its row there and
        every rating's note must be among them; without, notes are coded in order of appearance."""
        rater, rater_ids = pd.factorize(ratings["raterParticipantId"])
        if note_ids is None:
            note, note_index = pd.factorize(ratings["noteId"])
            note_ids = np.asarray(note_index)
        else:
            note = pd.Index(note_ids).get_indexer(ratings["noteId"])
            if len(note) and note.min() < 0:
                raise ValueError("ratings on notes missing from note_ids; leave them out first")
        created = (
            ratings["createdAtMillis"].to_numpy(dtype=np.int64)
            if "createdAtMillis" in ratings
            else np.zeros(len(ratings), dtype=np.int64)
        )
        return cls(
            note=note.astype(np.int64),
            rater=rater.astype(np.int64),
            y=ratings["helpfulNum"].to_numpy(dtype=np.float64),
            created=created,
            note_ids=np.asarray(note_ids),
            rater_ids=np.asarray(rater_ids, dtype=object),
        )

    def subset(self, keep: np.ndarray) -> RatingCodes:
        """The ratings where ``keep``, with the same code spaces."""
        return RatingCodes(
            self.note[keep],
            self.rater[keep],
            self.y[keep],
            self.created[keep],
            self.note_ids,
            self.rater_ids,
        )

    def note_counts(self) -> np.ndarray:
        return np.bincount(self.note, minlength=self.n_notes)

    def rater_counts(self) -> np.ndarray:
        return np.bincount(self.rater, minlength=self.n_raters)


def compact(codes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(the codes that occur, in order; each code's rank among them): 0..K-1 codes for a round's
    own raters or notes."""
    present = np.flatnonzero(np.bincount(codes, minlength=size))
    rank = np.full(size, -1, dtype=np.int64)
    rank[present] = np.arange(len(present))
    return present, rank[codes]
