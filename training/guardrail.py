"""Check the precision guardrail of a registered model on the simulator's truth (evaluation only).

    python -m training.guardrail [--model ID]

For the validation days and the test days it scores every post the way the score audit does
(phase 1: the student's top share and the labeled posts all, the others at a known rate; heavy
scores on those) and reports, per model (baseline, multitask, cascade) and per threshold rule (the
model's audit-based threshold and, for the record, what the queue labels alone would have chosen):
posts removed, the true share harmful (``_truth``, Horvitz-Thompson over phase 1) per post and per
scoring event, and on validation the queue-label estimate of the same set's precision.

It reads ``_truth`` for validation and test days, after training: it never feeds a model, a
calibrator or a threshold. Output: JSON on stdout and ``reports/models/<id>/guardrail.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math

import pandas as pd

from vigil.config import paths

log = logging.getLogger(__name__)


def _population(cfg, ts, days) -> pd.DataFrame:
    from training import datasets

    posts = datasets._read_mart("posts")
    posts["created_at"] = datasets._utc(posts["created_at"])
    beh = datasets._read_mart("post_behavior")
    data_end = max(datasets._utc(beh["event_timestamp"]).max(), posts["created_at"].max())
    empty = pd.DataFrame(columns=["post_id", "is_harmful", "sampling_weight"])
    return datasets.build_population(posts, empty, days, cfg, data_end)


def _rows(frame, bundle, truth, labels=None) -> dict:
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


def check(model_id: str | None = None) -> dict:
    from training import cascade, datasets, registry
    from training.config import from_dict
    from training.train import prescreen, score_population

    bundle = registry.load(model_id)
    meta = bundle["meta"]
    cfg = from_dict(meta["config"])
    ts = datasets.build(cfg, splits=meta["splits"], with_population=True)
    truth = pd.read_json(
        paths().raw / "_truth" / "posts.jsonl", lines=True, dtype={"post_id": "int64"}
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
        result[split] = _rows(kept, bundle, truth, labels if split == "validation" else None)
        result[split]["posts"] = len(r)
    out = paths().reports / "models" / bundle["model_id"]
    out.mkdir(parents=True, exist_ok=True)
    (out / "guardrail.json").write_text(json.dumps(result, indent=2))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.guardrail")
    parser.add_argument("--model", default=None, help="model id (default: the champion)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    print(json.dumps(check(args.model), indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
