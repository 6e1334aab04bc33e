"""Double review of the harmful labels that carry weight in the day's estimate (issue 22).

A drawn unit stands for ``weight = views / pi`` views in the Horvitz-Thompson total of harmful
views (``pi``: its design inclusion probability, as in ``sample.parquet``; a unit with no views
carries no weight). One moderator's false "harmful" on a unit of weight 10,000 adds 10,000 views
of harm to the day, against a true total of a few hundred to a few thousand: such a unit cannot
rest on one verdict. With ``--double-review W`` every drawn unit whose first verdict is harmful
and whose weight exceeds W goes back to moderators:

- **second review**: the queue ``<queue>-review2`` (a distinct request: its own request and
  verdict files under ``review/rounds/<queue>-review2/``, never answered from the first verdict,
  which the moderators of that queue do not see); harmful again -> harmful;
- **third review** on disagreement: the queue ``<queue>-review3``; its verdict decides (the
  majority of the three);
- while a second or third verdict is pending, the first verdict stands (what a single review
  gives today) and the report counts the pending ones.

Benign first verdicts are not re-reviewed: the failure this guards against is a false harmful
label multiplied by a large weight; a false benign label on a heavy unit removes at most that
unit's true harm (and the harmful units with large weights are few). With independent moderators
each wrong with probability e, a doubly reviewed eligible unit's final label is harmful with
probability fpr = e^2 (2 - e) when it is benign and tpr = (1 - e)^2 (1 + e) when it is harmful
(:func:`vigil.evaluation.calibration.error_rates`), against e and 1 - e for a single review; the label-error correction uses
these for the eligible units.

Idempotent: the request files keep each post's first request, so a rerun of the day asks nothing
new (the same draw, the same first verdicts, the same eligible units).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from vigil.errors import UserError
from vigil.review import repeat_review_queue

log = logging.getLogger(__name__)

ROUNDS = "rounds"  # review/rounds/<queue>-review<k>/{requests,verdicts}


def weights(units: pd.DataFrame) -> np.ndarray:
    """views / pi per unit: the views it stands for in the HT total of harmful views."""
    pi = units["pi"].to_numpy(dtype=float)
    return units["views"].to_numpy(dtype=float) / pi


def eligible(units: pd.DataFrame, threshold: float | None) -> np.ndarray:
    """Units whose harmful verdict is reviewed again: weight > ``threshold`` (None: none)."""
    if threshold is None:
        return np.zeros(len(units), dtype=bool)
    if threshold < 0:
        raise UserError(f"double-review weight {threshold} must be >= 0: pass e.g. 100.")
    return weights(units) > threshold


def round_root(review_root: Path, queue: str, k: int) -> Path:
    """The request and verdict files of review round ``k`` of ``queue``."""
    return Path(review_root) / ROUNDS / repeat_review_queue(queue, k)


def _round_verdicts(review_root: Path, queue: str, k: int) -> pd.Series:
    from vigil.review.files import read_verdicts

    known, _ = read_verdicts(round_root(review_root, queue, k) / "verdicts")
    return known.set_index("post_id")["is_harmful"].astype(bool)


def final_labels(first: pd.Series, review_root: Path, queue: str) -> pd.Series:
    """post_id -> final label: the first verdict, replaced by the majority where a second review
    exists (second harmful -> harmful; second benign -> the third verdict, or the first while the
    third is pending). Reads every verdict of rounds 2 and 3 (all days)."""
    second = _round_verdicts(review_root, queue, 2)
    third = _round_verdicts(review_root, queue, 3)
    out = first.astype(bool).copy()
    both = second.index.intersection(out.index)
    agree = both[second.loc[both].to_numpy()]
    out.loc[agree] = True
    split = both[~second.loc[both].to_numpy()]
    decided = split.intersection(third.index)
    out.loc[decided] = third.loc[decided].to_numpy()
    return out


def adjudicate(
    drawn: pd.DataFrame,
    first: pd.Series,
    threshold: float,
    review_root: Path,
    queue: str,
    answer=None,
    reason: str = "",
) -> tuple[pd.Series, dict]:
    """Second and third reviews of the drawn units (post_id, views, pi) that are eligible and
    labeled harmful by ``first`` (post_id -> bool); (final labels of the answered units, counts)."""
    from vigil.review.files import FileReviewQueue

    answered = drawn[drawn["post_id"].isin(first.index)]
    heavy = answered[eligible(answered, threshold)]
    heavy = heavy[first.reindex(heavy["post_id"]).to_numpy(dtype=bool)]
    rounds = {}
    ids = heavy["post_id"].tolist()
    pis = heavy.set_index("post_id")["pi"]
    for k in (2, 3):
        q = FileReviewQueue(
            repeat_review_queue(queue, k),
            budget=2**31 - 1,
            root=round_root(review_root, queue, k),
            answer=answer,
        )
        got = q.review(ids, reason=f"{reason} review {k}", inclusion_probability=pis.loc[ids])
        rounds[k] = got.drop_duplicates("post_id").set_index("post_id")["is_harmful"].astype(bool)
        rounds[k] = rounds[k].reindex([p for p in ids if p in rounds[k].index])
        if k == 2:  # the third review: only where the second disagrees with the first
            ids = rounds[2].index[~rounds[2].to_numpy()].tolist()
    labels = first.reindex(answered["post_id"]).astype(bool)
    labels.loc[rounds[2].index[rounds[2].to_numpy()]] = True
    labels.loc[rounds[3].index] = rounds[3].to_numpy()
    overturned = int(len(heavy) - labels.reindex(heavy["post_id"]).sum())
    counts = {
        "threshold": threshold,
        "eligible_harmful": len(heavy),
        "second": len(rounds[2]),
        "second_pending": len(heavy) - len(rounds[2]),
        "second_disagree": int((~rounds[2]).sum()),
        "third": len(rounds[3]),
        "third_pending": int((~rounds[2]).sum()) - len(rounds[3]),
        "overturned": overturned,
    }
    log.info("double review (weight > %g): %s", threshold, counts)
    return labels, counts
