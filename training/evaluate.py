"""Evaluation metrics given frames: ranking and calibration, the harmful-views replay, slices.

Pure functions of scored frames and labels (no I/O). Every metric weights each test post by its
``sampling_weight`` (inverse inclusion probability), so numbers describe the real stream where
harmful posts are rare, not the enriched labeled set. "Impression-weighted" metrics multiply that
weight by the post's views. Which labels the test frame carries is the caller's choice: the
platform uses its moderator labels with their queue weights (``training.assess``); a caller
that knows better labels for the test days may pass its own. :func:`label_sources` says which.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from training.calibrate import wilson_lower_bound
from vigil.contracts import HARM_TYPES

log = logging.getLogger(__name__)


# -- ranking and calibration metrics --------------------------------------------------------
def pr_auc(y, s, w=None) -> float:
    from sklearn.metrics import average_precision_score

    y = np.asarray(y).astype(int)
    if y.min() == y.max():
        return float("nan")
    return float(average_precision_score(y, s, sample_weight=w))


def recall_at_precision(y, s, w=None, precision: float = 0.95) -> float:
    from sklearn.metrics import precision_recall_curve

    y = np.asarray(y).astype(int)
    if y.min() == y.max():
        return float("nan")
    prec, rec, _ = precision_recall_curve(y, s, sample_weight=w)
    ok = prec >= precision
    return float(rec[ok].max()) if ok.any() else 0.0


def expected_calibration_error(y, p, w=None, bins: int = 10) -> float:
    """sum over equal-width bins of (bin weight share) x |mean predicted - observed rate|."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    w = np.ones_like(p) if w is None else np.asarray(w, dtype=np.float64)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = w.sum()
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if w[m].sum() > 0:
            ece += (
                w[m].sum()
                / total
                * abs(np.average(p[m], weights=w[m]) - np.average(y[m], weights=w[m]))
            )
    return float(ece)


def ranking_metrics(frame: pd.DataFrame, score_col: str, target_precision: float = 0.95) -> dict:
    y, s = frame["is_harmful"].to_numpy(), frame[score_col].to_numpy()
    w = frame["sampling_weight"].to_numpy(dtype=np.float64)
    wv = w * np.maximum(frame["views_final"].to_numpy(dtype=np.float64), 0.0)
    return {
        "pr_auc": pr_auc(y, s, w),
        "recall_at_95p": recall_at_precision(y, s, w, target_precision),
        "pr_auc_impressions": pr_auc(y, s, wv),
        "recall_at_95p_impressions": recall_at_precision(y, s, wv, target_precision),
        "pr_auc_labeled_set": pr_auc(y, s),
    }


# -- the replay -------------------------------------------------------------------------------
def views_at(timelines: pd.DataFrame, post_ids, times) -> np.ndarray:
    """Cumulative views of each post at each time (latest snapshot <= time; 0 before any)."""
    q = pd.DataFrame(
        {
            "post_id": np.asarray(post_ids),
            "t": pd.to_datetime(pd.Series(list(times)), utc=True).to_numpy(),
            "i": np.arange(len(post_ids)),
        }
    )
    q["t"] = pd.to_datetime(q["t"], utc=True)
    tl = timelines[["post_id", "event_timestamp", "views"]].copy()
    tl["event_timestamp"] = pd.to_datetime(tl["event_timestamp"], utc=True)
    q["t"] = q["t"].astype(tl["event_timestamp"].dtype)
    merged = pd.merge_asof(
        q.sort_values("t"),
        tl.sort_values("event_timestamp"),
        left_on="t",
        right_on="event_timestamp",
        by="post_id",
        direction="backward",
    )
    return merged.sort_values("i")["views"].fillna(0.0).to_numpy(dtype=np.float64)


def replay(
    examples: pd.DataFrame, timelines: pd.DataFrame, score_col: str, threshold: float
) -> pd.DataFrame:
    """Per post: removed at its first scoring event with score >= threshold; views prevented.

    ``examples`` has post_id, scored_at, is_harmful, sampling_weight and the score. A removed post
    stops gaining views at its removal time, so the views it would have got afterwards (total views
    at the end of the data minus views at removal) are prevented.
    """
    ex = examples.sort_values(["post_id", "scored_at"])
    hit = ex[ex[score_col] >= threshold].groupby("post_id")["scored_at"].min()
    posts = ex.groupby("post_id").agg(
        is_harmful=("is_harmful", "first"), w=("sampling_weight", "first")
    )
    posts["removed_at"] = hit.reindex(posts.index)
    last = timelines.sort_values("event_timestamp").groupby("post_id")["views"].last()
    posts["views_total"] = last.reindex(posts.index).fillna(0.0).astype(float)
    posts["removed"] = posts["removed_at"].notna()
    at_removal = np.zeros(len(posts))
    if posts["removed"].any():
        r = posts[posts["removed"]]
        at_removal[posts["removed"].to_numpy()] = views_at(
            timelines, r.index.to_numpy(), r["removed_at"]
        )
    posts["views_prevented"] = np.where(
        posts["removed"], np.maximum(posts["views_total"] - at_removal, 0.0), 0.0
    )
    return posts


