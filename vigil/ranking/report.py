"""The ranking report: ``ranking/report/dt=D/`` with report.json, report.html and plots.

Written by the ``vigil_ranking`` DAG after the gate, from the platform's own data (no truth):

- **Replay on the held-out day** before D: every ranker (:data:`vigil.ranking.rank.RANKERS`),
  each with and without the topic features (the ablation), is trained on the views before
  D - 1 day and re-orders each logged session of [D - 1 day, D); NDCG@10 against the session's
  observed grades (:func:`vigil.ranking.rank.grades`: 0 negative feedback, 1 view, 2 like or
  reply, 3 share), beside reverse-chronological, popularity and a seeded random order. Sessions
  whose views all have one grade are left out (every order scores 1).
- **The shown timelines** (``ranking/home/dt=D/timelines.parquet``): distinct topics in each
  user's top 10, the share of the larger viewpoint camp (camps from the follow graph,
  :func:`vigil.ranking.rank.follow_camps`; a user whose follows lean further is apart), slots
  whose post moderation has since removed, and the re-rank's harm figure of the shown posts.

Every plot has alt text. Re-running writes the same JSON (seeded, no clock time).
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from vigil.ranking import rank
from vigil.ranking.data import DAY
from vigil.ranking.features import FEATURES, build
from vigil.ranking.metrics import ndcg_at_k

log = logging.getLogger(__name__)

BASELINES = ("chron", "popularity", "random")


def replay(ctx, t: int, cfg: rank.RankConfig | None = None, seed: int = 0) -> dict:
    """Mean NDCG@10 per ordering over the held-out day's informative sessions."""
    cfg = cfg or rank.RankConfig()
    lo, split = ctx.view.start_ms + DAY, t - DAY
    models = {}
    for name in rank.RANKERS:
        c = replace(cfg, ranker=name)
        models[name] = rank.train(ctx, lo, split, cfg=c)
        models[f"{name}_no_topics"] = rank.train(ctx, lo, split, rank.without_topics(), cfg=c)
    users, rows, ts, label = rank.training_rows(ctx, split, t)
    if len(users) == 0:
        return {"sessions": 0, "ndcg": {}}
    order, groups = rank.sessions(users, ts, int(cfg.session_gap_min * 60_000))
    users, rows, ts, grade = users[order], rows[order], ts[order], rank.grades(label[order])
    X = build(ctx, users, rows, ts)
    scores = {m: rank.predict(model, X) for m, model in models.items()}
    scores["chron"] = ctx.created[rows].astype(float)
    scores["popularity"] = (
        X[:, FEATURES.index("post_views")] * X[:, FEATURES.index("post_like_rate")]
    )
    scores["random"] = np.random.default_rng([seed, 23, 300]).random(len(rows))
    out = {m: [] for m in scores}
    start = 0
    for n in groups.tolist():
        g = grade[start : start + n].astype(float)
        if g.min() < g.max():
            for m, s in scores.items():
                out[m].append(ndcg_at_k(g, np.argsort(-s[start : start + n], kind="stable")))
        start += n
    ndcg = {m: round(float(np.mean(v)), 4) for m, v in out.items() if v}
    gains = {r: round(ndcg[r] / ndcg[f"{r}_no_topics"] - 1, 4) for r in rank.RANKERS if r in ndcg}
    return {"held_out_from": int(split), "held_out_to": int(t), "views": len(rows),
            "sessions": len(out["chron"]), "ndcg": ndcg, "topic_features_gain": gains}  # fmt: skip


def timelines_health(ctx, frame: pd.DataFrame) -> dict:
    """Diversity and health of the shown top 10s (one row per user and slot)."""
    if frame.empty:
        return {"users": 0}
    camps = rank.follow_camps(ctx)
    f = frame.assign(camp=camps[frame["author_id"].to_numpy()])
    per = f.groupby("user_id").agg(topics=("topic", "nunique"), slots=("rank", "size"),
                                   plus=("camp", lambda c: float((c == 1).mean())))  # fmt: skip
    per["top_camp"] = np.maximum(per["plus"], 1 - per["plus"])
    lean = np.array([rank.user_lean(ctx, camps, int(u)) for u in per.index])
    per["follows_lean"] = np.maximum(lean, 1 - lean)
    removed = np.array([p in ctx.view.removed_ms for p in frame["post_id"].tolist()], dtype=bool)
    return {
        "users": len(per),
        "slots": len(frame),
        "distinct_topics_mean": round(float(per["topics"].mean()), 3),
        "users_under_4_topics": int((per["topics"] < 4).sum()),
        "users_over_80pct_one_camp": int(
            ((per["top_camp"] > 0.8) & (per["follows_lean"] <= 0.8)).sum()
        ),
        "users_whose_follows_lean_over_80pct": int((per["follows_lean"] > 0.8).sum()),
        "removed_slots": int(removed.sum()),
        "removed_slot_share": round(float(removed.mean()), 5),
        "rerank_harm_over_0_1": int((frame["rerank_harm"] > 0.1).sum()),
        "_topics": per["topics"].tolist(),
        "_top_camp": per["top_camp"].round(3).tolist(),
        "_harm": frame["rerank_harm"].round(4).tolist(),
    }


