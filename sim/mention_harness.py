"""Grading the mention model (``training.mentions``) on the simulator's truth, per seed root.

``python -m sim.mention_harness ROOT [ROOT ...] [--features base|campaign] [--write FILE]
[--collect]`` where each ROOT is a
data root with a lake and a registered champion (e.g. ``DATA/mention-sweep/seed-N`` left by
``python -m sim.sweep``). Each root is graded in a child process (``VIGIL_HOME`` = the root) that
leaves ``mention-result.json`` there; the parent prints the table (per seed, mean, std).

Per root:

1. **Operating point, without truth** (:func:`training.mentions.operating_point`): the mention
   model's threshold from cross-fitted scores over the train and validation days, on the weighted
   moderator labels; the model that scores is fitted on those days. For comparison, the earlier
   rule (a model fitted on the train days, threshold on the validation days only) is reported too.
2. **Mention level**: the test days' post mentions, truth = the post carrying the mention is truly
   harmful (in the simulator every harmful post that names someone is aimed at them): PR-AUC,
   recall at 95% precision, precision and recall at the operating point; and over *every* test-day
   post with a mention, how many posts the mention model removes and how many are truly harmful.
3. **Post level, with vs without the mention score**: the champion's scores on the sweep's truth
   sample (every harmful test-day post, 10% of the benign ones, weight 10; ``sim.sweep.grade``)
   plus every test-day post carrying a mention (weight 1), at the champion's own removal
   threshold, replayed (a post is removed at its first scoring event at
   or above the threshold) alone and combined with the post's mention score (the highest of its
   mentions) by :func:`training.mentions.combine`: harassment recall (the sweep's slice), recall of
   all harmful posts and precision of removals (weighted by the sample), per post model.

``--features campaign`` fits the mention model on the pair features plus the pile-on features
(``training.mentions.CAMPAIGN_FEATURES``); its results go to ``mention-result-campaign.json``. On a
graph world with harassment campaigns (``_truth/harassment_campaigns.jsonl``) each root's result
also counts the test-day campaign posts and how many the mention score and each post model
remove (``campaigns``).

Mentions in replies train the model but are not graded (a reply has no post id of its own).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from sim import truth as sim_truth
from training import evaluate, mentions

RESULT_FILE = "mention-result.json"
FEATURE_SETS = {"base": mentions.PAIR_FEATURES, "campaign": mentions.WITH_CAMPAIGN_FEATURES}
MODELS = (  # post model, score column, threshold key (the sweep's choice)
    ("baseline", "baseline_cal", "baseline"),
    ("multitask", "multitask_cal", "multitask"),
    ("cascade", "cascade_cal", "multitask"),
)


def _mention_frame(root: Path, days: dict[str, set[str]]) -> pd.DataFrame:
    df = mentions.build(root / "lake")
    df["day"] = df["mentioned_at"].dt.strftime("%Y-%m-%d")
    truth = sim_truth.posts(root / "raw").set_index("post_id")["is_harmful"]
    has_post = df["post_id"].notna()
    df["truth"] = False
    df.loc[has_post, "truth"] = df.loc[has_post, "post_id"].astype("int64").map(truth).fillna(False)
    df["truth"] = df["truth"].astype(bool)
    df["split"] = "other"
    for k in ("train", "val", "test"):
        df.loc[df["day"].isin(days[k]), "split"] = k
    return df


def _result_file(root: Path, budget: int, features: str = "base") -> Path:
    tail = "" if features == "base" else f"-{features}"
    tail += "" if budget == mentions.AUDIT_BUDGET else f"-audit{budget}"
    return root / RESULT_FILE.replace(".json", f"{tail}.json")


def campaign_posts(raw: Path) -> set[int]:
    """The post ids of the harassment campaigns (graph world truth; empty when there are none)."""
    f = raw / "_truth" / "harassment_campaigns.jsonl"
    if not f.exists():
        return set()
    with open(f) as fh:
        return {int(p) for line in fh if line.strip() for p in json.loads(line)["post_ids"]}


def mention_level(
    df: pd.DataFrame,
    seed: int = 7,
    budget: int = mentions.AUDIT_BUDGET,
    features=mentions.PAIR_FEATURES,
) -> tuple[dict, pd.Series, float]:
    """The operating point and the mention-level grades; (result, post -> mention score, thr)."""
    from vigil.review.files import FileReviewQueue, load_answerer

    trval = df[df["split"].isin(["train", "val"])]
    queue = FileReviewQueue(
        mentions.AUDIT_QUEUE, budget, answer=load_answerer("sim.moderators:answer")
    )
    model, thr = mentions.operating_point(
        trval, queue=queue, seed=seed, budget=budget, features=features
    )
    t = thr["threshold"]
    te = df[(df["split"] == "test") & df["post_id"].notna()].copy()
    te["score"] = mentions.score(model, te)
    y, s = te["truth"].to_numpy(), te["score"].to_numpy()
    hit = s >= t
    te["post_id"] = te["post_id"].astype("int64")
    per_post = te.groupby("post_id").agg(score=("score", "max"), truth=("truth", "first"))
    removed = per_post[per_post["score"] >= t]
    out = {
        "operating_point": thr,
        "test_mentions": len(te),
        "test_harmful_mentions": int(y.sum()),
        "pr_auc": evaluate.pr_auc(y, s),
        "recall_at_95p": evaluate.recall_at_precision(y, s),
        "precision": float(y[hit].mean()) if hit.any() else math.nan,
        "recall": float(hit[y].mean()) if y.any() else math.nan,
        "test_posts_with_mention": len(per_post),
        "test_posts_removed_by_mention": len(removed),
        "test_posts_removed_by_mention_harmful": int(removed["truth"].sum()),
        "queue_only_rule_on_test": _removed_at(per_post, thr["queue_only"]["threshold"]),
        "features": list(features),
        "val_only_rule": _val_only(df, seed, features),
        "label_sources": _label_sources(df[df["post_id"].notna()]),
        "label_recall_vs_truth": float(df.loc[df["truth"], "y"].mean()),
    }
    return out, per_post["score"], t


def _removed_at(per_post: pd.DataFrame, t: float) -> dict:
    r = per_post[per_post["score"] >= t]
    return {"threshold": t, "posts_removed": len(r), "harmful": int(r["truth"].sum())}


def _val_only(df: pd.DataFrame, seed: int, features=mentions.PAIR_FEATURES) -> dict:
    """The earlier rule: fitted on the train days, threshold on the validation days only."""
    tr, va = df[df["split"] == "train"], df[df["split"] == "val"]
    return mentions.choose_threshold(
        mentions.score(mentions.fit(tr, seed, features=features), va), va
    )


def _label_sources(df: pd.DataFrame) -> dict:
    out = {}
    for src, g in df.groupby("label_source"):
        out[src] = {
            "mentions": len(g),
            "label_positive": int(g["y"].sum()),
            "label_precision": float(g.loc[g["y"], "truth"].mean()) if g["y"].any() else None,
        }
    return out


def replay_with_mentions(test, timelines, col: str, t: float, t_mention: float):
    """(posts without, posts with the mention score): :func:`training.evaluate.replay` of the
    post score at its threshold ``t``, then of ``combine(post score, t, mention_score,
    t_mention)`` at 1 (``test`` has a ``mention_score`` column, NaN for a post without one)."""
    combined = test.assign(
        combined=mentions.combine(test[col], t, test["mention_score"], t_mention)
    )
    return (
        evaluate.replay(test, timelines, col, t),
        evaluate.replay(combined, timelines, "combined", 1.0),
    )


def truth_sample(raw: Path, days: list[str], seed: int, mention_posts) -> pd.DataFrame:
    """The sweep's truth sample (every harmful test-day post, each benign one with probability
    0.1, weight 10) plus every test-day post carrying a mention at weight 1: the stratum the
    mention score can remove is then graded whole, not from a 10% sample."""
    from sim import harness
    from vigil.contracts import HARM_TYPES

    base = sim_truth.evaluation_sample(raw, days, harness.BENIGN_RATE, seed)
    truth = sim_truth.posts(raw, days)
    extra = truth[truth["post_id"].isin(mention_posts) & ~truth["post_id"].isin(base["post_id"])]
    extra = extra.assign(sampling_weight=1.0, queue="truth_sample")
    for h in HARM_TYPES:
        extra[f"is_{h}"] = extra["harm_types"].map(lambda t, h=h: h in (t or []))
    out = pd.concat([base, extra[base.columns]], ignore_index=True)
    out.loc[out["post_id"].isin(mention_posts), "sampling_weight"] = 1.0
    return out.sort_values("post_id").reset_index(drop=True)


def post_level(mention_score: pd.Series, t_mention: float, campaign: set | None = None) -> dict:
    """The champion alone and combined with the mention score, on the sweep's truth sample."""
    from sim.sweep import _slice_recall
    from training import assess, datasets, registry
    from training.config import from_dict
    from vigil import config

    bundle = registry.load(None)
    cfg = from_dict(bundle["meta"]["config"])
    test_days = list(bundle["meta"]["splits"]["test"])
    sample = truth_sample(config.paths().raw, test_days, cfg.seed, mention_score.index)
    ts = datasets.build(
        cfg, splits=bundle["meta"]["splits"], with_population=False, test_labels=sample
    )
    test = assess.score_frame(bundle, ts.split("test"))
    test["mention_score"] = test["post_id"].map(mention_score)
    keys = evaluate.slice_keys(test)
    out: dict = {"model_id": bundle["model_id"], "models": {}}
    for name, col, key in MODELS:
        t = bundle["thresholds"][key]["threshold"]
        row = {"post_threshold": t}
        for tag, posts in zip(
            ("without", "with"), replay_with_mentions(test, ts.timelines, col, t, t_mention)
        ):
            summary = evaluate.replay_summary(posts)
            harass = _slice_recall(posts, keys, "harm_type", ("harassment",))
            in_campaign = posts.index.isin(list(campaign or ())) & posts["is_harmful"].astype(bool)
            row[tag] = {
                "campaign_posts_removed": int(posts.loc[in_campaign, "removed"].sum()),
                "campaign_posts": int(in_campaign.sum()),
                "harassment_recall": harass["recall"],
                "harmful_recall": summary["harmful_posts_removed_share"],
                "removal_precision": summary["removal_precision"],
                "posts_removed": summary["posts_removed"],
                "benign_removed": summary["benign_posts_removed"],
            }
        row["harassment_posts"] = harass["harmful_posts"]
        out["models"][name] = row
    out["test_harmful_posts"] = int(sample["is_harmful"].sum())
    out["test_posts_with_mention_in_sample"] = int(
        test.groupby("post_id")["mention_score"].first().notna().sum()
    )
    return out


