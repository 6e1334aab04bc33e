"""The promotion holdout's review sample: labels that stand for every post of the holdout days.

Why: the holdout days' queue labels are mostly reported posts plus a tiny random audit. Both models
catch reported posts, so on queue labels alone recall says almost nothing about the harmful posts
nobody reported, and precision rests on a handful of heavy-weight random labels. Champion and
challenger are therefore compared on a sample of holdout posts that moderators review through the
review queue (``vigil.review``), drawn with known inclusion probabilities; every metric weighs an
observed post by 1 / pi (Horvitz-Thompson), so it estimates the whole holdout population.

Design, on every post created on the holdout days and each model's per-post maximum calibrated
score over its scoring events:

- posts with a queue label are known (pi = 1) and cost no review;
- per model, the score strata of :func:`training.audit.design` (budget ``(1 - u) B / models``):
  the top of each model's ranking reviewed densely, where its removals and near misses are. The
  models' samples are drawn independently; a post drawn for either is reviewed once and counts with
  the union probability ``1 - prod_m (1 - pi_m)``;
- a uniform stratum: a simple random sample of the unlabeled posts no score stratum covers, with
  the rest of the budget (at least ``round(u B)`` posts). Harmful posts both models score low are
  what recall misses; this stratum gives them pi > 0, so every holdout post has pi > 0 and recall
  is estimated without bias;
- unanswered requests stay unobserved; the answered posts stand for all drawn ones (missing at
  random): their pi is multiplied by the share answered, as in :func:`training.audit.run`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from training import audit
from vigil.contracts import HARM_TYPES
from vigil.errors import UserError

log = logging.getLogger(__name__)

QUEUE = "promotion_holdout"
LABEL_COLUMNS = ("post_id", "is_harmful", *(f"is_{h}" for h in HARM_TYPES), "sampling_weight")


@dataclass
class Plan:
    """Inclusion probabilities of every holdout post (``posts``: index post_id, ``stratum`` =
    queue | score | uniform, ``pi``), each model's score design, the uniform stratum's size."""

    posts: pd.DataFrame
    designs: dict[str, pd.DataFrame]
    n_uniform: int


def plan(
    post_scores: dict[str, pd.Series],
    labeled: pd.Series,
    budget: int,
    uniform_share: float,
    strata=audit.DEFAULT_STRATA,
) -> Plan:
    """The design (see the module doc). ``post_scores``: model -> score per post_id (the whole
    holdout population); ``labeled``: True for posts with a queue label, indexed by post_id."""
    if budget < 2 or not 0 < uniform_share < 1:
        raise UserError(
            f"holdout review budget {budget} and uniform share {uniform_share}: use a budget of at "
            "least 2 posts and a share strictly between 0 and 1 (promotion.json)."
        )
    index = next(iter(post_scores.values())).index
    labeled = labeled.reindex(index).fillna(False).astype(bool)
    per_model = (budget - round(uniform_share * budget)) // len(post_scores)
    designs = {
        name: audit.design(scores.reindex(index), labeled, per_model, strata)[0]
        for name, scores in post_scores.items()
    }
    posts = pd.DataFrame(index=index)
    posts["stratum"] = np.where(labeled, "queue", "score")
    posts["pi"] = audit.union_pi([d["pi"] for d in designs.values()]).reindex(index).to_numpy()
    rest = ~labeled & (posts["pi"] <= 0)
    # The design's draws, not the union's (random) size: the budget holds whatever the overlap.
    score_draws = sum(
        int(d.loc[d["stratum"] >= 0].groupby("stratum")["n_draw"].first().sum())
        for d in designs.values()
    )
    n_uniform = min(int(rest.sum()), budget - score_draws)
    if rest.any() and n_uniform < 1:
        raise UserError(
            f"holdout review budget {budget} leaves no review for the {int(rest.sum())} holdout "
            "posts the score strata do not cover: raise holdout_review_budget."
        )
    posts.loc[rest, "stratum"] = "uniform"
    if rest.any():
        posts.loc[rest, "pi"] = n_uniform / int(rest.sum())
    return Plan(posts, designs, n_uniform if rest.any() else 0)


def draw(p: Plan, seed: int) -> pd.Index:
    """Post ids to review: each model's stratified draw (independent), their union, and a simple
    random sample of ``n_uniform`` posts of the uniform stratum."""
    ids = pd.Index([], dtype=np.int64)
    for i, design in enumerate(p.designs.values()):
        ids = ids.union(audit.draw(design, [seed, 41, i]))
    rest = np.sort(p.posts.index[p.posts["stratum"] == "uniform"].to_numpy())
    rng = np.random.default_rng([seed, 43])
    ids = ids.union(pd.Index(rest[rng.permutation(len(rest))[: p.n_uniform]]))
    return pd.Index(np.sort(ids.to_numpy()), dtype=np.int64)


def labels(
    p: Plan, drawn: pd.Index, verdicts: pd.DataFrame, queue_labels: pd.DataFrame
) -> tuple[pd.DataFrame, dict]:
    """The holdout's labels for ``datasets.build(test_labels=...)`` and a summary.

    Queue-labeled posts carry their queue (``queue`` column) and weight 1 (pi = 1: known); reviewed
    posts carry ``queue`` = :data:`QUEUE` and weight 1 / pi, pi scaled by the share of requests
    answered. The summary counts posts by source, pending requests, Kish's effective sample size
    and the Horvitz-Thompson estimate of harmful posts in the holdout.
    """
    queue = queue_labels[queue_labels["post_id"].isin(p.posts.index)].drop_duplicates("post_id")
    queue = queue.assign(sampling_weight=1.0)
    reviewed = verdicts[verdicts["post_id"].isin(drawn)].drop_duplicates("post_id").copy()
    answered_share = len(reviewed) / len(drawn) if len(drawn) else 0.0
    pi = p.posts["pi"].reindex(reviewed["post_id"]).to_numpy() * answered_share
    reviewed["sampling_weight"] = 1.0 / pi
    reviewed["queue"] = QUEUE
    frame = pd.concat(
        [queue[[*LABEL_COLUMNS, "queue"]], reviewed[[*LABEL_COLUMNS, "queue"]]], ignore_index=True
    )
    frame["is_harmful"] = frame["is_harmful"].astype(bool)
    w, y = frame["sampling_weight"].to_numpy(float), frame["is_harmful"].to_numpy(bool)
    summary = {
        "posts": len(p.posts),
        "queue": len(queue),
        "review_sample": len(reviewed),
        "requested": len(drawn),
        "pending": len(drawn) - len(reviewed),
        "strata": {k: int(v) for k, v in p.posts["stratum"].value_counts().sort_index().items()},
        "effective_n": float(w.sum() ** 2 / (w**2).sum()) if len(w) else 0.0,
        "harmful_estimate": float((w * y).sum()),
    }
    return frame, summary


def review(
    p: Plan, queue_labels: pd.DataFrame, review_queue, seed: int
) -> tuple[pd.DataFrame, dict]:
    """Draw, send the drawn posts to ``review_queue`` (a :class:`vigil.review.ReviewQueue`), and
    return :func:`labels` of whatever is answered."""
    drawn = draw(p, seed)
    verdicts = (
        review_queue.review(
            drawn.to_numpy(),
            reason=QUEUE,
            inclusion_probability=p.posts["pi"].reindex(drawn).to_numpy(),
        )
        if len(drawn)
        else pd.DataFrame(columns=list(LABEL_COLUMNS[:-1]))
    )
    frame, summary = labels(p, drawn, verdicts, queue_labels)
    log.info(
        "holdout review sample: %d posts (%s); %d requested, %d answered (%d harmful), %d "
        "pending; %d queue labels; effective n %.0f, harmful posts estimated %.1f",
        summary["posts"],
        ", ".join(f"{k} {v}" for k, v in summary["strata"].items()),
        summary["requested"],
        summary["review_sample"],
        int(frame.loc[frame["queue"] == QUEUE, "is_harmful"].sum()),
        summary["pending"],
        summary["queue"],
        summary["effective_n"],
        summary["harmful_estimate"],
    )
    return frame, summary