def replay_summary(posts: pd.DataFrame) -> dict:
    y, w = posts["is_harmful"].astype(bool).to_numpy(), posts["w"].to_numpy(dtype=np.float64)
    rem = posts["removed"].to_numpy()
    harm_views = (w * posts["views_total"] * y).sum()
    removed_w = (w * rem).sum()
    return {
        "harmful_views_prevented_share": float(
            (w * posts["views_prevented"] * y).sum() / max(harm_views, 1e-12)
        ),
        "harmful_views_prevented": float((w * posts["views_prevented"] * y).sum()),
        "harmful_views_total": float(harm_views),
        "harmful_posts_removed_share": float((w * rem * y).sum() / max((w * y).sum(), 1e-12)),
        "benign_posts_removed": int((rem & ~y).sum()),
        "benign_posts_removed_weighted": float((w * rem * ~y).sum()),
        "benign_removed_rate": float((w * rem * ~y).sum() / max((w * ~y).sum(), 1e-12)),
        "removal_precision": float((w * rem * y).sum() / removed_w)
        if removed_w > 0
        else float("nan"),
        "posts_removed": int(rem.sum()),
        # Kish's effective number of removed posts (benign posts of the holdout are sampled and
        # weighted): what a confidence bound on removal_precision may count on
        "removed_effective_n": float(removed_w**2 / max((w[rem] ** 2).sum(), 1e-12))
        if removed_w > 0
        else 0.0,
    }


# -- slices ---------------------------------------------------------------------------------------
def slice_table(
    posts: pd.DataFrame, keys: pd.DataFrame, min_posts: float, flag_abs: float
) -> list[dict]:
    """Recall and false-positive rate of removals per slice, flagged when far from overall.

    Flag rule: |recall - overall recall| > flag_abs, or FPR > 2 x overall FPR + 0.005; only
    slices with at least ``min_posts`` labeled posts of the relevant class are flagged. Every
    recall carries a 95% Wilson interval (``recall_low``, ``recall_high``) on the effective number
    of harmful posts (Kish), so a slice of 1-3 harmful posts shows how little it says.
    """
    df = posts.join(keys)
    y, rem, w = df["is_harmful"].astype(bool), df["removed"], df["w"]

    def rates(m):
        pos, neg = m & y, m & ~y
        recall = (w[pos] * rem[pos]).sum() / w[pos].sum() if w[pos].sum() > 0 else float("nan")
        fpr = (w[neg] * rem[neg]).sum() / w[neg].sum() if w[neg].sum() > 0 else float("nan")
        return float(recall), float(fpr), int(pos.sum()), int(neg.sum())

    def interval(m) -> dict:
        pos = m & y
        return dict(zip(("recall_low", "recall_high"), recall_interval(rem[pos], w[pos])))

    everything = pd.Series(True, index=df.index)
    all_recall, all_fpr, _, _ = rates(everything)
    rows = [
        {
            "slice": "overall",
            "value": "all",
            "recall": all_recall,
            **interval(everything),
            "fpr": all_fpr,
            "harmful_posts": int(y.sum()),
            "benign_posts": int((~y).sum()),
            "flag": "",
        }
    ]
    for key in [c for c in keys.columns]:
        for value, m in df.groupby(key).groups.items():
            mask = pd.Series(df.index.isin(m), index=df.index)
            recall, fpr, n_pos, n_neg = rates(mask)
            flags = []
            if (
                n_pos >= min_posts
                and not math.isnan(recall)
                and abs(recall - all_recall) > flag_abs
            ):
                flags.append("recall")
            if n_neg >= min_posts and not math.isnan(fpr) and fpr > 2 * all_fpr + 0.005:
                flags.append("fpr")
            rows.append(
                {
                    "slice": key,
                    "value": str(value),
                    "recall": recall,
                    **interval(mask),
                    "fpr": fpr,
                    "harmful_posts": n_pos,
                    "benign_posts": n_neg,
                    "flag": ",".join(flags),
                }
            )
    return rows


