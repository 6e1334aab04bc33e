"""The simulation harness: registered models graded against the simulator's truth.

The platform evaluates on its own labels. In simulation the truth is known, so this harness takes
a model from the registry and truth from :mod:`sim.truth` and calls the platform's evaluation
with the labels passed in:

- :func:`evaluate_on_truth`: the test split at the true prevalence (every harmful post of the
  test days plus a seeded ``benign_rate`` share of the benign ones, weight 1 / rate) through
  ``training.assess.evaluate_bundle``; report in ``reports/models/<id>/truth/``.
- :func:`guardrail`: for the validation and the test days, every post scored the way the score
  audit does (phase 1: the student's top share and the labeled posts all, the others at a known
  rate; heavy scores on those); per model (baseline, multitask, cascade) and threshold rule (the
  audit-based threshold and what the queue labels alone would have chosen): posts removed, the
  true share harmful (Horvitz-Thompson over phase 1) per post and per scoring event, and on
  validation the queue-label estimate of the same set's precision.
  Output: ``reports/models/<id>/guardrail.json``.

Nothing here feeds a model, a calibrator or a threshold. ``vigil pipeline`` runs both after
training; by hand: ``python -m sim.harness [--model ID] [--skip-guardrail]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math

import pandas as pd

from sim import truth as sim_truth
from training import assess, cascade, datasets, registry
from training.config import from_dict
from training.train import prescreen, score_population
from vigil.config import paths
from vigil.errors import UserError

log = logging.getLogger(__name__)

BENIGN_RATE = 0.1  # share of the test days' benign posts in the truth sample


def _bundle(model_id: str | None) -> dict:
    return registry.load(model_id)


def evaluate_on_truth(model_id: str | None = None, benign_rate: float = BENIGN_RATE) -> dict:
    """The model's test metrics on the truth sample; report under reports/models/<id>/truth/."""
    bundle = _bundle(model_id)
    meta = bundle["meta"]
    cfg = from_dict(meta["config"])
    sample = sim_truth.evaluation_sample(
        paths().raw, list(meta["splits"]["test"]), benign_rate, cfg.seed
    )
    if sample is None:
        raise UserError(
            f"no simulator truth under {paths().raw}: the harness grades models of a simulated "
            "world only; run `vigil simulate` (or `vigil pipeline`) first."
        )
    out = paths().reports / "models" / bundle["model_id"] / "truth"
    return assess.evaluate_bundle(
        bundle, test_labels=sample, out_dir=out, title=" (graded on the simulator's truth)"
    )


def _population(cfg, ts, days) -> pd.DataFrame:
    posts = datasets._read_mart("posts")
    posts["created_at"] = datasets._utc(posts["created_at"])
    beh = datasets._read_mart("post_behavior")
    data_end = max(datasets._utc(beh["event_timestamp"]).max(), posts["created_at"].max())
    empty = pd.DataFrame(columns=["post_id", "is_harmful", "sampling_weight"])
    return datasets.build_population(posts, empty, days, cfg, data_end)


def _guardrail_rows(frame, bundle, truth, labels=None) -> dict:
    thr, tau = bundle["thresholds"], bundle["cascade_tau"]
    f = frame.assign(y=frame["post_id"].map(truth).fillna(False).astype(bool))
    f["iw"] = 1.0 / f["r"]
    out = {}
    for name, key in (
        ("baseline", "baseline"),
        ("multitask", "multitask"),
        ("cascade", "multitask"),
    ):
        for rule, t in (
            ("audit", thr[key].get("raw_threshold")),
            ("queue_labels", thr[key].get("queue_labels_raw_threshold")),
        ):
            if t is None or not math.isfinite(t):
                continue
            hit = f[key] >= t
            if name == "cascade":
                hit &= f["student"] >= tau
            ph = (
                f.assign(hit=hit)
                .groupby("post_id")
                .agg(hit=("hit", "max"), y=("y", "first"), iw=("iw", "first"))
            )
            rem = ph[ph["hit"]]
            ev = f[hit]
            row = {
                "posts_removed": float(rem["iw"].sum()),
                "true_precision": float((rem["iw"] * rem["y"]).sum() / rem["iw"].sum())
                if len(rem)
                else None,
                "true_precision_per_event": float((ev["iw"] * ev["y"]).sum() / ev["iw"].sum())
                if len(ev)
                else None,
                "benign_removed": float((rem["iw"] * ~rem["y"]).sum()),
                "harmful_recall": float((rem["iw"] * rem["y"]).sum() / (ph["iw"] * ph["y"]).sum()),
            }
            if labels is not None:
                lab = labels.join(ph["hit"], how="inner")
                lab = lab[lab["hit"].astype(bool)]
                row["queue_labels_in_set"] = len(lab)
                row["queue_label_precision_estimate"] = (
                    float((lab["w"] * lab["y"]).sum() / lab["w"].sum()) if len(lab) else None
                )
            out[f"{name}/{rule}"] = row
    return out


