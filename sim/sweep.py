"""The seed sweep: a model change counts only if it holds across simulated worlds.

``python -m sim.sweep --seeds 1 2 3 4 5 [--users N --days N] [--drift-day D]``

For each world seed, in its own data root (``<base>/seed-<N>``, default base ``DATA/sweep``):

1. simulate the world (``sim.pipeline.ensure_simulation``; skipped when already there),
2. run ``vigil_daily`` (backfill) and ``vigil_train`` through ``airflow dags test``, exactly as
   ``vigil pipeline`` does (the Community Notes world is not built: no model reads it),
3. grade the champion against the simulator's truth: the test days at the true prevalence (the
   harness's :func:`sim.harness.evaluate_on_truth` sample) and the guardrail check of every
   test-day post (:func:`sim.harness.guardrail`).

Per model (baseline, multi-task net, cascade): recall at 95% precision, harmful views prevented,
precision of removals (guardrail: every test-day post, audit threshold), harassment recall and
young-author recall (authors < 30 days old) at the model's removal threshold. Each seed runs in a
child process (its own ``VIGIL_HOME``) and leaves ``sweep-result.json`` in its data root; a seed
whose result exists for the same parameters is not run again. The table (mean, min-max, std over
seeds) is printed and, with ``--write FILE``, written as Markdown.

This lives in ``sim/`` because it generates worlds and reads their truth; ``training/`` never
imports the simulator.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from vigil import config
from vigil.errors import UserError

log = logging.getLogger(__name__)

RESULT_FILE = "sweep-result.json"
DEFAULT_USERS = 6000
DEFAULT_DAYS = 30
START = "2026-10-01"
MODELS = ("baseline", "multitask", "cascade")
YOUNG = ("<7d", "7-30d")  # account-age buckets of authors younger than 30 days
METRICS = (
    ("recall_at_95p", "recall@95%P"),
    ("views_prevented", "harmful views prevented"),
    ("removal_precision", "precision of removals"),
    ("harassment_recall", "harassment recall"),
    ("young_recall", "young-author recall"),
)


# -- one seed (child process, VIGIL_HOME = its data root) --------------------------------------
def _slice_recall(posts, keys, column: str, values: tuple[str, ...]) -> dict:
    """Recall of removals over the harmful posts whose ``column`` is in ``values`` (weighted)."""
    df = posts.join(keys)
    m = df["is_harmful"].astype(bool) & df[column].astype(str).isin(values)
    w = df.loc[m, "w"]
    n = int(m.sum())
    recall = float((w * df.loc[m, "removed"]).sum() / w.sum()) if n else float("nan")
    return {"recall": recall, "harmful_posts": n}


def _slices(posts, keys) -> dict:
    """Recall per harm type and per account-age bucket of the author (issue 26: no slice below
    0.85 that has >= 30 harmful posts); benign / unknown keys are left out."""
    return {
        col: {
            str(v): _slice_recall(posts, keys, col, (str(v),))
            for v in sorted(keys[col].astype(str).unique())
            if str(v) not in ("benign", "unknown")
        }
        for col in ("harm_type", "account_age_bucket")
    }


def grade(guardrail: bool = True) -> dict:
    """The champion of this data root graded on the truth, per model (see the module doc)."""
    from sim import harness
    from sim import truth as sim_truth
    from training import assess, datasets, evaluate, registry
    from training.config import from_dict

    bundle = registry.load(None)
    meta = bundle["meta"]
    cfg = from_dict(meta["config"])
    raw = config.paths().raw
    sample = sim_truth.evaluation_sample(
        raw, list(meta["splits"]["test"]), harness.BENIGN_RATE, cfg.seed
    )
    if sample is None:
        raise UserError(f"no simulator truth under {raw}: the sweep grades simulated worlds only.")
    ts = datasets.build(cfg, splits=meta["splits"], with_population=False, test_labels=sample)
    metrics, test = assess.evaluate_objects(bundle, ts, cfg)
    keys = evaluate.slice_keys(test)
    thr = bundle["thresholds"]
    out: dict = {"model_id": bundle["model_id"], "models": {}}
    # the net's blend weight: TrainConfig.net_blend, or the one "auto" chose on validation
    out["net_blend"] = bundle["thresholds"]["multitask"].get("net_blend", cfg.net_blend)
    # labels the threshold rule paid for on the validation days: the score audit's reviews (its
    # second reviews included, training.audit) and how many second reviews disagreed
    net_thr = bundle["thresholds"]["multitask"]
    out["audit_labels"] = {
        k: net_thr.get(f"audit_{k}") for k in ("reviews", "second_reviews", "disagreements")
    }
    for name, col, t in (
        ("baseline", "baseline_cal", thr["baseline"]["threshold"]),
        ("multitask", "multitask_cal", thr["multitask"]["threshold"]),
        ("cascade", "cascade_cal", thr["multitask"]["threshold"]),
    ):
        posts = evaluate.replay(test, ts.timelines, col, t)
        summary = evaluate.replay_summary(posts)
        harass = _slice_recall(posts, keys, "harm_type", ("harassment",))
        young = _slice_recall(posts, keys, "account_age_bucket", YOUNG)
        slices = _slices(posts, keys)
        ranking = metrics["models"].get(name) or evaluate.ranking_metrics(
            test, col, cfg.target_precision
        )
        out["models"][name] = {
            "recall_at_95p": ranking.get("recall_at_95p", float("nan")),
            "pr_auc": ranking.get("pr_auc", float("nan")),
            "views_prevented": summary["harmful_views_prevented_share"],
            "removal_precision_sample": summary["removal_precision"],
            "harassment_recall": harass["recall"],
            "harassment_posts": harass["harmful_posts"],
            "young_recall": young["recall"],
            "young_posts": young["harmful_posts"],
            "slices": slices,
        }
    out["test_posts"] = int(test["post_id"].nunique())
    out["test_harmful_posts"] = int(sample["is_harmful"].sum())
    if guardrail:
        rows = harness.guardrail(bundle["model_id"])["test"]
        for name in MODELS:
            row = rows.get(f"{name}/audit") or {}
            out["models"][name]["removal_precision"] = row.get("true_precision")
            out["models"][name]["benign_removed"] = row.get("benign_removed")
            out["models"][name]["posts_removed"] = row.get("posts_removed")
    return out


def run_one(
    seed: int, users: int, days: int, drift_day: int | None, world: str = "default"
) -> dict:
    """Simulate, run the DAGs and grade one world in the current data root."""
    from sim import pipeline
    from vigil.orchestration import airflow_env

    p = config.paths()
    params = {"users": users, "days": days, "start": START, "seed": seed, "drift_day": drift_day}
    started = time.monotonic()
    timings: dict[str, float] = {}
    if world != "default":  # the default world's params (and results) keep their keys
        params["world"] = world
    pipeline.ensure_simulation(p.raw.resolve(), params)
    timings["simulate"] = round(time.monotonic() - started, 1)
    last_day = (date.fromisoformat(START) + timedelta(days=days - 1)).isoformat()
    env = airflow_env.build_env()
    env.setdefault("VIGIL_REVIEW_ANSWERER", "sim.moderators:answer")
    airflow_env.ensure_ready(env)
    done = p.home / "sweep-dags-done.json"  # a re-run after a grading error skips the DAGs
    if done.exists() and json.loads(done.read_text()) == params:
        print(f"[seed {seed}] DAGs already ran on this data root, skipped", flush=True)
        jobs = []
    else:
        jobs = [
            ("vigil_daily", {"backfill": True, "raw_dir": str(p.raw.resolve())}),
            ("vigil_train", None),
        ]
    for dag_id, conf in jobs:
        print(f"[seed {seed}] {dag_id} {last_day}", flush=True)
        result = pipeline.dags_test(dag_id, last_day, conf, env=env)
        timings[dag_id] = result["seconds"]
        if not result["ok"]:
            raise UserError(f"seed {seed}: {dag_id} failed; its log is {result['log']}.")
    done.write_text(json.dumps(params))
    t0 = time.monotonic()
    graded = grade()
    timings["grade"] = round(time.monotonic() - t0, 1)
    return {"params": params, "timings": timings, **graded}


def retrain_one(seed: int, train_config: Path | None, graph: bool = False) -> dict:
    """Train anew on a world whose DAGs already ran (``vigil train --retrain``, promoted so the
    grade reads it) and grade it: the cheap loop for a model change (no simulate, no vigil_daily).
    ``graph``: first train and publish the graph embeddings (:mod:`sim.graph_sweep`), then train
    with ``graph_embeddings = True``."""
    from training import train as training_train
    from training.config import load

    p = config.paths()
    if not (p.home / "sweep-dags-done.json").exists():
        raise UserError(
            f"seed {seed}: no finished sweep run in {p.home}: run the sweep without --retrain first."
        )
    os.environ.setdefault("VIGIL_REVIEW_ANSWERER", "sim.moderators:answer")
    graph_info = None
    if graph:
        from sim import graph_sweep

        graph_info = graph_sweep.ensure_embeddings(seed)
    cfg = load(train_config, promote="always", graph_embeddings=True if graph else None)
    t0 = time.monotonic()
    summary = training_train.train(cfg, reuse=False)
    timings = {"train": round(time.monotonic() - t0, 1)}
    t0 = time.monotonic()
    graded = grade()
    timings["grade"] = round(time.monotonic() - t0, 1)
    params = json.loads((p.home / "sweep-dags-done.json").read_text())
    out = {"params": params, "timings": timings, "trained": summary["model_id"], **graded}
    return out | ({"graph": graph_info} if graph_info else {})


def result_file(tag: str | None) -> str:
    """The result file of a sweep run (``sweep-result.json``) or of a retrain tagged ``tag``."""
    return RESULT_FILE if not tag else f"sweep-result-{tag}.json"


# -- the sweep (parent) -----------------------------------------------------------------------
def _params(args, seed: int) -> dict:
    out = {
        "users": args.users,
        "days": args.days,
        "start": START,
        "seed": seed,
        "drift_day": args.drift_day,
        "graph": bool(args.graph),
    }
    if getattr(args, "world", "default") != "default":
        out["world"] = args.world
    if getattr(args, "retrain", None):
        cfg = args.train_config
        out |= {"retrain": args.retrain, "train_config": str(cfg.resolve()) if cfg else None}
    return out


def _run_seed(args, seed: int, root: Path) -> dict:
    result_file = root / result_file_name(args)
    want = _params(args, seed)
    if result_file.exists():
        saved = json.loads(result_file.read_text())
        # a child's result (written before its parent added sweep_params) counts when its
        # world is the one asked for
        same_world = saved.get("params") == {k: want[k] for k in saved.get("params", {})}
        if saved.get("sweep_params") == want or (
            "sweep_params" not in saved and same_world and not want["graph"]
        ):
            print(f"[seed {seed}] result already in {result_file}, not run again", flush=True)
            return saved
    if args.collect:
        print(f"[seed {seed}] no result in {root} yet (--collect: not run)", flush=True)
        return {"seed": seed, "failed": True}
    root.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, VIGIL_HOME=str(root))
    cmd = [sys.executable, "-m", "sim.sweep", "--one", str(seed)]
    cmd += ["--users", str(args.users), "--days", str(args.days)]
    if args.drift_day is not None:
        cmd += ["--drift-day", str(args.drift_day)]
    cmd += ["--world", args.world]
    if args.retrain:
        cmd += ["--retrain", args.retrain] + (["--graph"] if args.graph else [])
        cmd += ["--train-config", str(args.train_config.resolve())] if args.train_config else []
    print(f"[seed {seed}] data root {root}", flush=True)
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, cwd=str(config.REPO_ROOT), check=False)
    if proc.returncode != 0 or not result_file.exists():
        print(f"[seed {seed}] FAILED (exit {proc.returncode}); see the output above", flush=True)
        return {"seed": seed, "failed": True}
    saved = json.loads(result_file.read_text())
    saved["sweep_params"] = want
    saved["wall_seconds"] = round(time.monotonic() - started, 1)
    result_file.write_text(json.dumps(saved, indent=2, default=str))
    return saved


def result_file_name(args) -> str:
    return result_file(getattr(args, "retrain", None))


def _stats(values: list[float]) -> tuple[float, float, float, float]:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return (math.nan,) * 4
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return mean, min(vals), max(vals), std


def table(results: list[dict]) -> str:
    """Markdown: per model and metric, the value on each seed, mean, min-max and std."""
    ok = [r for r in results if not r.get("failed")]
    seeds = [r["params"]["seed"] for r in ok]
    head = "| model | metric | " + " | ".join(f"seed {s}" for s in seeds)
    lines = [head + " | mean | min-max | std |", "|---|---|" + "---|" * (len(seeds) + 3)]
    for model in MODELS:
        for key, label in METRICS:
            vals = [r["models"][model].get(key) for r in ok]
            vals = [math.nan if v is None else float(v) for v in vals]
            mean, lo, hi, std = _stats(vals)
            cells = " | ".join(f"{v:.3f}" for v in vals)
            lines.append(
                f"| {model} | {label} | {cells} | {mean:.3f} | {lo:.3f}-{hi:.3f} | {std:.3f} |"
            )
    counts = ", ".join(
        f"seed {r['params']['seed']}: {r['test_harmful_posts']} harmful test posts "
        f"({r['models']['multitask']['harassment_posts']} harassment, "
        f"{r['models']['multitask']['young_posts']} by authors < 30 days)"
        for r in ok
    )
    blends = ", ".join(f"seed {r['params']['seed']}: {r.get('net_blend', '?')}" for r in ok)
    reviews = ", ".join(
        f"seed {r['params']['seed']}: {lab.get('reviews')} ({lab.get('second_reviews') or 0} "
        f"second, {lab.get('disagreements') or 0} disagreeing)"
        for r in ok
        if (lab := r.get("audit_labels"))
    )
    timings = ", ".join(
        f"seed {r['params']['seed']}: "
        + " / ".join(f"{k} {v:.0f}" for k, v in r["timings"].items())
        + (f" (wall {r['wall_seconds']:.0f})" if r.get("wall_seconds") is not None else "")
        for r in ok
        if r.get("timings")
    )
    text = "\n".join(lines) + f"\n\nTest days: {counts}.\n\nThe net's blend weight: {blends}.\n"
    text += f"\nTimings in seconds: {timings}.\n" if timings else ""
    return text + (f"\nScore-audit reviews (labels paid for): {reviews}.\n" if reviews else "")


def targets(results: list[dict]) -> list[str]:
    """Issue 26's per-seed targets, one line per seed: which hold."""
    out = []
    for r in results:
        if r.get("failed"):
            out.append(f"seed {r['seed']}: FAILED")
            continue
        m = r["models"]
        checks = {
            "net beats baseline (recall@95%P)": m["multitask"]["recall_at_95p"]
            > m["baseline"]["recall_at_95p"],
            "net beats baseline (views prevented)": m["multitask"]["views_prevented"]
            > m["baseline"]["views_prevented"],
            "cascade beats baseline (views prevented)": m["cascade"]["views_prevented"]
            > m["baseline"]["views_prevented"],
            "removals >= 95% harmful (all models)": all(
                (m[k].get("removal_precision") or 0) >= 0.95 for k in MODELS
            ),
        }
        failed = [k for k, v in checks.items() if not v]
        out.append(
            f"seed {r['params']['seed']}: "
            + ("all hold" if not failed else "NOT: " + "; ".join(failed))
        )
    return out


