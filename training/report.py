"""The model report: ``reports/models/<model_id>/`` with metrics.json, report.html and plots.

Written for a reviewer: which labels each number rests on, the data windows, one row per model
in the threshold table, slices with an interval on every recall, and alt text on every plot.
"""

from __future__ import annotations

import html
import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from training.evaluate import _json_default
from vigil.config import paths

log = logging.getLogger(__name__)

# Threshold record keys shown per model, in this order (the rest stay in metrics.json).
THRESHOLD_COLUMNS = (
    "labels",
    "threshold",
    "raw_threshold",
    "precision_lower_bound",
    "n_removed",
    "audit_reviews",
    "audit_pending",
    "audit_posts",
    "audit_floor",
    "population_posts",
    "population_removed_est",
    "queue_labels_raw_threshold",
)
SLICE_COLUMNS = (
    "slice",
    "value",
    "harmful_posts",
    "recall",
    "recall_low",
    "recall_high",
    "benign_posts",
    "fpr",
    "flag",
)

# Author-age groups of the new-account slice: (name, training.datasets.account_age_bucket values).
AGE_GROUPS = (("<7d", ("<7d",)), ("7-30d", ("7-30d",)), (">=30d", ("30-180d", ">180d")))
NEW_ACCOUNT_COLUMNS = (
    "model",
    "author_age",
    "harmful_posts",
    "recall",
    "recall_low",
    "recall_high",
    "removed_posts",
    "precision",
    "precision_low",
    "precision_high",
)
MENTION_COLUMNS = (
    "threshold",
    "mentions",
    "positive",
    "flagged",
    "precision",
    "precision_low",
    "precision_high",
    "recall",
    "recall_low",
    "recall_high",
    "pr_auc",
    "recall_at_95p",
)


def new_account_rows(test: pd.DataFrame, models: dict[str, tuple[str, float]]) -> list[dict]:
    """Recall and precision of removals by author age (< 7 days, 7-30, >= 30), per model.

    ``models``: name -> (score column, removal threshold). A post is removed when any of its
    scoring events reaches the threshold; recall and precision are weighted by
    ``sampling_weight``, each with a 95% Wilson interval on Kish's effective n
    (:func:`training.evaluate.recall_interval`)."""
    from training.evaluate import recall_interval

    rows = []
    for name, (col, threshold) in models.items():
        if col not in test.columns:
            continue
        pm = test.groupby("post_id").agg(
            score=(col, "max"),
            y=("is_harmful", "first"),
            w=("sampling_weight", "first"),
            age=("account_age_bucket", "first"),
        )
        y, w = pm["y"].astype(bool).to_numpy(), pm["w"].to_numpy(float)
        rem = (pm["score"] >= threshold).to_numpy()
        known = {b for _, bs in AGE_GROUPS for b in bs}
        unknown = tuple(sorted(set(pm["age"].astype(str)) - known))
        groups = [*AGE_GROUPS, *([("unknown", unknown)] if unknown else [])]
        for group, buckets in groups:
            m = pm["age"].astype(str).isin(buckets).to_numpy()
            pos, out = m & y, m & rem
            r_low, r_high = recall_interval(rem[pos], w[pos])
            p_low, p_high = recall_interval(y[out], w[out])
            rows.append(
                {
                    "model": name,
                    "author_age": group,
                    "harmful_posts": int(pos.sum()),
                    "recall": float((w * rem)[pos].sum() / w[pos].sum()) if pos.any() else math.nan,
                    "recall_low": r_low,
                    "recall_high": r_high,
                    "removed_posts": int(out.sum()),
                    "precision": float((w * y)[out].sum() / w[out].sum())
                    if out.any()
                    else math.nan,
                    "precision_low": p_low,
                    "precision_high": p_high,
                }
            )
    return rows


def harassment_section(harassment: dict | None) -> str:
    """The mention model's metrics on the test days against the logged labels, and the label
    sources with their noise and delay (training.mentions)."""
    from training.mentions import LABEL_SOURCES

    head = "<h2>Harassment at the @mention (mention level, test days, logged labels)</h2>"
    if not harassment:
        return head + (
            "<p>No mention model was trained (no mentions in the lake, or too few train and "
            "validation days).</p>"
        )
    op = harassment.get("operating_point", {})
    counts = harassment.get("label_sources", {})
    sources = [
        {
            "source": src,
            "what": what,
            "noise": noise,
            "delay": delay,
            "mentions": counts.get(src, {}).get("mentions", 0),
            "positive": counts.get(src, {}).get("positive", 0),
            "flagged": counts.get(src, {}).get("flagged", 0),
        }
        for src, (what, noise, delay) in LABEL_SOURCES.items()
    ]
    return "\n".join(
        [
            head,
            (
                "<p>One example per (post or reply, mentioned user). A mention is positive when a "
                "moderator labeled its post harmful, else when the target blocked, muted or "
                "reported the author soon after; flagged = mention score at or above the "
                f"threshold ({html.escape(str(op.get('labels', '')))}; "
                f"{html.escape(str(op.get('rule', '')))}). Trained on "
                f"{harassment.get('train_mentions', 0)} mentions of the train and validation days "
                f"({harassment.get('train_positive', 0)} positive).</p>"
            ),
            _table([harassment], MENTION_COLUMNS),
            "<h3>Label sources</h3>",
            _table(
                sources, ("source", "what", "noise", "delay", "mentions", "positive", "flagged")
            ),
        ]
    )