def guardrail(model_id: str | None = None) -> dict:
    """The precision guardrail of a registered model on the truth (see the module doc)."""
    bundle = _bundle(model_id)
    meta = bundle["meta"]
    cfg = from_dict(meta["config"])
    ts = datasets.build(cfg, splits=meta["splits"], with_population=True)
    truth = sim_truth.posts(paths().raw)
    if truth is None:
        raise UserError(
            f"no simulator truth under {paths().raw}: the guardrail check needs a simulated world."
        )
    truth = truth.set_index("post_id")["is_harmful"].astype(bool)
    result = {"model_id": bundle["model_id"]}
    labels = (
        ts.split("val")
        .groupby("post_id")
        .agg(y=("is_harmful", "first"), w=("sampling_weight", "first"))
    )
    test_days = list(meta["splits"]["test"])
    for split, pop, seed in (
        ("validation", ts.population, cfg.seed),
        ("test", _population(cfg, ts, test_days), cfg.seed + 100),
    ):
        kept, r = prescreen(pop, bundle["student"], dataclasses.replace(cfg, seed=seed))
        kept = score_population(kept, bundle["baseline"], bundle["multitask"], cfg)
        kept["r"] = kept["post_id"].map(r)
        kept["student"] = cascade.student_scores(bundle["student"], kept)
        result[split] = _guardrail_rows(
            kept, bundle, truth, labels if split == "validation" else None
        )
        result[split]["posts"] = len(r)
    out = paths().reports / "models" / bundle["model_id"]
    out.mkdir(parents=True, exist_ok=True)
    (out / "guardrail.json").write_text(json.dumps(result, indent=2))
    return result


def run_after_training(model_id: str | None = None, with_guardrail: bool = True) -> dict:
    """What ``vigil pipeline`` calls after training: the truth report (and the guardrail)."""
    metrics = evaluate_on_truth(model_id)
    out = {
        "model_id": metrics["model_id"],
        "models": metrics["models"],
        "replay": metrics["replay"],
    }
    if with_guardrail:
        out["guardrail"] = guardrail(metrics["model_id"])
    return out


def graded_before(model_id: str | None) -> dict | None:
    """The truth grading already written for ``model_id`` (reports/models/<id>/truth/metrics.json)
    when it is newer than the truth file it graded against; None otherwise."""
    if model_id is None:
        return None
    done = paths().reports / "models" / model_id / "truth" / "metrics.json"
    truth = sim_truth.posts_path(paths().raw)
    if not (done.is_file() and truth.is_file()):
        return None
    if done.stat().st_mtime < truth.stat().st_mtime:
        return None
    try:
        metrics = json.loads(done.read_text())
        metrics["models"]["multitask"]["pr_auc"], metrics["replay"]["multitask"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return metrics


def print_after_training() -> None:
    """``vigil pipeline``'s step after training: the champion graded on the truth, in two lines
    (read back when this champion was already graded on this truth, e.g. on a re-run)."""
    metrics = graded_before(registry.champion()) or evaluate_on_truth()
    replay = metrics["replay"]["multitask"]
    print(
        f"      graded on the simulator's truth: multitask PR-AUC "
        f"{metrics['models']['multitask']['pr_auc']:.3f}, harmful views prevented "
        f"{replay['harmful_views_prevented_share']:.1%}, removal precision "
        f"{replay['removal_precision']:.3f}"
    )
    out = paths().reports / "models" / metrics["model_id"] / "truth" / "report.html"
    print(f"      report: {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.harness")
    parser.add_argument("--model", default=None, help="model id (default: the champion)")
    parser.add_argument(
        "--skip-guardrail", action="store_true", help="only the test metrics on the truth"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        result = run_after_training(args.model, with_guardrail=not args.skip_guardrail)
    except UserError as exc:
        print(f"error: {exc}")
        return 2
    print(json.dumps(result, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
