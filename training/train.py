"""`vigil train`: training set via Feast -> baseline, multi-task net, student + cascade ->
calibration and thresholds on validation -> evaluation on test -> registry (+ report).

Labels: the moderator labels of the labeling queues (post_labels) train the models; calibration
and thresholds add the score audit's review verdicts (``vigil.review``); the test metrics use the
test days' moderator labels (``training.assess``). The report names each source with counts.

``train(config=None, dry_run=False) -> dict`` is what the DAG and ``vigil pipeline`` call.
A dry run is a tiny, fast end-to-end pass (a few hundred posts, one epoch) used by the tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training import (
    assess,
    baseline,
    cascade,
    datasets,
    evaluate,
    fingerprint,
    mentions,
    registry,
)
from training import text as text_encoder
from training.calibrate import (
    Calibrator,
    RemainingViews,
    bootstrap_removal_threshold,
    isotonic_removal_threshold,
    removal_threshold,
)
from training.config import DRY_RUN_OVERRIDES, TrainConfig, from_dict, load
from training.datasets import TrainingSet
from training.multitask import MultiTaskModel, mix_logits, sigmoid
from training.report import write_report
from vigil.config import paths
from vigil.errors import UserError

log = logging.getLogger(__name__)

# Where it lived before the evaluation moved to training.assess (tests/monitor imports it here).
score_frame = assess.score_frame


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _resolve_config(config: Any, dry_run: bool) -> TrainConfig:
    if isinstance(config, TrainConfig):
        return from_dict(DRY_RUN_OVERRIDES, config) if dry_run else config
    if isinstance(config, dict):
        return load(dry_run=dry_run, **config)
    if isinstance(config, (str, Path)):
        return load(config, dry_run=dry_run)
    return load(dry_run=dry_run)


def views_column(columns: list[str]) -> str | None:
    for c in columns:
        if c == "views" or c.endswith("__views"):
            return c
    return None


def queue_threshold(pm: pd.DataFrame, cfg: TrainConfig, floor: float = -math.inf) -> dict:
    """The removal threshold rule on per-post (score, y, w) rows: candidates above ``floor``."""
    pm = pm[pm["score"] > floor]
    tw = pm["w"] if cfg.threshold_weights == "sampling" else None
    if cfg.threshold_method == "isotonic":
        w = np.ones(len(pm)) if tw is None else tw
        return isotonic_removal_threshold(pm["score"], pm["y"], w, cfg.target_precision)
    if cfg.threshold_method == "bootstrap":
        return bootstrap_removal_threshold(
            pm["score"],
            pm["y"],
            np.ones(len(pm)) if tw is None else tw,
            cfg.target_precision,
            level=cfg.threshold_level,
            n_boot=cfg.threshold_bootstrap,
            seed=cfg.seed,
        )
    return removal_threshold(pm["score"], pm["y"], tw, cfg.target_precision, cfg.confidence_z)


def prescreen(pop: pd.DataFrame, student, cfg: TrainConfig) -> tuple[pd.DataFrame, pd.Series]:
    """Phase 1 of the audit: the events of the posts kept for heavy scoring, and every post's
    keep probability r (1 for the student's top ``audit_prescreen_share`` and labeled posts,
    else ``audit_prescreen_rate``; a seeded Bernoulli draw)."""
    pop = pop.copy()
    pop["student"] = cascade.student_scores(student, pop)
    smax = pop.groupby("post_id")["student"].max()
    labeled = pop.groupby("post_id")["labeled"].first().astype(bool).reindex(smax.index)
    cut = float(np.quantile(smax, 1.0 - cfg.audit_prescreen_share)) if len(smax) else 0.0
    r = pd.Series(np.where((smax >= cut) | labeled, 1.0, cfg.audit_prescreen_rate), smax.index)
    u = pd.Series(np.random.default_rng([cfg.seed, 37]).random(len(smax)), smax.index)
    kept = r.index[u < r]
    log.info(
        "score audit phase 1: %d of %d posts scored by the heavy model (student top %.0f%% and "
        "labeled posts all, the rest at rate %.3f)",
        len(kept),
        len(smax),
        100 * cfg.audit_prescreen_share,
        cfg.audit_prescreen_rate,
    )
    return pop[pop["post_id"].isin(kept)].reset_index(drop=True), r


def score_population(pop: pd.DataFrame, base, heavy, cfg: TrainConfig) -> pd.DataFrame:
    """Raw baseline and multi-task scores of population events (``net_blend = "auto"`` before the
    weight is chosen: also the network's own logit, ``multitask_net``, from which
    :func:`choose_blend` mixes each weight)."""
    pop = pop.copy()
    emb = text_encoder.encode(pop["text"].tolist(), cfg.encoder_batch_size)
    pop["baseline"] = baseline.predict(base, pop)
    if cfg.net_blend == "auto" and getattr(heavy, "blend", None) is None:  # not chosen yet
        pop["multitask_net"] = heavy.net_logit(pop, emb)
        pop["multitask"] = sigmoid(pop["multitask_net"].to_numpy())
    else:
        pop["multitask"] = heavy.predict(pop, emb)
    return pop


def score_audit(ts: TrainingSet, cfg: TrainConfig, base, heavy, student) -> dict | None:
    """Score the validation population, audit a score-stratified sample (training.audit).

    Two phases, both with known probabilities. Phase 1 (compute: the sentence encoder is the
    cost): the cheap student scores every validation-day post; posts in its top
    ``audit_prescreen_share`` and every queue-labeled post are kept, the others with probability
    ``audit_prescreen_rate`` (seeded); the kept posts get baseline and multi-task scores. Phase 2:
    the score-stratified review sample of :func:`training.audit.run` on the kept posts. A reviewed
    post's inclusion probability is the product of both phases.

    Returns None (the caller falls back to the queue labels) when there is no population or no
    review request has been answered yet. Reads only validation-day labels: queue labels and
    review verdicts (``vigil.review``: the file queue, answered by moderators' verdict files or
    by the configured answerer).
    """
    from training import audit
    from vigil.review.files import FileReviewQueue, load_answerer

    pop = ts.population
    if pop is None or pop.empty:
        log.warning("score audit: no validation population; thresholds from queue labels")
        return None
    pop, r = prescreen(pop, student, cfg)
    pop = score_population(pop, base, heavy, cfg)
    first = ts.population.groupby("post_id").first()
    post_scores = {name: pop.groupby("post_id")[name].max() for name in ("baseline", "multitask")}
    labels = first.loc[first["labeled"].astype(bool), "is_harmful"].astype(bool)
    # the second reviews (audit_second_review) are at most one per queue-labeled post
    budget = 2 * cfg.audit_budget + (len(labels) if cfg.audit_second_review else 0)
    queue = FileReviewQueue(audit.QUEUE, budget, answer=load_answerer())
    result, floors = audit.run(
        post_scores,
        labels,
        queue,
        cfg.audit_budget,
        cfg.seed,
        cfg.audit_strata,
        second_review=cfg.audit_second_review,
    )
    if not (result["source"] == audit.QUEUE).any():
        log.warning(
            "score audit: none of %d review requests is answered yet (verdict files under %s); "
            "thresholds from queue labels",
            queue.pending,
            queue.root / "verdicts",
        )
        return None
    result["phase1_rate"] = r.reindex(result.index)
    result["pi"] = result["pi"] * result["phase1_rate"]  # labeled posts: 1 x 1
    result["sampling_weight"] = first["sampling_weight"].reindex(result.index)
    return {
        "population": pop,
        "post_scores": post_scores,
        "audit": result,
        "floors": floors,
        "reviews": queue.used,
        "pending": queue.pending,
        "population_posts": len(r),
    }


def audit_calibrate_and_threshold(info: dict, name: str, cfg: TrainConfig):
    """Calibrator and removal threshold for one model from the audited validation population.

    Calibration sample (scoring events, weighted to the whole validation population): above the
    model's audit floor, every observed post (queue label or review) with weight 1 / pi; below it,
    the queue-labeled posts with their sampling weights. The threshold rule runs on the observed
    posts above the floor with weights 1 / pi.
    """
    aud, floor = info["audit"], info["floors"][name]
    pop = info["population"]
    smax = info["post_scores"][name]
    above = smax > floor
    w_post = pd.Series(np.nan, index=aud.index)
    obs_above = above & aud["observed"]
    w_post[obs_above] = 1.0 / aud.loc[obs_above, "pi"]
    below_lab = ~above & (aud["source"] == "queue")
    w_post[below_lab] = aud.loc[below_lab, "sampling_weight"]
    keep = w_post.dropna().index
    ev = pop[pop["post_id"].isin(keep)]
    cal = Calibrator(cfg.calibration).fit(
        ev[name],
        aud["y"].reindex(ev["post_id"]).to_numpy(),
        w_post.reindex(ev["post_id"]).to_numpy(),
    )
    pm = pd.DataFrame(
        {
            "score": cal.transform(smax[obs_above].to_numpy()) if obs_above.any() else [],
            "y": aud.loc[obs_above, "y"].to_numpy(),
            "w": w_post[obs_above].to_numpy(),
        },
        index=smax[obs_above].index,
    )
    cal_floor = float(cal.transform([floor])[0]) if math.isfinite(floor) else -math.inf
    # Candidates are the observed posts' scores above the floor (raw and calibrated order agree).
    out = queue_threshold(pm, cfg)
    out |= {
        "harmful_removed_est": harmful_removed(pm, out["threshold"]),
        "labels": "audit",
        "audit_floor": cal_floor,
        "audit_posts": int(obs_above.sum()),
        "audit_reviews": int(info["reviews"]),
        "audit_pending": int(info["pending"]),
        "audit_second_reviews": int(aud["second_review"].notna().sum())
        if "second_review" in aud
        else 0,
        "audit_disagreements": int((aud["source"] == "disagree").sum()),
        "population_posts": info["population_posts"],
        "population_removed_est": float(
            ((cal.transform(smax.to_numpy()) >= out["threshold"]) / aud["phase1_rate"]).sum()
        ),
        "raw_threshold": float(pm.loc[pm["score"] >= out["threshold"]].index.map(smax).min())
        if math.isfinite(out["threshold"])
        else math.inf,
    }
    if math.isfinite(out["threshold"]) and out["n_removed"] == len(pm) and math.isfinite(floor):
        log.warning("%s: the removal threshold sits at the audit floor: raise audit_budget", name)
    return cal, out


def harmful_removed(pm: pd.DataFrame, threshold: float) -> float:
    """Weighted count of harmful posts at or above ``threshold`` among per-post (score, y, w) rows:
    the Horvitz-Thompson estimate of the harmful validation posts the threshold removes."""
    if not math.isfinite(threshold):
        return 0.0
    m = pm["score"].to_numpy() >= threshold
    return float((pm["w"].to_numpy()[m] * pm["y"].to_numpy()[m].astype(float)).sum())


def blend_floor(audit: pd.DataFrame, scores: pd.Series) -> float:
    """The audit floor of any score on the audited population: the highest score of a post no
    audit stratum covers (inclusion probability 0); -inf when every post is covered."""
    uncovered = audit.index[audit["pi"].to_numpy() <= 0]
    vals = scores.reindex(uncovered).dropna()
    return float(vals.max()) if len(vals) else -math.inf


def blend_candidate(
    weight: float, audit_info: dict | None, val: pd.DataFrame, cfg: TrainConfig
) -> tuple[Any, dict, dict | None]:
    """Calibrator and removal threshold of the net blended at ``weight`` (the net alone at 0),
    by the platform's own rule on the labels it already has: the score audit's
    (:func:`audit_calibrate_and_threshold`; the floor at weight 0 is the net's own, else the
    blend's over the posts the audit never covers) or, without an audit, the validation queue
    labels. Reads the network's logit (``multitask_net``) and the baseline's probability
    (``baseline``) of the events. Returns (calibrator, threshold record, the audit info of
    this weight or None)."""
    mixed = sigmoid(mix_logits(val["multitask_net"], val["baseline"], weight))
    val_w = val.assign(multitask=mixed)
    if audit_info is None:
        cal = Calibrator(cfg.calibration).fit(
            val_w["multitask"], val_w["is_harmful"], val_w["sampling_weight"].to_numpy()
        )
        pm = evaluate.post_max(
            val_w.assign(multitask_cal=cal.transform(val_w["multitask"])), "multitask_cal"
        )
        thr = queue_threshold(pm, cfg) | {"labels": "queues"}
        thr["harmful_removed_est"] = harmful_removed(pm, thr["threshold"])
        return cal, thr, None
    pop = audit_info["population"]
    pop = pop.assign(multitask=sigmoid(mix_logits(pop["multitask_net"], pop["baseline"], weight)))
    scores = pop.groupby("post_id")["multitask"].max()
    floor = (
        audit_info["floors"]["multitask"]
        if weight == 0
        else blend_floor(audit_info["audit"], scores)
    )
    info = {
        **audit_info,
        "population": pop,
        "post_scores": {**audit_info["post_scores"], "multitask": scores},
        "floors": {**audit_info["floors"], "multitask": floor},
    }
    cal, thr = audit_calibrate_and_threshold(info, "multitask", cfg)
    return cal, thr, info


def strict_config(cfg: TrainConfig) -> TrainConfig:
    """``net_blend_rule = "strict"``: the threshold rule at the Bonferroni level over the blend grid,
    one-sided 1 - (1 - level) / K for K weights (bootstrap: ``threshold_level``; Wilson: the level
    of ``confidence_z``, turned back into a z). With K = 1 it is ``cfg`` itself."""
    from statistics import NormalDist

    k = len(cfg.net_blend_grid)
    z_level = NormalDist().cdf(cfg.confidence_z)
    return dataclasses.replace(
        cfg,
        threshold_level=1.0 - (1.0 - cfg.threshold_level) / k,
        confidence_z=NormalDist().inv_cdf(1.0 - (1.0 - z_level) / k),
    )


def choose_blend(
    audit_info: dict | None, val: pd.DataFrame, cfg: TrainConfig
) -> tuple[float, list[dict], tuple]:
    """``net_blend = "auto"``: the weight of ``cfg.net_blend_grid`` whose removal threshold removes
    the most harmful validation posts (``harmful_removed_est``: the threshold rule keeps the
    removed set's precision bound >= target_precision, so this is recall at the target precision,
    up to the common denominator); ties -> the smaller weight. ``net_blend_rule``: "most" compares
    the weights at the platform's own threshold; "strict" at the threshold of the Bonferroni level
    over the grid (:func:`strict_config`; ``harmful_removed_strict`` in the record), so that the
    winner's precision bound holds jointly over the K weights compared: picking the maximum of K
    noisy estimates favours the weight whose threshold sits lowest by chance, and a win bought with
    a benign post just above the harmful ones does not survive the stricter bound. "strict": the
    chosen weight keeps the platform's own threshold (so 0 is the net alone, bit for bit);
    "joint": it keeps the stricter one, where the joint bound holds. Only validation-day labels (queue labels and
    score-audit reviews) are read. Returns (weight, one record per weight, the chosen weight's
    (calibrator, threshold, audit info))."""
    strict = cfg.net_blend_rule in ("strict", "joint")
    scfg = strict_config(cfg) if strict else None
    best, best_w, best_fit, table = -math.inf, None, None, []
    for weight in sorted(cfg.net_blend_grid):
        cal, thr, info = blend_candidate(weight, audit_info, val, cfg)
        row = {
            "weight": weight,
            "harmful_removed_est": thr["harmful_removed_est"],
            "n_removed": thr["n_removed"],
            "threshold": thr["threshold"],
            "precision": thr["precision"],
            "lower_bound": thr["lower_bound"],
        }
        est = thr["harmful_removed_est"]
        if strict:
            scal, sthr, sinfo = blend_candidate(weight, audit_info, val, scfg)
            est = sthr["harmful_removed_est"]
            if cfg.net_blend_rule == "joint":  # the chosen weight keeps the stricter threshold
                cal, thr, info = scal, sthr, sinfo
            row |= {
                "harmful_removed_strict": est,
                "n_removed_strict": sthr["n_removed"],
                "threshold_strict": sthr["threshold"],
            }
        table.append(row)
        if est > best:  # ascending weights: a tie keeps the smaller
            best, best_w, best_fit = est, weight, (cal, thr, info)
    log.info("net_blend auto (%s): weight %s chosen from %s", cfg.net_blend_rule, best_w, table)
    return best_w, table, best_fit


def fit_models(ts: TrainingSet, cfg: TrainConfig) -> dict[str, Any]:
    """Fit every model, calibrate and choose thresholds on validation. Returns the fitted objects."""
    seed_everything(cfg.seed)
    train, val = ts.split("train"), ts.split("val")
    check_classes(train, val)
    fitted, emb_val = fit_estimators(train, val, ts, cfg)
    val = val.copy()
    val["baseline"] = baseline.predict(fitted["baseline"], val)
    if cfg.net_blend == "auto":  # the net alone until calibrate_and_threshold chooses the weight
        val["multitask_net"] = fitted["multitask"].net_logit(val, emb_val)
        val["multitask"] = sigmoid(val["multitask_net"].to_numpy())
    else:
        val["multitask"] = fitted["multitask"].predict(val, emb_val)
    val["student"] = cascade.student_scores(fitted["student"], val)
    calibrators, thresholds = calibrate_and_threshold(ts, val, fitted, cfg)
    weight = thresholds["multitask"].get("net_blend")
    if cfg.net_blend == "auto" and weight:
        # The student learns the chosen blend, as with a fixed net_blend (the audit's prescreen
        # used the student of the net alone: its inclusion probabilities hold whoever drew them).
        t = time.perf_counter()
        blended = sigmoid(
            mix_logits(
                fitted["train_net_logit"], baseline.predict(fitted["baseline"], train), weight
            )
        )
        fitted["student"] = cascade.fit_student(train, blended, ts.numeric_columns, cfg)
        fitted["timings"]["student_s"] += time.perf_counter() - t
        val["student"] = cascade.student_scores(fitted["student"], val)
    tau, val_cascade = choose_cascade(val, thresholds["multitask"]["threshold"], cfg)
    vcol = views_column(ts.behavior_columns)
    remaining = RemainingViews().fit(
        train["offset_hours"], train[vcol] if vcol else np.zeros(len(train)), train["views_final"]
    )
    return {
        "baseline": fitted["baseline"],
        "multitask": fitted["multitask"],
        "student": fitted["student"],
        "calibrators": calibrators,
        "thresholds": thresholds,
        "cascade_tau": tau,
        "remaining_views": remaining,
        "views_column": vcol,
        "behavior_columns": ts.behavior_columns,
        "creator_columns": ts.creator_columns,
        "numeric_columns": ts.numeric_columns,
        "config": cfg.to_dict(),
        "baseline_top_features": fitted["top_features"],
        "validation_cascade": val_cascade,
        "timings": fitted["timings"],
    }


def check_classes(train: pd.DataFrame, val: pd.DataFrame) -> None:
    """Training needs both classes; a one-class validation split only degrades calibration."""
    if train["is_harmful"].nunique() < 2:
        from vigil.errors import UserError

        raise UserError(
            "the training split has only one class: simulate more days or label more posts."
        )
    if val["is_harmful"].nunique() < 2:
        # Thresholds then come out as +inf (remove nothing): the safe default, logged loudly.
        log.warning(
            "validation split has one class (%d posts): calibration is degenerate",
            val["post_id"].nunique(),
        )


def fit_estimators(
    train: pd.DataFrame, val: pd.DataFrame, ts: TrainingSet, cfg: TrainConfig
) -> tuple[dict[str, Any], np.ndarray]:
    """Baseline, multi-task net and student, with timings; also returns the validation embeddings."""
    num = ts.numeric_columns
    timings: dict[str, float] = {}
    t = time.perf_counter()
    base = baseline.fit(train, num, cfg)
    timings["baseline_s"] = time.perf_counter() - t
    top = baseline.top_features(base, train["text"], cfg.top_features)

    t = time.perf_counter()
    emb_train = text_encoder.encode(train["text"].tolist(), cfg.encoder_batch_size)
    emb_val = text_encoder.encode(val["text"].tolist(), cfg.encoder_batch_size)
    timings["embeddings_s"] = time.perf_counter() - t
    t = time.perf_counter()
    heavy = MultiTaskModel(cfg, ts.behavior_columns, ts.creator_columns).fit(
        train, emb_train, val, emb_val
    )
    timings["multitask_s"] = time.perf_counter() - t
    auto = cfg.net_blend == "auto"  # the net alone until the weight is chosen (choose_blend)
    heavy.blend_with(base, 0.0 if auto else cfg.net_blend)

    train_net_logit = heavy.net_logit(train, emb_train) if auto else None
    heavy_train = sigmoid(train_net_logit) if auto else heavy.predict(train, emb_train)
    t = time.perf_counter()
    student = cascade.fit_student(train, heavy_train, num, cfg)
    timings["student_s"] = time.perf_counter() - t
    fitted = {
        "baseline": base,
        "multitask": heavy,
        "student": student,
        "top_features": top,
        "timings": timings,
        "train_net_logit": train_net_logit,
    }
    return fitted, emb_val


def calibrate_and_threshold(
    ts: TrainingSet, val: pd.DataFrame, fitted: dict[str, Any], cfg: TrainConfig
) -> tuple[dict, dict]:
    """Calibrators and removal thresholds per model: from the score audit when it ran, else
    from the validation queue labels. Adds ``<model>_cal`` columns to ``val``."""
    w = val["sampling_weight"].to_numpy()
    audit_info = None
    if cfg.threshold_labels == "audit":
        audit_info = score_audit(
            ts, cfg, fitted["baseline"], fitted["multitask"], fitted["student"]
        )
    calibrators, thresholds = {}, {}
    chosen = None
    if cfg.net_blend == "auto":
        weight, table, chosen = choose_blend(audit_info, val, cfg)
        fitted["multitask"].blend_with(fitted["baseline"], weight)
        val["multitask"] = sigmoid(mix_logits(val["multitask_net"], val["baseline"], weight))
        if audit_info is not None:
            audit_info = chosen[2]
    for name in ("baseline", "multitask"):
        if chosen is not None and name == "multitask":
            cal, thresholds[name] = chosen[0], chosen[1]
            thresholds[name] |= {"net_blend": weight, "net_blend_choice": table}
            if audit_info is not None:
                thresholds[name]["queue_labels_raw_threshold"] = queue_threshold(
                    evaluate.post_max(val, name), cfg
                )["threshold"]
        elif audit_info is not None:
            cal, thresholds[name] = audit_calibrate_and_threshold(audit_info, name, cfg)
            # For the record: what the queue labels alone would choose (raw score, same order).
            thresholds[name]["queue_labels_raw_threshold"] = queue_threshold(
                evaluate.post_max(val, name), cfg
            )["threshold"]
        else:
            cal = Calibrator(cfg.calibration).fit(val[name], val["is_harmful"], w)
            pm = evaluate.post_max(
                val.assign(**{f"{name}_cal": cal.transform(val[name])}), f"{name}_cal"
            )
            thresholds[name] = queue_threshold(pm, cfg) | {"labels": "queues"}
        calibrators[name] = cal
        val[f"{name}_cal"] = cal.transform(val[name])
        log.info("%s removal threshold: %s", name, thresholds[name])
    return calibrators, thresholds


def choose_cascade(val: pd.DataFrame, t_remove: float, cfg: TrainConfig) -> tuple[float, dict]:
    """The cascade's tau on validation and its validation report."""
    w = val["sampling_weight"].to_numpy()
    choice = cascade.choose_tau(
        val["post_id"],
        val["student"],
        val["multitask_cal"],
        val["is_harmful"],
        w,
        t_remove,
        cfg.cascade_recall_keep,
        cfg.cascade_confidence,
        cfg.cascade_safety_logit,
    )
    val_cascade = cascade.cascade_report(
        val["post_id"],
        val["student"],
        val["multitask_cal"],
        val["is_harmful"],
        w,
        t_remove,
        choice["tau"],
    )
    log.info("cascade tau=%.4f on validation: %s", choice["tau"], val_cascade)
    return choice["tau"], val_cascade


def _should_promote(cfg: TrainConfig, metrics: dict) -> bool:
    if cfg.promote == "always":
        return True
    if cfg.promote == "never":
        return False
    current = registry.champion()
    if current is None:
        return True
    try:
        old = registry.meta(current)["metrics"]["replay"]["multitask"][
            "harmful_views_prevented_share"
        ]
    except (KeyError, TypeError):
        return True
    return metrics["replay"]["multitask"]["harmful_views_prevented_share"] >= old


def _reused_summary(meta: dict, seconds: float) -> dict:
    """The summary of a registered model trained on the same inputs (nothing trained)."""
    metrics = meta.get("metrics") or {}
    model_id = meta["model_id"]
    log.info(
        "training inputs unchanged (fingerprint %s...): %s was trained on them, reused "
        "(`vigil train --retrain` trains anew)",
        meta["input_fingerprint"][:12],
        model_id,
    )
    return {
        "model_id": model_id,
        "promoted": False,
        "reused": True,
        "champion": registry.champion() == model_id,
        "report": str(paths().reports / "models" / model_id / "report.html"),
        "seconds": round(seconds, 2),
        "examples": meta.get("examples"),
        **{k: metrics.get(k) for k in ("models", "replay", "cascade", "thresholds")},
        "slices_flagged": metrics.get("slices_flagged", []),
        "labels": metrics.get("labels"),
    }


def train(
    config: TrainConfig | dict | str | Path | None = None,
    dry_run: bool = False,
    training_set: TrainingSet | None = None,
    reuse: bool | None = None,
) -> dict:
    """Build the training set, fit, evaluate, register. Returns a summary dict.

    ``reuse`` (default: on, except for dry runs and a given ``training_set``): when a registered
    model was trained on the same code, configuration and training set (``training.fingerprint``),
    return it instead of training a copy."""
    cfg = _resolve_config(config, dry_run)
    seed_everything(cfg.seed)
    started = time.perf_counter()
    ts = training_set if training_set is not None else datasets.build(cfg)
    if reuse is None:
        reuse = not dry_run and training_set is None
    inputs = fingerprint.training_fingerprint(ts, cfg) if reuse else None
    prior = fingerprint.trained_on(inputs) if inputs else None
    if prior is not None:
        return _reused_summary(prior, time.perf_counter() - started)
    objects = fit_models(ts, cfg)
    metrics, test = assess.evaluate_objects(objects, ts, cfg)
    splits = {
        s: sorted(ts.examples.loc[ts.examples["split"] == s, "day"].unique().tolist())
        for s in datasets.SPLITS
    }
    model_id = registry.new_model_id()
    harassment = mentions.for_training(paths().lake, splits, cfg.seed)  # harassment at the @mention
    metrics |= {
        "harassment": (harassment or {}).get("metrics"),
        "model_id": model_id,
        "feature_service": cfg.feature_service,
        "windows": ts.windows,
        "baseline_top_features": objects["baseline_top_features"],
        "timings": objects["timings"],
        "validation_cascade": objects["validation_cascade"],
        "labels": assess.labels_used(ts, objects["thresholds"]),
    }
    registry.save(
        model_id,
        {k: v for k, v in objects.items() if k not in ("timings",)},
        {
            "feature_service": cfg.feature_service,
            "config": cfg.to_dict(),
            "windows": ts.windows,
            "splits": splits,
            "dry_run": dry_run,
            "metrics": {k: v for k, v in metrics.items() if k not in ("baseline_top_features",)},
            "examples": len(ts.examples),
            "posts": int(ts.examples["post_id"].nunique()),
            "input_fingerprint": inputs,
        },
        extra=lambda folder: (
            datasets.save_snapshot(ts, folder),
            registry.save_mention(folder, harassment),
        ),
    )
    report = write_report(model_id, metrics, test, assess.SCORE_COLUMNS, "multitask_cal")
    head = fit_rescore_head(model_id, {k: v for k, v in objects.items() if k != "timings"})
    promoted = _should_promote(cfg, metrics)
    if promoted:
        registry.promote(model_id)
    elapsed = time.perf_counter() - started
    log.info("trained %s in %.1f s (promoted: %s)", model_id, elapsed, promoted)
    return {
        "model_id": model_id,
        "promoted": promoted,
        "report": str(report),
        "seconds": round(elapsed, 2),
        "examples": len(ts.examples),
        "models": metrics["models"],
        "replay": metrics["replay"],
        "cascade": metrics["cascade"],
        "thresholds": metrics["thresholds"],
        "slices_flagged": metrics["slices_flagged"],
        "labels": metrics["labels"],
        "rescore_head": head,
    }


def fit_rescore_head(model_id: str, objects: dict) -> dict:
    """Fit the re-score head (:mod:`training.rescore_head`) of the model just registered and save
    it beside it. When the training labels do not allow one (or anything else goes wrong), log why
    and save none: the head is a second removal path, never a reason to lose the trained model."""
    from training import rescore_head

    bundle = {**objects, "meta": registry.meta(model_id), "model_id": model_id}
    try:
        head = rescore_head.fit_registered(model_id, bundle=bundle)
    except UserError as exc:
        log.warning("re-score head of %s not fitted: %s", model_id, exc)
        return {"saved": False, "reason": str(exc)}
    except Exception as exc:  # the model is registered; the head is optional
        log.exception("re-score head of %s failed; the model has none", model_id)
        return {"saved": False, "reason": f"{type(exc).__name__}: {str(exc)[:200]}"}
    threshold = head.threshold if math.isfinite(head.threshold) else None
    return {"saved": True, **head.info.get("validation", {}), "threshold": threshold}


# -- CLI: vigil train -------------------------------------------------------------------------------
def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="tiny fast end-to-end run (tests)")
    parser.add_argument(
        "--config", default=None, help="JSON or TOML file overriding TrainConfig fields"
    )
    parser.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
    parser.add_argument("--seed", type=int, default=None, help="override the random seed")
    parser.add_argument(
        "--retrain",
        action="store_true",
        help="train even when a registered model was trained on the same inputs",
    )


def run(args: argparse.Namespace) -> int:
    cfg = load(args.config, dry_run=args.dry_run, epochs=args.epochs, seed=args.seed)
    summary = train(cfg, dry_run=args.dry_run, reuse=False if args.retrain else None)
    print(json.dumps(summary, indent=2, default=evaluate._json_default))
    return 0