SLICE_MIN = 30  # issue 26: no slice below 0.85 "that has >= 30 harmful posts"
YOUNG_MIN = 100  # issue 26: the world must hold >= 100 young-author harmful test posts


def slice_targets(
    results: list[dict], models: tuple[str, ...] = ("multitask", "cascade")
) -> list[str]:
    """Issue 26's slice targets per seed and model: harassment recall >= 0.90, young-author
    recall >= 0.90 (judged only with >= 100 such posts), no harm-type or account-age slice with
    >= 30 harmful posts below 0.85 (results graded before the slices were kept: not judged)."""
    out = []
    for r in results:
        if r.get("failed"):
            continue
        parts = []
        for name in models:
            m = r["models"][name]
            fails = []
            if not (m["harassment_recall"] >= 0.90):
                fails.append(f"harassment {m['harassment_recall']:.3f}")
            if m["young_posts"] < YOUNG_MIN:
                fails.append(f"young-author not judged ({m['young_posts']} posts)")
            elif not (m["young_recall"] >= 0.90):
                fails.append(f"young-author {m['young_recall']:.3f}")
            if "slices" in m:
                low = sorted(
                    (v["recall"], f"{col}={k}")
                    for col, vals in m["slices"].items()
                    for k, v in vals.items()
                    if v["harmful_posts"] >= SLICE_MIN and v["recall"] < 0.85
                )
                fails += [f"{k} {rec:.3f}" for rec, k in low]
            else:
                fails.append("slices not kept")
            parts.append(f"{name}: " + ("all hold" if not fails else "NOT: " + ", ".join(fails)))
        out.append(f"seed {r['params']['seed']} slices: " + "; ".join(parts))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.sweep", description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--users", type=int, default=DEFAULT_USERS)
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS)
    parser.add_argument("--drift-day", type=int, default=None)
    parser.add_argument(
        "--graph",
        action="store_true",
        help="with --retrain: train and publish GraphSAGE embeddings on the world, then "
        "retrain the post model with graph_embeddings on (sim.graph_sweep)",
    )
    parser.add_argument(
        "--world",
        choices=("default", "graph"),
        default="default",
        help="the simulated world: 'graph' = communities, arrival waves, harassment campaigns",
    )
    parser.add_argument("--base", type=Path, default=None, help="data roots (default DATA/sweep)")
    parser.add_argument("--write", type=Path, default=None, help="also write the table here")
    parser.add_argument(
        "--collect", action="store_true", help="only tabulate the seeds' existing results"
    )
    parser.add_argument(
        "--retrain",
        metavar="TAG",
        default=None,
        help="on worlds the sweep already ran: train anew with the current code (skips simulate "
        "and the DAGs), grade, keep the result as sweep-result-TAG.json",
    )
    parser.add_argument(
        "--train-config", type=Path, default=None, help="with --retrain: TrainConfig overrides"
    )
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.graph and not args.retrain:
            raise UserError(
                "--graph needs --retrain TAG: run the sweep on the worlds first (without "
                "--graph), then `--retrain TAG --graph` trains the embeddings and the post model."
            )
        if args.one is not None:
            if args.retrain:
                result = retrain_one(args.one, args.train_config, args.graph)
            else:
                result = run_one(args.one, args.users, args.days, args.drift_day, args.world)
            (config.paths().home / result_file_name(args)).write_text(
                json.dumps(result, indent=2, default=str)
            )
            return 0
        suffix = ""  # --graph retrains on the same world (its own result file, --retrain TAG)
        # a drifted world is another world: its own data root beside the undrifted one
        suffix += f"-drift{args.drift_day}" if args.drift_day is not None else ""
        suffix += f"-{args.world}-world" if args.world != "default" else ""
        base = (args.base or config.paths().home / "sweep").resolve()
        results = [_run_seed(args, s, base / f"seed-{s}{suffix}") for s in args.seeds]
    except UserError as exc:
        print(f"error: {exc}")
        return 2
    text = table(results)
    print(text)
    print("\n".join(targets(results)))
    print("\n".join(slice_targets(results)))
    if args.write:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        cmd = "python -m sim.sweep --seeds " + " ".join(map(str, args.seeds))
        cmd += f" --users {args.users} --days {args.days}"
        cmd += f" --drift-day {args.drift_day}" if args.drift_day is not None else ""
        cmd += " --graph" if args.graph else ""
        cmd += f" --world {args.world}" if args.world != "default" else ""
        cmd += f" --retrain {args.retrain}" if args.retrain else ""
        args.write.write_text(
            f"{stamp}, `{cmd}`\n\n{text}\n"
            + "\n".join(targets(results) + slice_targets(results))
            + "\n"
        )
    return 0 if all(not r.get("failed") for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
