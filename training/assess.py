"""Scoring a model's test split and writing its report; ``vigil evaluate``.

``evaluate_objects`` scores the test split of a :class:`training.datasets.TrainingSet` with fitted
models and computes every metric (:func:`training.evaluate.test_metrics`). The labels are the
training set's: the platform's moderator labels with their queue weights, unless the caller built
the set with labels of its own (``datasets.build(test_labels=...)``, e.g. the simulation harness).

``vigil evaluate [--model ID]`` rebuilds the registered model's test split and rewrites its report.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from training import baseline, cascade, datasets, evaluate, report
from training import text as text_encoder
from training.config import TrainConfig, from_dict

log = logging.getLogger(__name__)

SCORE_COLUMNS = {
    "baseline": "baseline",
    "multitask": "multitask",
    "student": "student",
    "cascade": "cascade_cal",
}


def score_frame(objects: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
    """All model scores for ``frame`` (raw and calibrated), plus the cascade's."""
    out = frame.copy()
    emb = text_encoder.encode(out["text"].tolist(), objects["multitask"].cfg.encoder_batch_size)
    out["baseline"] = baseline.predict(objects["baseline"], out)
    out["multitask"] = objects["multitask"].predict(out, emb)
    out["student"] = cascade.student_scores(objects["student"], out)
    for name, cal in objects["calibrators"].items():
        out[f"{name}_cal"] = cal.transform(out[name])
    out["cascade_cal"] = cascade.cascade_scores(
        out["student"], out["multitask_cal"], objects["cascade_tau"]
    )
    return out


def evaluate_objects(
    objects: dict[str, Any], ts: datasets.TrainingSet, cfg: TrainConfig
) -> tuple[dict, pd.DataFrame]:
    """Test-split metrics for every model (see training.evaluate), and the scored test frame."""
    test = score_frame(objects, ts.split("test"))
    metrics = evaluate.test_metrics(
        test, ts.timelines, objects["thresholds"], objects["cascade_tau"], cfg
    )
    return metrics, test


def labels_used(ts: datasets.TrainingSet, thresholds: dict) -> dict:
    """Which labels training, thresholds and the test metrics rest on (for the report)."""
    train = evaluate.label_sources(ts.split("train"))
    kinds = []
    for name, t in thresholds.items():
        if t.get("labels") == "audit":
            kinds.append(
                f"{name}: validation queue labels + {t.get('audit_reviews', 0)} review requests "
                f"({t.get('audit_pending', 0)} pending, unanswered)"
            )
        else:
            kinds.append(f"{name}: validation queue labels (sampling weights)")
    return {
        "train": "moderator labels: " + ", ".join(f"{k} {v} posts" for k, v in train.items()),
        "thresholds": "; ".join(kinds),
        "test": evaluate.label_sources(ts.split("test")),
    }


def evaluate_bundle(
    bundle: dict[str, Any],
    test_labels: pd.DataFrame | None = None,
    out_dir: Path | None = None,
    title: str = "",
) -> dict:
    """Rebuild a registered model's test split with today's data and rewrite its report.

    ``test_labels`` (post_id, is_harmful, is_<type>..., sampling_weight, queue) replace the test
    days' moderator labels; the report then goes to ``out_dir`` (default: the model's report).
    """
    meta = bundle["meta"]
    cfg = from_dict(meta["config"])
    ts = datasets.build(cfg, splits=meta["splits"], with_population=False, test_labels=test_labels)
    metrics, test = evaluate_objects(bundle, ts, cfg)
    metrics |= {
        "model_id": bundle["model_id"],
        "feature_service": cfg.feature_service,
        "windows": ts.windows,
        "labels": labels_used(ts, bundle["thresholds"]),
        "baseline_top_features": bundle.get("baseline_top_features", []),
    }
    report.write_report(
        bundle["model_id"], metrics, test, SCORE_COLUMNS, "multitask_cal", out_dir, title
    )
    return metrics


# -- CLI: vigil evaluate ------------------------------------------------------------------------
def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="model id (default: the champion)")


def run(args: argparse.Namespace) -> int:
    from training import registry

    bundle = registry.load(args.model)
    metrics = evaluate_bundle(bundle)
    print(
        json.dumps(
            {k: metrics[k] for k in ("model_id", "models", "cascade", "replay") if k in metrics},
            indent=2,
            default=evaluate._json_default,
        )
    )
    return 0