def recall_interval(removed, w, z: float = 1.96) -> tuple[float, float]:
    """Two-sided Wilson interval of a weighted recall: ``removed`` flags of the harmful posts.

    n is Kish's effective number of posts (sum w)^2 / sum w^2 (the plain count when weights are
    equal); (nan, nan) when there is no harmful post.
    """
    removed = np.asarray(removed, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if len(w) == 0 or w.sum() <= 0:
        return float("nan"), float("nan")
    p = float((w * removed).sum() / w.sum())
    n = float(w.sum() ** 2 / (w**2).sum())
    low = wilson_lower_bound(p * n, n, z)
    high = 1.0 - wilson_lower_bound((1.0 - p) * n, n, z)
    return low, high


def slice_keys(examples: pd.DataFrame) -> pd.DataFrame:
    first = examples.sort_values("scored_at").groupby("post_id").first()
    keys = pd.DataFrame(index=first.index)
    keys["account_age_bucket"] = first.get(
        "account_age_bucket", pd.Series("unknown", index=first.index)
    )
    keys["home_country"] = first.get("home_country", pd.Series("unknown", index=first.index))
    harm = pd.Series("benign", index=first.index, dtype=object)
    for h in HARM_TYPES:
        col = f"is_{h}"
        if col in first.columns:
            harm = harm.where(
                ~first[col].astype(bool), h
            )  # a multi-type post goes to its last type
    keys["harm_type"] = harm
    return keys


# -- the whole test split ----------------------------------------------------------------------
def post_max(frame: pd.DataFrame, col: str) -> pd.DataFrame:
    """Per post: the highest score over its scoring events (a post is removed at its first hit)."""
    return frame.groupby("post_id").agg(
        score=(col, "max"), y=("is_harmful", "first"), w=("sampling_weight", "first")
    )


def label_sources(frame: pd.DataFrame) -> dict[str, int]:
    """Posts per label source (the ``queue`` column: a labeling queue, score_audit, ...)."""
    if "queue" not in frame.columns:
        return {"unknown": int(frame["post_id"].nunique())}
    first = frame.groupby("post_id")["queue"].first().fillna("unknown").astype(str)
    return {k: int(v) for k, v in first.value_counts().sort_index().items()}


def test_metrics(
    test: pd.DataFrame, timelines: pd.DataFrame, thresholds: dict, cascade_tau: float, cfg
) -> dict:
    """Every test metric from a scored test frame (see ``training.assess.score_frame``).

    ``thresholds``: model -> threshold record (``threshold`` and how it was chosen); ``cfg`` the
    training config (target precision, review band, slice rules, cascade promise).
    """
    from training import cascade

    metrics: dict = {"models": {}, "replay": {}}
    for name in ("baseline", "multitask", "student"):
        m = ranking_metrics(test, name, cfg.target_precision)
        if f"{name}_cal" in test.columns:
            m["ece"] = expected_calibration_error(
                test["is_harmful"], test[f"{name}_cal"], test["sampling_weight"]
            )
        metrics["models"][name] = m
    t_remove = thresholds["multitask"]["threshold"]
    posts_by_model = {}
    for name, col, threshold in (
        ("baseline", "baseline_cal", thresholds["baseline"]["threshold"]),
        ("multitask", "multitask_cal", t_remove),
        ("cascade", "cascade_cal", t_remove),
    ):
        posts_by_model[name] = replay(test, timelines, col, threshold)
        metrics["replay"][name] = replay_summary(posts_by_model[name])
    metrics["cascade"] = cascade.cascade_report(
        test["post_id"],
        test["student"],
        test["multitask_cal"],
        test["is_harmful"],
        test["sampling_weight"],
        t_remove,
        cascade_tau,
    )
    metrics["cascade"]["meets_recall_promise"] = bool(
        metrics["cascade"]["recall_kept"] >= cfg.cascade_recall_keep
    )
    metrics["thresholds"] = {
        f"{name}_{k}": v for name, t in thresholds.items() for k, v in t.items()
    } | {"review_band_low": t_remove * cfg.review_band, "cascade_tau": cascade_tau}
    metrics["slices"] = slice_table(
        posts_by_model["multitask"], slice_keys(test), cfg.slice_min_weight, cfg.slice_flag_abs
    )
    metrics["slices_flagged"] = [
        f"{r['slice']}={r['value']} ({r['flag']})" for r in metrics["slices"] if r["flag"]
    ]
    metrics["review_band"] = review_band(post_max(test, "multitask_cal"), t_remove, cfg.review_band)
    metrics["test_examples"] = len(test)
    metrics["test_posts"] = int(test["post_id"].nunique())
    metrics["test_label_sources"] = label_sources(test)
    return metrics


def review_band(pm: pd.DataFrame, t_remove: float, band_share: float) -> dict:
    """How much of the stream the review band sends to humans, and how harmful it is."""
    low = t_remove * band_share if math.isfinite(t_remove) else 1.0
    band = (pm["score"] >= low) & (pm["score"] < t_remove)
    return {
        "posts": int(band.sum()),
        "share_of_stream": float((pm["w"] * band).sum() / pm["w"].sum()),
        "harmful_share": float(
            (pm["w"] * band * pm["y"]).sum() / max((pm["w"] * band).sum(), 1e-12)
        ),
    }


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and math.isinf(value):
        return str(value)
    return str(value)
