"""Grades the home timeline with vs without the champion harm join on a default world.

``python -m sim.harm_join_harness --home H`` takes a default world built by ``vigil pipeline``
(``H/lake``, ``H/raw/_truth``, ``H/models/champion.json`` and the champion's
``scores/dt=D/scores.parquet`` for the ranked days, ``vigil score --date D``) and ranks the home
timelines of a seeded sample of users at random times of the world's last day twice: the re-rank
demoting by the naive-Bayes harm feature alone (no join) and by max(feature, champion's
probability) (:func:`vigil.ranking.harm.rerank_harm`, the join). Same candidates, same ranker,
same scores: only the re-rank's harm array differs.

The default world has follows and post text but no per-(user, post) true utility (no topic
interests, quality, news events or camps: those are the discovery world's). NDCG@10 gains are
therefore the terms of :func:`sim.discovery.utility` the default world supports, with its weights
(:class:`sim.discovery_params.DiscoveryParams`), clipped at 0 as in the discovery harness::

    gain = w_affinity x (viewer follows the author) + w_fresh x exp(-age_h / fresh_hours)
           - w_harm x harmful (truth)

Health on each top 10: harmful share of slots and harmful impressions per 1,000 slots (truth's
``is_harmful``), the champion's coverage of the shown and candidate posts.

Training (like ``vigil_ranking``): topics fitted on a seeded sample of the posts before the last
day, the ranker on the views of the ``train_days`` before it. Only the harness reads truth.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from sim import truth as sim_truth
from sim.discovery_params import P as DEFAULT_PARAMS

log = logging.getLogger(__name__)

HOUR = 3_600_000
DAY = 24 * HOUR


def default_gains(followed: np.ndarray, age_ms: np.ndarray, harmful: np.ndarray,
                  p=DEFAULT_PARAMS) -> np.ndarray:  # fmt: skip
    """NDCG gains on a default world (the utility terms it supports), clipped at 0."""
    age_h = np.maximum(np.asarray(age_ms, dtype=float), 0) / HOUR
    u = (p.w_affinity * np.asarray(followed, dtype=float)
         + p.w_fresh * np.exp(-age_h / p.fresh_hours)
         - p.w_harm * np.asarray(harmful, dtype=float))  # fmt: skip
    return np.maximum(u, 0.0)


def grade_top(gains: np.ndarray, harmful: np.ndarray, top: np.ndarray, k: int = 10) -> dict:
    """One user's shown list: NDCG@k of ``top`` (positions into ``gains``, best first) against
    the ideal order of all candidates, and its harmful slots (``harmful``: truth per candidate)."""
    from vigil.ranking.metrics import ndcg_at_k

    top = np.asarray(top, dtype=np.int64)[:k]
    bad = np.asarray(harmful, dtype=bool)[top]
    return {"ndcg": ndcg_at_k(gains, top, k), "harmful_slots": int(bad.sum()), "slots": len(top)}


def summarize(graded: list[dict]) -> dict:
    """Mean NDCG over users; harmful share of all slots and harmful impressions per 1,000."""
    if not graded:
        raise ValueError("no graded users: the sample had no user with candidates.")
    slots = sum(g["slots"] for g in graded)
    bad = sum(g["harmful_slots"] for g in graded)
    return {"ndcg_at_10": round(float(np.mean([g["ndcg"] for g in graded])), 4),
            "harmful_slots": bad, "slots": slots,
            "harmful_slot_share": round(bad / max(slots, 1), 6),
            "harmful_per_1000_slots": round(1000 * bad / max(slots, 1), 3),
            "users_with_a_harmful_slot": sum(g["harmful_slots"] > 0 for g in graded)}  # fmt: skip


def _prepare(home: Path, train_days: int, topic_posts: int, seed: int):
    from vigil.ranking import data, rank, topics
    from vigil.ranking.features import FeatureContext

    t0 = time.perf_counter()
    view = data.load(home / "lake")
    last = view.end_ms // DAY * DAY  # start of the world's last day
    before = view.posts[view.posts["created_ms"] < last]
    rng = np.random.default_rng([seed, 23, 300])
    pick = np.sort(rng.choice(len(before), size=min(topic_posts, len(before)), replace=False))
    model = topics.fit(before["text"].iloc[pick])
    ctx = FeatureContext(view, model.transform(view.posts["text"]))
    ranker = rank.train(ctx, last - train_days * DAY, last)
    log.info("prepared in %.0fs: %d posts, last day from %d", time.perf_counter() - t0,
             len(view.posts), last)  # fmt: skip
    return ctx, ranker, last


def evaluate(home: Path, users: int = 300, seed: int = 7, train_days: int = 3,
             topic_posts: int = 40_000, scores_root: Path | None = None) -> dict:  # fmt: skip
    from vigil.ranking import harm, rank
    from vigil.ranking.features import FEATURES, build

    raw = home / "raw"
    tr = sim_truth.posts(raw)
    if tr is None:
        raise SystemExit(f"{sim_truth.posts_path(raw)} is missing: --home must be a simulated "
                         "default world (vigil pipeline) with its raw/_truth.")  # fmt: skip
    ctx, ranker, last = _prepare(home, train_days, topic_posts, seed)
    champ = harm.load(ctx, scores_root=scores_root or home / "scores")
    if champ is None:
        raise SystemExit("no champion scores for this world's posts (see the log line above): "
                         "run `vigil score --date D` for the last days first.")  # fmt: skip
    ctx.champion = champ  # harm.rerank_harm joins; "without" passes the feature array itself
    pid = ctx.view.posts["post_id"].to_numpy()
    harmful_by_id = dict(zip(tr["post_id"].to_numpy(), tr["is_harmful"].to_numpy(), strict=True))
    harmful_row = np.array([bool(harmful_by_id.get(int(p), False)) for p in pid])
    camps = rank.follow_camps(ctx)
    rng = np.random.default_rng([seed, 23, 400])
    uids = rng.choice(ctx.view.users["user_id"].to_numpy(), size=users, replace=False)
    times = rng.integers(last + HOUR, ctx.view.end_ms - HOUR, size=users)
    out = {"without": [], "with": [], "chron": []}
    shown_bad = {"without": [], "with": []}  # (feature, champion) harm of harmful posts shown
    cov = {"candidates": 0, "candidates_scored": 0, "harmful_candidates": 0,
           "harmful_candidates_scored": 0, "harmful_cut_by_champion": 0,
           "lists_changed_by_join": 0}  # fmt: skip
    t_rank = 0.0
    for uid, t in zip(uids.tolist(), times.tolist(), strict=True):
        t0 = time.perf_counter()
        rows = rank.candidates(ctx, uid, t)
        if len(rows) < 20:
            continue
        X = build(ctx, np.full(len(rows), uid), rows, np.full(len(rows), t))
        s = rank.predict(ranker, X)
        fh = X[:, FEATURES.index("harm_prob")]
        lean = rank.user_lean(ctx, camps, uid)
        ch = champ.at(rows, t)
        joined = harm.rerank_harm(ctx, rows, t, fh)  # the platform's join: max(feature, champ)
        top_wo = rank.rerank(ctx, rows, s, fh, camps, lean)
        top_w = rank.rerank(ctx, rows, s, joined, camps, lean)
        t_rank += time.perf_counter() - t0
        bad = harmful_row[rows]
        gains = default_gains(ctx.follows(np.full(len(rows), uid), ctx.author[rows]),
                              t - ctx.created[rows], bad)  # fmt: skip
        out["without"].append(grade_top(gains, bad, top_wo))
        out["with"].append(grade_top(gains, bad, top_w))
        out["chron"].append(grade_top(gains, bad, np.argsort(-ctx.created[rows], kind="stable")))
        for side, top in (("without", top_wo), ("with", top_w)):
            for j in top[bad[top]]:
                shown_bad[side].append([round(float(fh[j]), 4), round(float(ch[j]), 4)])
        scored = ~np.isnan(ch)
        cov["candidates"] += len(rows)
        cov["candidates_scored"] += int(scored.sum())
        cov["harmful_candidates"] += int(bad.sum())
        cov["harmful_candidates_scored"] += int((bad & scored).sum())
        cov["lists_changed_by_join"] += int(not np.array_equal(top_wo, top_w))
        cov["harmful_cut_by_champion"] += int((bad & (joined >= 0.5) & (fh < 0.5)).sum())
    res = {"home": str(home), "seed": seed, "users": len(out["with"]),
           "champion": champ.model_id, "ranked_day_start_ms": int(last),
           "without_join": summarize(out["without"]), "with_join": summarize(out["with"]),
           "reverse_chron": summarize(out["chron"]),
           "harmful_shown_feature_and_champion_prob": shown_bad,
           **cov, "rank_seconds_per_user": round(t_rank / max(len(out["with"]), 1), 4)}  # fmt: skip
    res["ndcg_change"] = round(res["with_join"]["ndcg_at_10"] - res["without_join"]["ndcg_at_10"],
                               4)  # fmt: skip
    return res


def spread(results: list[dict]) -> dict:
    """Mean and spread (min, max, sample std) over seeds of the headline figures."""
    out = {}
    for side in ("without_join", "with_join"):
        for key in ("ndcg_at_10", "harmful_slot_share", "harmful_per_1000_slots"):
            v = np.array([r[side][key] for r in results], dtype=float)
            out[f"{side}.{key}"] = {"mean": round(float(v.mean()), 5),
                                    "min": round(float(v.min()), 5),
                                    "max": round(float(v.max()), 5),
                                    "std": round(float(v.std(ddof=1)), 5) if len(v) > 1 else 0.0}  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.harm_join_harness", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--home", type=Path, default=None, help="a default world's data root")
    ap.add_argument("--scores", type=Path, default=None,
                    help="the champion's scores/ folder (default HOME/scores)")  # fmt: skip
    ap.add_argument("--seed", type=int, default=7, help="sample seed (the world's own seed)")
    ap.add_argument("--users", type=int, default=300)
    ap.add_argument("--train-days", type=int, default=3)
    ap.add_argument("--topic-posts", type=int, default=40_000)
    ap.add_argument("--json", type=Path, default=None, help="also write the result here")
    ap.add_argument("--combine", type=Path, nargs="+", default=None,
                    help="instead of running: mean and spread of these result files")  # fmt: skip
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    if a.combine:
        r = {"seeds": [], "spread": None}
        runs = [json.loads(Path(f).read_text()) for f in a.combine]
        r["seeds"] = [x["seed"] for x in runs]
        r["spread"] = spread(runs)
    elif a.home is None:
        ap.error("--home is required (a default world's data root), unless --combine is given")
    else:
        import os

        os.environ["VIGIL_HOME"] = str(a.home)  # the registry's champion of this world
        r = evaluate(a.home, a.users, a.seed, a.train_days, a.topic_posts, a.scores)
    text = json.dumps(r, indent=2)
    print(text)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
