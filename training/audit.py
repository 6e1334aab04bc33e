"""The score audit: labels for the removal threshold, sampled by model score from the review queue.

Why: the labeling queues (``reported``, and a 0.4% ``random`` audit, weight ~250) see almost none
of the benign posts nobody reported, so near a candidate threshold the label-based precision rests
on a handful of heavy-weight labels and is far too optimistic or noisy. The audit sends, per model,
a budgeted sample of validation posts stratified by that model's score to human review
(a :class:`vigil.review.ReviewQueue`), and the threshold rule uses those labels with their
Horvitz-Thompson weights.

Design (per model, on the per-post maximum raw score over its scoring events, validation days only):
- posts with a queue label are known (inclusion probability 1): they cost no review;
- the unlabeled posts, highest score first, are cut into strata; stratum k gets a share ``b_k`` of
  the budget B and a sampling rate ``r_k``, so it holds round(b_k B / r_k) posts of which
  n_k = round(b_k B) are drawn by simple random sampling (seeded): inclusion probability
  pi = n_k / N_k. Defaults: the top B/2 unlabeled posts all (pi = 1), the next B at 1/4, the next
  2.5 B at 1/10: heavy sampling near and above the candidate thresholds.
- unlabeled posts below the last stratum are never sampled: the ``floor`` is the highest score
  among them and only thresholds above it are candidates (every post a candidate removes then has
  pi > 0, so the estimate is unbiased).
- the models' samples are drawn independently; a post drawn for either is reviewed once and counts
  for both, with the union probability pi = 1 - prod_m (1 - pi_m) (Horvitz-Thompson needs only the
  marginal inclusion probabilities).
- requests nobody has answered yet stay unobserved; the answered ones then stand for all drawn
  posts (answers assumed missing at random): their inclusion probability is multiplied by the
  share answered. With every request answered this changes nothing.

Second review (``second_review``, off by default): the queue-labeled posts in the *threshold
region* (a score at or above the lowest score of some model's first stratum, the census where the
removal threshold is decided) get a review too. Where the review and the queue label agree, the
label stands; where they disagree, the post counts as unobserved (``source`` ``disagree``): one of
the two is wrong and there is no third opinion. Why: near the top one queue label error (a harmful
post labeled benign) caps the precision bound for every threshold below it. Dropping the
disagreements keeps the precision estimate unbiased when the two labelings err independently and
at the same rate for harmful and benign posts (a post is then equally likely to be dropped
whatever its class); the posts kept carry a label wrong only when both are wrong. Every second
review is a label paid for: it counts in the queue's reviews.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

QUEUE = "score_audit"
SECOND_REVIEW = "second_review"  # request reason of the second reviews
DEFAULT_STRATA = ((0.5, 1.0), (0.25, 0.25), (0.25, 0.1))


def design(
    scores: pd.Series, labeled: pd.Series, budget: int, strata=DEFAULT_STRATA
) -> tuple[pd.DataFrame, float]:
    """Strata and inclusion probabilities for one model.

    ``scores`` and ``labeled`` are indexed by post_id. Returns (frame indexed by post_id with
    ``stratum`` (-1 = labeled, k >= 0, or None beyond the strata as NaN), ``pi`` and ``n_draw``
    per stratum, ``floor``): ``floor`` = highest score of an unlabeled post no stratum covers
    (-inf when all are covered).
    """
    scores = scores.astype(float)
    labeled = labeled.reindex(scores.index).fillna(False).astype(bool)
    out = pd.DataFrame({"score": scores, "stratum": np.nan, "pi": 0.0, "n_draw": 0})
    out.loc[labeled, ["stratum", "pi"]] = [-1, 1.0]
    unl = scores[~labeled].sort_values(ascending=False, kind="stable")
    start = 0
    for k, (share, rate) in enumerate(strata):
        if start >= len(unl):
            break
        if not (0 < rate <= 1) or share < 0:
            raise ValueError(f"audit stratum {k}: share {share} and rate {rate} must be in (0, 1]")
        n = round(share * budget)
        size = min(round(n / rate), len(unl) - start)
        n = min(n, size)
        if size <= 0:
            continue
        ids = unl.index[start : start + size]
        out.loc[ids, "stratum"] = k
        out.loc[ids, "pi"] = n / size
        out.loc[ids, "n_draw"] = n
        start += size
    floor = float(unl.iloc[start]) if start < len(unl) else -math.inf
    return out, floor


def draw(plan: pd.DataFrame, seed) -> pd.Index:
    """Post ids drawn: in each stratum k >= 0, a simple random sample of ``n_draw`` posts."""
    rng = np.random.default_rng(seed)
    stratum = plan["stratum"].to_numpy()
    ids_all, n_draw = plan.index.to_numpy(), plan["n_draw"].to_numpy()
    picked = []
    for k in np.unique(stratum[stratum >= 0]):
        m = stratum == k
        ids = np.sort(ids_all[m])
        picked.append(ids[rng.permutation(len(ids))[: int(n_draw[m][0])]])
    return pd.Index(np.sort(np.concatenate(picked)) if picked else np.array([], dtype=np.int64))


def threshold_region(
    plans: dict[str, pd.DataFrame], post_scores: dict[str, pd.Series]
) -> pd.Series:
    """Posts whose score under some model is at or above the lowest score of that model's first
    stratum (stratum 0 of :func:`design`); when every post is labeled, every post; when the first
    stratum is empty otherwise (no budget), none."""
    region = None
    for name, plan in plans.items():
        scores = post_scores[name].reindex(plan.index).astype(float)
        stratum = plan["stratum"].to_numpy()
        first = stratum == 0
        if first.any():
            low = float(scores[first].min())
        else:
            low = -math.inf if (stratum == -1).all() else math.inf
        inside = scores >= low
        region = inside if region is None else region | inside
    return region.fillna(False).astype(bool)


def union_pi(pis: list[pd.Series]) -> pd.Series:
    """Inclusion probability of independent samples' union: 1 - prod (1 - pi_m)."""
    frame = pd.concat(pis, axis=1).fillna(0.0)
    return 1.0 - (1.0 - frame).prod(axis=1)


