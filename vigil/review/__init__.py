"""Human review on request: the interface training asks for labels through, and its file queue.

Training (the score audit, ``training.audit``) sends chosen posts to moderators and counts their
verdicts as labels. It talks to a :class:`ReviewQueue`; the platform's implementation is
:class:`vigil.review.files.FileReviewQueue`: requests are written under the data root
(``review/requests/<queue>.parquet``), moderators answer by dropping verdict files
(``review/verdicts/*.jsonl``), and the verdicts are read back, validated and deduplicated. The
file contract is in docs/contracts.md ("Review requests and verdicts").
"""

from __future__ import annotations

from typing import Protocol

import pandas as pd

from vigil.contracts import HARM_TYPES

VERDICT_COLUMNS = ("post_id", "is_harmful", *(f"is_{h}" for h in HARM_TYPES), "queue")


class ReviewQueue(Protocol):
    """Moderator verdicts on request, within a budget of distinct posts."""

    budget: int

    @property
    def used(self) -> int:
        """Distinct posts requested so far (each counts once against the budget)."""

    @property
    def pending(self) -> int:
        """Requested posts with no verdict yet."""

    def review(self, post_ids, reason: str = "", inclusion_probability=None) -> pd.DataFrame:
        """Verdicts that exist for ``post_ids``: one row per answered post (VERDICT_COLUMNS).

        ``reason`` and ``inclusion_probability`` (per post, for a sampled request) are recorded
        with the request. Posts without a verdict yet are left out (and counted in
        :attr:`pending`); a request beyond the budget is a UserError.
        """
