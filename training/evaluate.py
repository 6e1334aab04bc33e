"""Evaluation: metrics at the true prevalence, the harmful-views replay, slices, the HTML report.

Every metric weights each test post by its ``sampling_weight`` (inverse inclusion probability), so
numbers describe the real stream where harmful posts are rare, not the enriched labeled set.
"Impression-weighted" metrics multiply that weight by the post's views. The test posts are, when
the raw dir holds the simulator's delayed ground truth, a stratified sample of *all* posts created
in the test days (every harmful post + a seeded share of benign ones, :func:`truth_test_posts`);
otherwise the moderator labels of the test days with their queue weights. ``_truth`` is read here
only, for the test days only: training, calibration and thresholds use moderator labels.

``vigil evaluate [--model ID]`` rebuilds the registered model's test split and rewrites its report.
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from vigil.config import paths
from vigil.contracts import HARM_TYPES

log = logging.getLogger(__name__)


# -- the evaluation sample (evaluation only: training, calibration, thresholds never call this) -----
def truth_test_posts(
    raw_dir: Path, days: list[str], benign_rate: float, seed: int
) -> pd.DataFrame | None:
    """The test split at the true prevalence, from the simulator's delayed ground truth.

    A stratified sample of every post created on ``days``: all harmful posts (weight 1) and each
    benign post with probability ``benign_rate`` (weight 1 / rate), seeded. This stands for the
    moderator outcomes a platform learns later (appeals, audits); it is read only to evaluate, and
    only for the test days. Returns None when ``raw_dir/_truth/posts.jsonl`` does not exist.
    """
    path = Path(raw_dir) / "_truth" / "posts.jsonl"
    if not path.exists() or not days:
        return None
    truth = pd.read_json(path, lines=True, dtype={"post_id": "int64"})
    truth["day"] = pd.to_datetime(truth["created_at"], utc=True).dt.strftime("%Y-%m-%d")
    truth = truth[truth["day"].isin(set(days))].sort_values("post_id").reset_index(drop=True)
    harmful = truth["is_harmful"].astype(bool).to_numpy()
    keep = harmful | (np.random.default_rng([seed, 6]).random(len(truth)) < benign_rate)
    out = truth[keep].reset_index(drop=True)
    out["is_harmful"] = out["is_harmful"].astype(bool)
    for h in HARM_TYPES:
        out[f"is_{h}"] = out["harm_types"].map(lambda t, h=h: h in (t or []))
    out["sampling_weight"] = np.where(out["is_harmful"], 1.0, 1.0 / benign_rate)
    out["queue"] = "truth_sample"
    log.info(
        "evaluation sample from _truth: %d of %d test-day posts (%d harmful, benign rate %.3f)",
        len(out),
        len(truth),
        int(harmful.sum()),
        benign_rate,
    )
    return out[
        ["post_id", "is_harmful", *[f"is_{h}" for h in HARM_TYPES], "sampling_weight", "queue"]
    ]


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
    slices with at least ``min_posts`` labeled posts of the relevant class are flagged.
    """
    df = posts.join(keys)
    y, rem, w = df["is_harmful"].astype(bool), df["removed"], df["w"]

    def rates(m):
        pos, neg = m & y, m & ~y
        recall = (w[pos] * rem[pos]).sum() / w[pos].sum() if w[pos].sum() > 0 else float("nan")
        fpr = (w[neg] * rem[neg]).sum() / w[neg].sum() if w[neg].sum() > 0 else float("nan")
        return float(recall), float(fpr), int(pos.sum()), int(neg.sum())

    all_recall, all_fpr, _, _ = rates(pd.Series(True, index=df.index))
    rows = [
        {
            "slice": "overall",
            "value": "all",
            "recall": all_recall,
            "fpr": all_fpr,
            "harmful_posts": int(y.sum()),
            "benign_posts": int((~y).sum()),
            "flag": "",
        }
    ]
    for key in [c for c in keys.columns]:
        for value, m in df.groupby(key).groups.items():
            mask = df.index.isin(m)
            recall, fpr, n_pos, n_neg = rates(pd.Series(mask, index=df.index))
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
                    "fpr": fpr,
                    "harmful_posts": n_pos,
                    "benign_posts": n_neg,
                    "flag": ",".join(flags),
                }
            )
    return rows


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