def run(
    post_scores: dict[str, pd.Series],
    labels: pd.Series,
    queue,
    budget: int,
    seed: int,
    strata=DEFAULT_STRATA,
    second_review: bool = False,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Design, draw and review for every model; returns (audit, floors).

    ``post_scores``: model -> per-post maximum raw score (indexed by post_id, the whole validation
    population); ``labels``: queue label (bool) of the labeled posts, indexed by post_id.
    ``audit`` has one row per post of the population: ``observed`` (labeled or reviewed), ``y``
    (the label or the review verdict; NaN when not observed), ``pi`` (union inclusion
    probability), ``source`` (queue / score_audit / none; with ``second_review``: disagree) and
    ``second_review`` (the second review's verdict of a queue-labeled post in the threshold
    region, else NaN; see the module doc).
    """
    index = next(iter(post_scores.values())).index
    labeled = pd.Series(index.isin(labels.index), index=index)
    plans, floors, drawn = {}, {}, []
    for i, (name, scores) in enumerate(post_scores.items()):
        plan, floor = design(scores.reindex(index), labeled, budget, strata)
        plans[name], floors[name] = plan, floor
        ids = draw(plan, [seed, 31, i])
        drawn.append(ids)
        log.info(
            "score audit %s: %d labeled posts known, %d strata cover %d unlabeled posts, %d drawn; "
            "floor %.4g",
            name,
            int(labeled.sum()),
            int(plan["stratum"].max() + 1) if (plan["stratum"] >= 0).any() else 0,
            int((plan["stratum"] >= 0).sum()),
            len(ids),
            floor,
        )
    ids = drawn[0]
    for more in drawn[1:]:
        ids = ids.union(more)
    pi = union_pi([p["pi"] for p in plans.values()]).reindex(index)
    verdicts = (
        queue.review(ids.to_numpy(), reason=QUEUE, inclusion_probability=pi.reindex(ids).to_numpy())
        if len(ids)
        else pd.DataFrame(columns=["post_id", "is_harmful"])
    )
    audit = pd.DataFrame(index=index)
    audit["pi"] = pi
    audit["y"] = np.nan
    audit["source"] = "none"
    known = labels.reindex(index).dropna()
    audit.loc[known.index, "y"] = known.astype(float)
    audit.loc[known.index, "source"] = "queue"
    if len(verdicts):
        v = verdicts.set_index("post_id")["is_harmful"].astype(float)
        audit.loc[v.index, "y"] = v
        audit.loc[v.index, "source"] = QUEUE
        # Unanswered requests: the answered posts stand for all drawn ones (missing at random).
        audit.loc[v.index, "pi"] *= len(v) / len(ids)
    audit["second_review"] = np.nan
    if second_review:
        _second_review(audit, queue, threshold_region(plans, post_scores))
    audit["observed"] = audit["y"].notna()
    audit.loc[audit["source"].isin(["queue", "disagree"]), "pi"] = 1.0
    log.info(
        "score audit: %d posts requested, %d answered (%d harmful), %d pending; %d queue labels",
        len(ids),
        int((audit["source"] == QUEUE).sum()),
        int(audit.loc[audit["source"] == QUEUE, "y"].sum()),
        len(ids) - len(verdicts),
        int((audit["source"] == "queue").sum()),
    )
    return audit, floors


def _second_review(audit: pd.DataFrame, queue, region: pd.Series) -> None:
    """Review the queue-labeled posts of ``region`` (in place): a disagreeing verdict makes the
    post unobserved (``source`` disagree, ``y`` NaN); no verdict yet: the queue label stands."""
    ids = audit.index[(audit["source"] == "queue") & region.reindex(audit.index, fill_value=False)]
    if not len(ids):
        return
    verdicts = queue.review(
        ids.to_numpy(), reason=SECOND_REVIEW, inclusion_probability=np.ones(len(ids))
    )
    if not len(verdicts):
        log.info("score audit second review: %d requested, none answered yet", len(ids))
        return
    v = verdicts.set_index("post_id")["is_harmful"].astype(float)
    audit.loc[v.index, "second_review"] = v
    disagree = v.index[v.to_numpy() != audit.loc[v.index, "y"].to_numpy()]
    audit.loc[disagree, "y"] = np.nan
    audit.loc[disagree, "source"] = "disagree"
    log.info(
        "score audit second review: %d queue-labeled posts in the threshold region requested, "
        "%d answered, %d disagree with their queue label and are now unobserved (queue harmful, "
        "review benign: %d; queue benign, review harmful: %d)",
        len(ids),
        len(v),
        len(disagree),
        int((v.loc[disagree] == 0).sum()),
        int((v.loc[disagree] == 1).sum()),
    )