def grade_root(
    root: Path, seed: int = 7, budget: int = mentions.AUDIT_BUDGET, features: str = "base"
) -> dict:
    state = json.loads((root / "models" / "champion.json").read_text())
    meta = json.loads((root / "models" / state["model_id"] / "meta.json").read_text())
    days = {k: set(map(str, v)) for k, v in meta["splits"].items()}
    df = _mention_frame(root, days)
    out, per_post, t = mention_level(df, seed, budget, FEATURE_SETS[features])
    out["root"] = str(root)
    camp = campaign_posts(root / "raw")
    test_camp = per_post[per_post.index.isin(list(camp))]
    out["campaigns"] = {
        "test_campaign_posts_with_mention": len(test_camp),
        "removed_by_mention": int((test_camp >= t).sum()),
    }
    out["post"] = post_level(per_post, t, camp)
    sweep = root / "sweep-result.json"
    if sweep.exists():  # the guardrail (every test-day post) of the champion alone, for reference
        res = json.loads(sweep.read_text())
        out["sweep_guardrail_precision"] = {
            m: res["models"][m].get("removal_precision") for m in res.get("models", {})
        }
        out["seed"] = res.get("params", {}).get("seed")
    return out


# -- the table (parent) -----------------------------------------------------------------------
def _stats(vals: list[float]) -> str:
    v = [x for x in vals if x is not None and math.isfinite(x)]
    if not v:
        return "nan | nan"
    return f"{np.mean(v):.3f} | {np.std(v, ddof=1) if len(v) > 1 else 0.0:.3f}"