# -- report ---------------------------------------------------------------------------------------
def _plots(
    test: pd.DataFrame, score_cols: dict[str, str], cal_col: str, slices: list[dict], out: Path
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    files = []
    y, w = test["is_harmful"].astype(int), test["sampling_weight"]
    if y.nunique() == 2:
        fig, ax = plt.subplots(figsize=(6, 4.5))
        for name, col in score_cols.items():
            p, r, _ = precision_recall_curve(y, test[col], sample_weight=w)
            ax.plot(r, p, label=name)
        ax.axhline(0.95, ls="--", c="grey", lw=0.8)
        ax.set(
            xlabel="recall", ylabel="precision", title="Precision-recall at true prevalence (test)"
        )
        ax.legend()
        fig.savefig(out / "pr_curves.png", dpi=90, bbox_inches="tight")
        plt.close(fig)
        files.append("pr_curves.png")

    fig, ax = plt.subplots(figsize=(5, 5))
    p = test[cal_col].to_numpy()
    bins = np.minimum((p * 10).astype(int), 9)
    xs, ys = [], []
    for b in range(10):
        m = bins == b
        if w[m].sum() > 0:
            xs.append(np.average(p[m], weights=w[m]))
            ys.append(np.average(y[m], weights=w[m]))
    ax.plot([0, 1], [0, 1], ls="--", c="grey")
    ax.plot(xs, ys, marker="o")
    ax.set(
        xlabel="calibrated probability", ylabel="observed harmful rate", title="Calibration (test)"
    )
    fig.savefig(out / "calibration.png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    files.append("calibration.png")

    rows = [r for r in slices if r["slice"] != "overall" and not math.isnan(r["recall"])]
    if rows:
        fig, ax = plt.subplots(figsize=(7, max(3, 0.3 * len(rows))))
        labels = [f"{r['slice']}={r['value']}" for r in rows]
        colors = ["tab:red" if r["flag"] else "tab:blue" for r in rows]
        ax.barh(labels, [r["recall"] for r in rows], color=colors)
        ax.axvline(slices[0]["recall"], c="k", ls="--", lw=0.8)
        ax.set(xlabel="recall of removals (red = flagged)", title="Slices (test)")
        fig.savefig(out / "slices.png", dpi=90, bbox_inches="tight")
        plt.close(fig)
        files.append("slices.png")
    return files


def _table(rows: list[dict]) -> str:
    if not rows:
        return "<p>(none)</p>"
    cols = list(dict.fromkeys(c for r in rows for c in r))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)

    def fmt(v):
        return f"{v:.4f}" if isinstance(v, float) else html.escape(str(v))

    body = "".join(
        "<tr>" + "".join(f"<td>{fmt(r.get(c, ''))}</td>" for c in cols) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(
    model_id: str,
    metrics: dict,
    test: pd.DataFrame,
    score_cols: dict[str, str],
    cal_col: str,
    out_dir: Path | None = None,
) -> Path:
    """metrics.json + report.html + PNGs under reports/models/<model_id>/."""
    out = Path(out_dir or paths().reports / "models" / model_id)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=_json_default))
    images = _plots(test, score_cols, cal_col, metrics.get("slices", []), out)
    model_rows = [
        {"model": k, **{m: v for m, v in vals.items() if not isinstance(v, (dict, list))}}
        for k, vals in metrics.get("models", {}).items()
    ]
    parts = [
        f"<html><head><meta charset='utf-8'><title>Vigil model {html.escape(model_id)}</title>",
        (
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style></head><body>"
        ),
        f"<h1>Model {html.escape(model_id)}</h1>",
        (
            f"<p>Feature service <b>{html.escape(str(metrics.get('feature_service')))}</b>; "
            f"windows {html.escape(json.dumps(metrics.get('windows', {})))}. Metrics are on the "
            "test split, weighted by sampling_weight (true prevalence).</p>"
        ),
        "<h2>Models (test)</h2>",
        _table(model_rows),
        "<h2>Decision thresholds</h2>",
        _table([metrics.get("thresholds", {})]),
        "<h2>Cascade</h2>",
        _table([metrics.get("cascade", {})]),
        "<h2>Slices (heavy model removals)</h2>",
        _table(metrics.get("slices", [])),
        "<h2>Baseline top features</h2>",
        _table(metrics.get("baseline_top_features", [])[:20]),
    ]
    parts += [f"<h2>{html.escape(img)}</h2><img src='{img}'>" for img in images]
    parts.append("</body></html>")
    (out / "report.html").write_text("\n".join(parts))
    log.info("report written to %s", out / "report.html")
    return out / "report.html"


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and math.isinf(value):
        return str(value)
    return str(value)


# -- CLI: vigil evaluate ------------------------------------------------------------------------
def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="model id (default: the champion)")


def run(args: argparse.Namespace) -> int:
    from training import registry
    from training.train import evaluate_bundle

    bundle = registry.load(args.model)
    metrics = evaluate_bundle(bundle)
    print(
        json.dumps(
            {k: metrics[k] for k in ("model_id", "models", "cascade", "replay") if k in metrics},
            indent=2,
            default=_json_default,
        )
    )
    return 0
