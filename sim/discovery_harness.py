"""Grades discovery (topics, trends, the home timeline) against the world's truth.

``python -m sim.discovery_harness --seed 7`` simulates a discovery world (or takes ``--raw``),
ingests it into a scratch lake, fits the topic model and the rankers on the first days, and on
the held-out last days ranks sampled users' candidates five ways (the model with its re-rank, the
model alone, the model without topic features, reverse-chronological, popularity). NDCG@10 uses
the true utility (clipped at 0) of :func:`sim.discovery.utility` as gains. Health on the shown
top 10: harmful share of slots, distinct true topics, users whose top 10 is over 80% one camp.
Trends: the streaming detector over every post, graded two ways. By topic: a surfaced trend
is real when one of its topics' majority true topic is an event's and it was detected between the
event's start and end (the share with the right region, or worldwide, is reported apart). By
posts (``*_by_posts``): real when most posts of the window that detected it are one event's, so
an event whose posts the topic model put under another subject's topic still counts as found.
Latency = first match - start. Scale: the daily batch (candidates, features, scoring, re-rank), per user.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from sim.discovery import load_truth, simulate_discovery, utility
from sim.discovery_params import DAY, MINUTE
from sim.vocabulary import TOPIC_NAMES

log = logging.getLogger(__name__)


def _prepare(raw: Path, home: Path, holdout_days: int):
    os.environ["VIGIL_HOME"] = str(home)
    from vigil.lake.ingest import ingest
    from vigil.ranking import data, topics
    from vigil.ranking.features import FeatureContext

    ingest(raw)
    view = data.load(home / "lake")
    split = view.start_ms + (int((view.end_ms - view.start_ms) // DAY) + 1 - holdout_days) * DAY
    train_posts = view.posts[view.posts["created_ms"] < split]
    model = topics.fit(train_posts["text"])
    topics.save(model, {"posts": len(train_posts), "before_ms": split}, home / "models" / "topics")
    ctx = FeatureContext(view, model.transform(view.posts["text"]))
    return view, ctx, split


def _topic_map(ctx, truth) -> np.ndarray:
    """NMF component -> true topic by majority over the posts (grading only)."""
    k = ctx.topic_vec.shape[1]
    pid = ctx.view.posts["post_id"].to_numpy()
    true = truth["posts"]["topic"][pid - 1]
    out = np.zeros(k, dtype=int)
    for c in range(k):
        m = ctx.main_topic == c
        out[c] = np.bincount(true[m], minlength=len(TOPIC_NAMES)).argmax() if m.any() else -1
    return out


def _health(truth, uid: int, pids: np.ndarray, top: np.ndarray) -> tuple[int, int, int, int]:
    """(harmful slots, distinct true topics, over 80% one camp unexplained, follows lean)."""
    harmful = int(truth["posts"]["harmful"][pids[top] - 1].sum())
    topics = len(set(truth["posts"]["topic"][pids[top] - 1].tolist()))
    vp = truth["users"]["viewpoint"][truth["posts"]["author"][pids[top] - 1]]
    share = max((vp == 1).mean(), (vp == -1).mean())
    own = truth["users"]["viewpoint"][np.nonzero(truth["follows"][uid - 1])[0]]
    own_share = max((own == 1).mean(), (own == -1).mean()) if len(own) else 0.5
    return harmful, topics, int(share > 0.8 and own_share <= 0.8), int(own_share > 0.8)


def _summary(res: dict, health: dict, n: int) -> dict:
    out = {k: round(float(np.mean(v)), 4) for k, v in res.items()}
    out["users"] = n
    out["vs_chron"] = round(out["model_rerank"] / out["chron"] - 1, 4)
    out["vs_chron_followed"] = round(out["model_rerank"] / out["chron_followed"] - 1, 4)
    out["vs_popularity"] = round(out["model_rerank"] / out["popularity"] - 1, 4)
    out["topic_features_gain"] = round(out["model"] / out["model_no_topics"] - 1, 4)
    out["harmful_slot_share"] = round(health["harmful"] / max(health["slots"], 1), 5)
    out["harmful_slot_share_before_rerank"] = round(health["model_harmful"] / (10 * n), 5)
    out["distinct_topics_top10"] = round(float(np.mean(health["topics"])), 2)
    out["users_top10_over_80pct_one_camp"] = health["camp"]
    out["users_whose_follows_lean_over_80pct"] = health["lean"]
    return out


def evaluate_ranking(ctx, truth, split: int, users: int, seed: int, days: int, cfg=None) -> dict:
    """NDCG@10 against true utility and the health of the shown top 10, for each ranker
    (:data:`vigil.ranking.rank.RANKERS`) in the same run on the same users and candidates; the
    top-level figures are the configured (default) ranker's, ``rankers`` holds every one's."""
    from dataclasses import replace

    from vigil.ranking import rank
    from vigil.ranking.features import build
    from vigil.ranking.metrics import ndcg_at_k

    cfg = cfg or rank.RankConfig()
    lo = ctx.view.start_ms + DAY
    models = {}
    for name in rank.RANKERS:
        c = replace(cfg, ranker=name)
        models[name] = (rank.train(ctx, lo, split, cfg=c),
                        rank.train(ctx, lo, split, features=rank.without_topics(), cfg=c))  # fmt: skip
    camps = rank.follow_camps(ctx)
    rng = np.random.default_rng([seed, 23, 100])
    uids = rng.choice(ctx.view.users["user_id"].to_numpy(), size=users, replace=False)
    times = split + rng.integers(2 * 3_600_000, days * DAY - 2 * 3_600_000, size=users)
    pid_all = ctx.view.posts["post_id"].to_numpy()
    kinds = ("model_rerank", "model", "model_no_topics", "chron", "chron_followed", "popularity")
    res = {m: {k: [] for k in kinds} for m in models}
    health = {m: {"harmful": 0, "slots": 0, "topics": [], "camp": 0, "lean": 0,
                  "model_harmful": 0} for m in models}  # fmt: skip
    for uid, t in zip(uids.tolist(), times.tolist(), strict=True):
        rows = rank.candidates(ctx, uid, t)
        if len(rows) < 20:
            continue
        X = build(ctx, np.full(len(rows), uid), rows, np.full(len(rows), t))
        harm = X[:, list(rank.FEATURES).index("harm_prob")]
        lean = rank.user_lean(ctx, camps, uid)
        pids = pid_all[rows]
        gains = np.maximum(utility(truth, np.full(len(rows), uid - 1), pids - 1, t), 0)
        chron = ndcg_at_k(gains, np.argsort(-ctx.created[rows], kind="stable"))
        f = list(rank.FEATURES)
        # a "Latest" timeline: followed authors' posts newest first, then the others newest first
        latest = X[:, f.index("follows")] * 1e15 + ctx.created[rows]
        chron_followed = ndcg_at_k(gains, np.argsort(-latest, kind="stable"))
        pop = X[:, f.index("post_views")] * X[:, f.index("post_like_rate")]
        pop = ndcg_at_k(gains, np.argsort(-pop, kind="stable"))
        for m, (full, no_topic) in models.items():
            s = rank.predict(full, X)
            top = rank.rerank(ctx, rows, s, harm, camps, lean, cfg=replace(cfg, ranker=m))
            r = res[m]
            r["model_rerank"].append(ndcg_at_k(gains, top))
            r["model"].append(ndcg_at_k(gains, np.argsort(-s, kind="stable")))
            r["model_no_topics"].append(
                ndcg_at_k(gains, np.argsort(-rank.predict(no_topic, X), kind="stable"))
            )
            r["chron"].append(chron)
            r["chron_followed"].append(chron_followed)
            r["popularity"].append(pop)
            h = health[m]
            harmful, n_topics, camp, lean_80 = _health(truth, uid, pids, top)
            h["harmful"] += harmful
            h["model_harmful"] += int(
                truth["posts"]["harmful"][pids[np.argsort(-s)[:10]] - 1].sum()
            )
            h["slots"] += len(top)
            h["topics"].append(n_topics)
            h["camp"] += camp
            h["lean"] += lean_80
    n = len(res[cfg.ranker]["chron"])
    by = {m: _summary(res[m], health[m], n) for m in models}
    return {**by[cfg.ranker], "ranker": cfg.ranker, "rankers": by}


def _latency_figures(events: list[dict], first: dict, suffix: str = "") -> dict:
    lat = np.array([first[e["event_id"]] for e in events if e["event_id"] in first]) / MINUTE
    return {
        f"events_detected{suffix}": len(first),
        f"events_within_10_min{suffix}": int((lat <= 10).sum()),
        f"latency_min_median{suffix}": round(float(np.median(lat)), 2) if len(lat) else None,
        f"latency_min_max{suffix}": round(float(lat.max()), 2) if len(lat) else None,
    }


def _by_topic(trends, events, tmap) -> tuple[int, int, dict]:
    """Grading by topic: a trend is real when one of its topics' majority true topic is an
    event's and it was detected between the event's start and end (of several such events, the
    one in the trend's region first)."""
    matched, region_ok, first = 0, 0, {}
    for tr in trends:
        names = {TOPIC_NAMES[tmap[c]] for c in tr.topics}
        hits = [e for e in events if e["topic"] in names
                and e["start_ms"] <= tr.detected_ms <= e["end_ms"]]  # fmt: skip
        hit = next((e for e in hits if e["region"] == tr.region), hits[0] if hits else None)
        if hit is not None:
            matched += 1
            region_ok += tr.region == hit["region"]
            first.setdefault(hit["event_id"], tr.detected_ms - hit["start_ms"])
    return matched, region_ok, first


def _by_posts(trends, events, post_event: np.ndarray) -> tuple[int, dict]:
    """Grading by posts: a trend is real when more than half of the posts in the window that
    detected it belong to one event (whatever topic the topic model gave them)."""
    start = {e["event_id"]: e["start_ms"] for e in events}
    matched, first = 0, {}
    for tr in trends:
        ids = post_event[np.asarray(tr.evidence, dtype=np.int64)]
        top = int(np.bincount(ids).argmax()) if len(ids) else 0
        if top > 0 and (ids == top).mean() > 0.5:
            matched += 1
            first.setdefault(top, tr.detected_ms - start[top])
    return matched, first


def evaluate_trends(ctx, truth) -> dict:
    from vigil.ranking.trends import detect

    posts = ctx.view.posts
    trends = detect(posts["created_ms"].to_numpy(), ctx.topic_vec, posts["region"].to_numpy(),
                    ctx.view.start_ms)  # fmt: skip
    events = truth["events"]
    matched, region_ok, first = _by_topic(trends, events, _topic_map(ctx, truth))
    post_event = truth["posts"]["event"][posts["post_id"].to_numpy() - 1]
    matched_p, first_p = _by_posts(trends, events, post_event)
    n = max(len(trends), 1)
    return {
        "events": len(events),
        "trends_surfaced": len(trends),
        "precision": round(matched / n, 4),
        "region_correct": round(region_ok / max(matched, 1), 4),
        **_latency_figures(events, first),
        "precision_by_posts": round(matched_p / n, 4),
        **_latency_figures(events, first_p, "_by_posts"),
    }


def evaluate_scale(ctx, split: int, users: int, seed: int, workers: int = 1) -> dict:
    """The daily batch (:func:`vigil.ranking.batch.rank_users`: candidates, features, scoring,
    re-rank) for ``users`` drawn with replacement at one time; seconds per stage and per user."""
    from vigil.ranking import batch, rank

    model = rank.train(ctx, ctx.view.start_ms + DAY, split)
    rng = np.random.default_rng([seed, 23, 200])
    uids = rng.choice(ctx.view.users["user_id"].to_numpy(), size=users, replace=True)
    r = batch.rank_users(ctx, model, uids, split + DAY // 2, workers=workers)
    total = r.seconds["total"]
    return {"users": users, "candidates_per_user": round(r.candidates / users, 1),
            "workers": workers, "seconds": round(total, 2),
            **{f"{k}_s": round(v, 2) for k, v in r.seconds.items() if k != "total"},
            "ms_per_user": round(1000 * total / users, 3),
            "extrapolated_20k_users_s": round(total / users * 20_000, 1)}  # fmt: skip


def run_harness(seed: int = 7, users: int = 2000, days: int = 7, raw: Path | None = None,
                eval_users: int = 300, holdout_days: int = 2, scale_users: int = 2000,
                work: Path | None = None) -> dict:  # fmt: skip
    work = Path(work or tempfile.mkdtemp(prefix="vigil-discovery-"))
    t0 = time.perf_counter()
    if raw is None:
        raw = work / "raw"
        simulate_discovery(raw, users=users, days=days, seed=seed)
    truth = load_truth(raw)
    _view, ctx, split = _prepare(raw, work / "home", holdout_days)
    out = {"seed": seed, "users": users, "days": days, "holdout_days": holdout_days}
    out["ranking"] = evaluate_ranking(ctx, truth, split, eval_users, seed, holdout_days)
    out["trends"] = evaluate_trends(ctx, truth)
    if scale_users:
        out["scale"] = evaluate_scale(ctx, split, scale_users, seed)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.discovery_harness", description=__doc__)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--raw", type=Path, default=None, help="an existing discovery world")
    ap.add_argument("--eval-users", type=int, default=300)
    ap.add_argument("--scale-users", type=int, default=2000, help="0 skips the scale run")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    ap.add_argument("--json", type=Path, default=None, help="also write the result here")
    a = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    r = run_harness(a.seed, a.users, a.days, a.raw, a.eval_users, 2, a.scale_users, a.work)
    text = json.dumps(r, indent=2)
    print(text)
    if a.json:
        a.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