def table(results: list[dict]) -> str:
    seeds = [str(r.get("seed", Path(r["root"]).name)) for r in results]
    lines = [
        "| | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | std |",
        "|---|" + "---|" * (len(seeds) + 2),
    ]

    def row(label, vals, fmt="{:.3f}"):
        cells = " | ".join("nan" if v is None or math.isnan(v) else fmt.format(v) for v in vals)
        lines.append(f"| {label} | {cells} | {_stats(vals)} |")

    op = [r["operating_point"] for r in results]
    row("mention threshold (cross-fitted)", [o["threshold"] for o in op])
    row("mention PR-AUC", [r["pr_auc"] for r in results])
    row("mention recall@95%P", [r["recall_at_95p"] for r in results])
    row("mention precision at the threshold", [r["precision"] for r in results])
    row("mention recall at the threshold", [r["recall"] for r in results])
    if all("campaigns" in r for r in results):
        row(
            "test-day campaign posts with a mention",
            [r["campaigns"]["test_campaign_posts_with_mention"] for r in results],
            "{:.0f}",
        )
        row(
            "... removed by the mention score",
            [r["campaigns"]["removed_by_mention"] for r in results],
            "{:.0f}",
        )
    for name, _, _ in MODELS:
        if all("campaign_posts" in r["post"]["models"][name]["with"] for r in results):
            for tag in ("without", "with"):
                vals = [r["post"]["models"][name][tag]["campaign_posts_removed"] for r in results]
                row(f"{name} campaign posts removed, {tag} mentions", vals, "{:.0f}")
        for metric, label in (
            ("harassment_recall", "harassment recall"),
            ("harmful_recall", "harmful posts removed"),
            ("removal_precision", "precision of removals"),
        ):
            for tag in ("without", "with"):
                vals = [r["post"]["models"][name][tag][metric] for r in results]
                row(f"{name} {label}, {tag} mentions", vals)
    return "\n".join(lines) + "\n"