def _plots(
    test: pd.DataFrame, score_cols: dict[str, str], cal_col: str, slices: list[dict], out: Path
) -> list[tuple[str, str]]:
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
        files.append(
            (
                "pr_curves.png",
                "Precision against recall on the test split for "
                + ", ".join(score_cols)
                + "; dashed line at precision 0.95.",
            )
        )

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
    files.append(
        (
            "calibration.png",
            (
                f"Observed harmful rate against calibrated probability ({cal_col}) in ten bins; "
                "the dashed diagonal is perfect calibration."
            ),
        )
    )

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
        files.append(
            (
                "slices.png",
                (
                    f"Recall of removals for {len(rows)} slices; red bars are flagged slices, the "
                    "dashed line is the overall recall. The slice table gives each recall's interval."
                ),
            )
        )
    return files


def _fmt(v) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.4f}"
    return html.escape(str(v))


def _table(rows: list[dict], columns=None) -> str:
    if not rows:
        return "<p>(none)</p>"
    cols = list(columns or dict.fromkeys(c for r in rows for c in r))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(r.get(c, ''))}</td>" for c in cols) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def threshold_rows(thresholds: dict) -> list[dict]:
    """metrics["thresholds"] (flat ``<model>_<key>`` names) as one row per model."""
    rows = []
    for model in ("baseline", "multitask"):
        prefix = f"{model}_"
        record = {k[len(prefix) :]: v for k, v in thresholds.items() if k.startswith(prefix)}
        if record:
            rows.append(
                {"model": model, **{k: record[k] for k in THRESHOLD_COLUMNS if k in record}}
            )
    return rows


def window_rows(windows: dict) -> list[dict]:
    """The data windows as rows: split, from, to (ISO timestamps)."""
    return [
        {"split": name, "from": str(span[0]), "to": str(span[-1])}
        for name, span in windows.items()
        if isinstance(span, (list, tuple)) and span
    ]


def labels_paragraph(labels: dict) -> str:
    """One paragraph naming the labels behind training, thresholds and the test metrics."""
    if not labels:
        return ""
    test = ", ".join(f"{k}: {v} posts" for k, v in labels.get("test", {}).items()) or "none"
    return (
        "<h2>Labels used</h2><ul>"
        f"<li>Training: {html.escape(str(labels.get('train', '')))}</li>"
        f"<li>Calibration and thresholds: {html.escape(str(labels.get('thresholds', '')))}</li>"
        f"<li>Test metrics: {html.escape(test)}</li></ul>"
    )


def write_report(
    model_id: str,
    metrics: dict,
    test: pd.DataFrame,
    score_cols: dict[str, str],
    cal_col: str,
    out_dir: Path | None = None,
    title: str = "",
) -> Path:
    """metrics.json + report.html + PNGs under reports/models/<model_id>/ (or ``out_dir``)."""
    out = Path(out_dir or paths().reports / "models" / model_id)
    out.mkdir(parents=True, exist_ok=True)
    thresholds = metrics.get("thresholds", {})
    metrics = metrics | {
        "new_accounts": new_account_rows(
            test,
            {
                m: (f"{m}_cal", thresholds[f"{m}_threshold"])
                for m in ("baseline", "multitask")
                if f"{m}_threshold" in thresholds and "account_age_bucket" in test.columns
            },
        )
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=_json_default))
    images = _plots(test, score_cols, cal_col, metrics.get("slices", []), out)
    model_rows = [
        {"model": k, **{m: v for m, v in vals.items() if not isinstance(v, (dict, list))}}
        for k, vals in metrics.get("models", {}).items()
    ]
    others = {k: v for k, v in thresholds.items() if not k.startswith(("baseline_", "multitask_"))}
    name = html.escape(model_id)
    parts = [
        f"<html><head><meta charset='utf-8'><title>Vigil model {name}</title>",
        (
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style></head><body>"
        ),
        f"<h1>Model {name}{html.escape(title)}</h1>",
        (
            f"<p>Feature service <b>{html.escape(str(metrics.get('feature_service')))}</b>. "
            "Metrics are on the test split, each post weighted by its sampling_weight.</p>"
        ),
        labels_paragraph(metrics.get("labels", {})),
        "<h2>Data windows</h2>",
        _table(window_rows(metrics.get("windows", {})), ("split", "from", "to")),
        "<h2>Models (test)</h2>",
        _table(model_rows),
        "<h2>Decision thresholds (chosen on validation)</h2>",
        _table(threshold_rows(thresholds)),
        _table([others]) if others else "",
        "<h2>Cascade</h2>",
        _table([metrics.get("cascade", {})]),
        "<h2>Slices (heavy model removals; recall with a 95% Wilson interval)</h2>",
        _table(metrics.get("slices", []), SLICE_COLUMNS),
        "<h2>New accounts (removals by author age; 95% Wilson intervals)</h2>",
        _table(metrics["new_accounts"], NEW_ACCOUNT_COLUMNS),
        harassment_section(metrics.get("harassment")),
        "<h2>Baseline top features</h2>",
        _table(metrics.get("baseline_top_features", [])[:20]),
    ]
    parts += [
        f"<h2>{html.escape(img)}</h2><img src='{img}' alt='{html.escape(alt, quote=True)}'>"
        for img, alt in images
    ]
    parts.append("</body></html>")
    (out / "report.html").write_text("\n".join(parts))
    log.info("report written to %s", out / "report.html")
    return out / "report.html"
