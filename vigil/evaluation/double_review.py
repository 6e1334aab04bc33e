"""Double review of the harmful labels that carry weight in the day's estimate (issue 22).

A drawn unit stands for ``weight = views / pi`` views in the Horvitz-Thompson total of harmful
views (``pi``: its design inclusion probability, as in ``sample.parquet``; a unit with no views
carries no weight). One moderator's false "harmful" on a unit of weight 10,000 adds 10,000 views
of harm to the day, against a true total of a few hundred to a few thousand: such a unit cannot
rest on one verdict. With ``--double-review W`` every drawn unit whose first verdict is harmful
and whose weight exceeds W goes back to moderators:

- **second review**: the queue ``<queue>-review2`` (a distinct request: its own request and
  verdict files under ``review/rounds/<queue>-review2/``, never answered from the first verdict,
  which the moderators of that queue do not see); agreeing with the first -> that label;
- **third review** on disagreement: the queue ``<queue>-review3``; its verdict decides (the
  majority of the three);
- while a second or third verdict is pending, the first verdict stands (what a single review
  gives today) and the report counts the pending ones.

Benign first verdicts of heavy units are not re-reviewed (those of removals are, below): the failure this guards against is a false harmful
label multiplied by a large weight; a false benign label on a heavy unit removes at most that
unit's true harm (and the harmful units with large weights are few). With independent moderators
each wrong with probability e, a doubly reviewed eligible unit's final label is harmful with
probability fpr = e^2 (2 - e) when it is benign and tpr = (1 - e)^2 (1 + e) when it is harmful
(:func:`vigil.evaluation.calibration.error_rates`, which also gives the rates when benign first
verdicts are reviewed again), against e and 1 - e for a single review; the label-error correction
uses these for the eligible units.

**Removals** (``--review-removals``, default ``benign``): the removals of either arm are a census
(pi = 1, weight = views), so an arm's precision and harmful views prevented are sums over them with
no sampling variance, and a single wrong verdict moves them outside their (point) interval. The
error that moves them most is a false benign on a harmful removal (most removals are harmful:
with 1% error and ~75 removals a day, ~0.7 false benigns a day against ~0.02 false harmfuls), so
every drawn removal whose first verdict is benign goes
through the same rounds (second review; third on disagreement; the majority wins); ``all``
re-reviews every removal's verdict, ``off`` none. These re-reviews enter every estimate but not the
label model's history (:func:`history_labels`): the label model describes the labels of the
prevalence protocol (first verdict, heavy harmful ones reviewed again), and fitted on the removals'
corrected labels it became overconfident about the low scores (simulated prevalence coverage
0.76-0.82 instead of 0.96-0.99; docs/online_eval.md).

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


REMOVALS = ("off", "benign", "all")


def check_removals(value: str) -> str:
    if value not in REMOVALS:
        raise UserError(
            f"review-removals {value!r} is unknown: pass benign (re-review removals labeled "
            "benign), all or off."
        )
    return value


def final_labels(first: pd.Series, review_root: Path, queue: str) -> pd.Series:
    """post_id -> final label: the first verdict, replaced by the majority where a second review
    exists (the second agrees with the first -> that label; it disagrees -> the third verdict, or
    the first while the third is pending). Reads every verdict of rounds 2 and 3 (all days)."""
    second = _round_verdicts(review_root, queue, 2)
    third = _round_verdicts(review_root, queue, 3)
    out = first.astype(bool).copy()
    both = second.index.intersection(out.index)
    split = both[second.loc[both].to_numpy() != out.loc[both].to_numpy()]
    decided = split.intersection(third.index)
    out.loc[decided] = third.loc[decided].to_numpy()
    return out


def history_labels(first: pd.Series, final: pd.Series) -> pd.Series:
    """The label model's labels: the final label where the first verdict is harmful (the heavy
    harmful labels' rounds), the first verdict where it is benign (a removal's benign verdict
    stays as given: see the module's docstring). ``first`` and ``final``: post_id -> bool."""
    return first.astype(bool) & final.reindex(first.index).fillna(first).astype(bool)


def adjudicate(
    drawn: pd.DataFrame,
    first: pd.Series,
    threshold: float | None,
    review_root: Path,
    queue: str,
    answer=None,
    reason: str = "",
    removals: str = "off",
) -> tuple[pd.Series, dict]:
    """Second and third reviews of the drawn units (post_id, views, pi, and removed_<arm> when
    ``removals`` is not off) whose first verdict (``first``: post_id -> bool) is harmful with a
    weight above ``threshold`` (None: none), or that a model removed and whose first verdict is
    benign (``removals`` benign) or whatever it is (``all``); (final labels of the answered
    units, counts)."""
    from vigil.review.files import FileReviewQueue

    check_removals(removals)
    answered = drawn[drawn["post_id"].isin(first.index)]
    said = first.reindex(answered["post_id"]).to_numpy(dtype=bool)
    heavy = eligible(answered, threshold) & said
    removed = np.zeros(len(answered), dtype=bool)
    if removals != "off":
        removed = answered[["removed_control", "removed_candidate"]].any(axis=1).to_numpy()
    benign = removed & ~said
    again = heavy | benign | (removed if removals == "all" else False)
    rounds = {}
    ids = answered["post_id"][again].tolist()
    pis = answered.set_index("post_id")["pi"]
    labels = first.reindex(answered["post_id"]).astype(bool)
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
            disagree = rounds[2].to_numpy() != labels.loc[rounds[2].index].to_numpy()
            ids = rounds[2].index[disagree].tolist()
    labels.loc[rounds[3].index] = rounds[3].to_numpy()
    again_ids = answered["post_id"][again]
    overturned = int((labels.loc[again_ids] != first.reindex(again_ids).astype(bool)).sum())
    counts = {
        "threshold": threshold,
        "removals": removals,
        "eligible_harmful": int(heavy.sum()),
        "eligible_removals": int((again & ~heavy).sum()),
        "second": len(rounds[2]),
        "second_pending": int(again.sum()) - len(rounds[2]),
        "second_disagree": len(ids),
        "third": len(rounds[3]),
        "third_pending": len(ids) - len(rounds[3]),
        "overturned": overturned,
    }
    log.info("double review (weight > %s, removals %s): %s", threshold, removals, counts)
    return labels, counts
