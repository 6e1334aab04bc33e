"""Human review on request: the interface training asks for labels through, and its file queue.

Training (the score audit, ``training.audit``) sends chosen posts to moderators and counts their
verdicts as labels. It talks to a :class:`ReviewQueue`; the platform's implementation is
:class:`vigil.review.files.FileReviewQueue`: requests are written under the data root
(``review/requests/<queue>.parquet``), moderators answer by dropping verdict files
(``review/verdicts/*.jsonl``), and the verdicts are read back, validated and deduplicated. The
file contract is in docs/contracts.md ("Review requests and verdicts").
"""

from __future__ import annotations

import re
from typing import Protocol

import pandas as pd

from vigil.contracts import HARM_TYPES

VERDICT_COLUMNS = ("post_id", "is_harmful", *(f"is_{h}" for h in HARM_TYPES), "queue")
_REPEAT = re.compile(r"^(.+)-review([2-9]|[1-9][0-9]+)$")


def repeat_review_queue(queue: str, k: int) -> str:
    """The queue of the k-th independent review (k >= 2) of ``queue``'s posts: ``<queue>-review<k>``.
    Its verdicts must not come from an earlier round's (its moderators do not see them)."""
    if k < 2:
        raise ValueError(f"review round {k}: repeat reviews start at 2")
    return f"{queue}-review{k}"


def review_round(queue: str) -> int:
    """1 for a first review; k for a queue named by :func:`repeat_review_queue`."""
    match = _REPEAT.match(queue)
    return int(match.group(2)) if match else 1


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