def counts(results: list[dict]) -> str:
    out = []
    for r in results:
        o, m = r["operating_point"], r["post"]["models"]["multitask"]
        q, qt = o["queue_only"], r["queue_only_rule_on_test"]
        out.append(
            f"seed {r.get('seed')}: threshold {o['threshold']:.3f} ({o['n_removed']} audited posts "
            f"above it; {o['audit_reviews']} reviews, {o['audit_reviews_harmful']} harmful, "
            f"{o['queue_labels_above_floor']} queue labels above the floor {o['floor']:.4f}); "
            f"test: {r['test_mentions']} post mentions ({r['test_harmful_mentions']} truly "
            f"harmful), {m['harassment_posts']} harassment posts of "
            f"{r['post']['test_harmful_posts']} harmful; the mention score removes "
            f"{r['test_posts_removed_by_mention']} of {r['test_posts_with_mention']} test-day posts "
            f"with a mention ({r['test_posts_removed_by_mention_harmful']} truly harmful); the "
            f"queue-labels-only rule (threshold {q['threshold']:.3f}) would remove "
            f"{qt['posts_removed']} ({qt['harmful']} truly harmful)"
        )
    return "\n".join(f"- {line}" for line in out) + "\n"


def _run_root(root: Path, collect: bool, budget: int, features: str = "base") -> dict | None:
    result = _result_file(root, budget, features)
    if not collect:
        env = dict(os.environ, VIGIL_HOME=str(root))
        cmd = [sys.executable, "-m", "sim.mention_harness", "--one", str(root)]
        cmd += ["--audit-budget", str(budget), "--features", features]
        proc = subprocess.run(cmd, env=env, check=False)
        if proc.returncode != 0:
            print(f"{root}: FAILED (exit {proc.returncode})", flush=True)
            return None
    return json.loads(result.read_text()) if result.exists() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.mention_harness")
    parser.add_argument("roots", nargs="*", type=Path)
    parser.add_argument("--write", type=Path, default=None, help="also write the table here")
    parser.add_argument("--collect", action="store_true", help="tabulate existing results only")
    parser.add_argument(
        "--audit-budget", type=int, default=mentions.AUDIT_BUDGET, help="mention audit reviews"
    )
    parser.add_argument(
        "--features",
        choices=tuple(FEATURE_SETS),
        default="base",
        help="the mention model's pair features: base, or campaign (plus the pile-on features)",
    )
    parser.add_argument("--one", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        res = grade_root(args.one.resolve(), budget=args.audit_budget, features=args.features)
        _result_file(args.one, args.audit_budget, args.features).write_text(
            json.dumps(res, indent=1, default=float)
        )
        return 0
    results = [
        _run_root(r.resolve(), args.collect, args.audit_budget, args.features) for r in args.roots
    ]
    ok = [r for r in results if r is not None]
    text = table(ok) + "\n" + counts(ok) if ok else "no results\n"
    print(text)
    if args.write:
        args.write.write_text(text)
    return 0 if len(ok) == len(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