def _plots(rep: dict, out: Path) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    nd = rep["replay"].get("ndcg", {})
    if nd:
        fig, ax = plt.subplots(figsize=(7, 4))
        names = list(nd)
        ax.barh(names, [nd[n] for n in names], color=["C0" if "no_topics" not in n and n not in BASELINES
                                                      else "C7" for n in names])  # fmt: skip
        ax.set(xlabel="NDCG@10 (observed grades, held-out day)", title="Replay NDCG@10 by ordering")
        fig.savefig(out / "ndcg_by_model.png", dpi=90, bbox_inches="tight")
        plt.close(fig)
        alt = "Horizontal bars of mean NDCG@10 per ordering: " + ", ".join(
            f"{n} {v:.3f}" for n, v in nd.items()
        )
        files.append(("ndcg_by_model.png", alt))
    h = rep["timelines"]
    for key, name, xlabel, what in (
        ("_topics", "topics.png", "distinct topics in the top 10", "distinct topics per user"),
        ("_top_camp", "camps.png", "share of the larger camp in the top 10", "camp share per user"),
        ("_harm", "harm.png", "re-rank harm of shown posts", "harm figure per shown slot"),
    ):
        vals = h.get(key) or []
        if not vals:
            continue
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.hist(vals, bins=20)
        ax.set(xlabel=xlabel, ylabel="count", title=what)
        fig.savefig(out / name, dpi=90, bbox_inches="tight")
        plt.close(fig)
        v = np.asarray(vals, dtype=float)
        files.append((name, (f"Histogram of {what} over {len(v)} values: mean {v.mean():.3f}, "
                            f"min {v.min():.3f}, max {v.max():.3f}.")))  # fmt: skip
    return files


def _table(d: dict) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in d.items() if not str(k).startswith("_"))  # fmt: skip
    return f"<table>{rows}</table>"


def write(ctx, frame: pd.DataFrame, t: int, day: str, out: Path) -> dict:
    """Compute the report for ``day`` (ranking time ``t``) and write it under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    rep = {"day": day, "replay": replay(ctx, t), "timelines": timelines_health(ctx, frame)}
    images = _plots(rep, out)
    public = {
        **rep,
        "timelines": {k: v for k, v in rep["timelines"].items() if not k.startswith("_")},
    }
    (out / "report.json").write_text(json.dumps(public, indent=2, sort_keys=True) + "\n")
    r = rep["replay"]
    parts = [
        (
            "<!doctype html><html><head><meta charset='utf-8'><title>Ranking report "
            f"{html.escape(day)}</title><style>body{{font-family:sans-serif;margin:2em}}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}</style>"
            "</head><body>"
        ),
        f"<h1>Home timeline ranking, {html.escape(day)}</h1>",
        (
            "<p>Replay: each ordering re-ranks the logged sessions of the held-out day before the "
            "ranking time (rankers trained on the views before it); NDCG@10 against observed grades "
            "(0 negative feedback, 1 view, 2 like or reply, 3 share). Logged engagement, not the "
            "true utility the simulator's harness grades against.</p>"
        ),
        f"<h2>Replay NDCG@10 ({r.get('sessions', 0)} sessions)</h2>",
        _table(r.get("ndcg", {})),
        "<h2>Topic features (ranker vs the same without them)</h2>",
        _table(r.get("topic_features_gain", {})),
        "<h2>Shown timelines: diversity and health</h2>",
        _table(public["timelines"]),
    ]
    parts += [f"<h2>{html.escape(img)}</h2><img src='{img}' alt='{html.escape(alt, quote=True)}'>"
              for img, alt in images]  # fmt: skip
    parts.append("</body></html>")
    (out / "report.html").write_text("\n".join(parts) + "\n")
    log.info("ranking report %s: %d sessions replayed -> %s", day, r.get("sessions", 0), out)
    return public
