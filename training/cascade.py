"""Student model and cascade.

The student is cheap (no sentence encoder): hashed word n-grams + the numeric features ->
logistic regression, distilled from the multi-task network's scores. Soft targets are fitted
exactly by logistic regression by giving every example twice, once as positive with weight p and
once as negative with weight 1 - p (the cross-entropy against p is then the model's loss).

Cascade: the student scores every scoring event; only events with student score >= tau reach the
heavy model. tau is the largest value for which the cascade still removes at least
``cascade_recall_keep`` (99%) of the (sampling-weighted) harmful posts the heavy model alone
removes at its action threshold. A post is caught by the cascade when one of its scoring events
has student >= tau and heavy >= threshold, so each caught post needs tau <= the largest student
score among its heavy-caught events ("need").

The promise has to hold on new posts, not only on validation, so tau is a one-sided tolerance
bound rather than the plain quantile: with n validation posts the heavy model catches, tau is the
k-th smallest need for the largest k with P(Binomial(n, 1 - keep) >= k) >= confidence (then at
least a share ``keep`` of new posts' needs lie above tau with that confidence, distribution-free).
When n is too small even for k = 1 (n < log(1 - confidence) / log(keep), 299 for 99% / 95%), tau is
the smallest need moved down by ``safety_logit`` on the logit scale, and a warning is logged.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from training.config import TrainConfig
from training.preprocess import numeric_pipeline

log = logging.getLogger(__name__)


def make_student(cfg: TrainConfig, numeric_columns: list[str]):
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    words = HashingVectorizer(
        analyzer="word",
        ngram_range=(1, 2),
        n_features=cfg.student_hash_features,
        alternate_sign=False,
    )
    features = ColumnTransformer(
        [("word", words, "text"), ("num", numeric_pipeline(), numeric_columns)]
    )
    clf = LogisticRegression(
        C=cfg.student_C, max_iter=300, solver="liblinear", random_state=cfg.seed
    )
    return Pipeline([("features", features), ("clf", clf)])


def fit_student(train: pd.DataFrame, teacher_scores, numeric_columns: list[str], cfg: TrainConfig):
    """Distil: fit the student to the teacher's probabilities (soft labels, see module doc)."""
    p = np.clip(np.asarray(teacher_scores, dtype=np.float64), 0.0, 1.0)
    x = train[["text", *numeric_columns]]
    doubled = pd.concat([x, x], ignore_index=True)
    y = np.r_[np.ones(len(x)), np.zeros(len(x))].astype(int)
    w = np.r_[p, 1.0 - p] + 1e-6
    student = make_student(cfg, numeric_columns)
    student.fit(doubled, y, clf__sample_weight=w)
    log.info("student: distilled on %d examples", len(train))
    return student


def student_scores(student, frame: pd.DataFrame) -> np.ndarray:
    cols = ["text", *student.named_steps["features"].transformers[1][2]]
    return student.predict_proba(frame[cols])[:, 1]


def tolerance_rank(n: int, keep: float, confidence: float) -> int:
    """Largest k (1-based) with P(Binomial(n, 1 - keep) >= k) >= confidence; 0 if none."""
    from scipy.stats import binom

    k = 0
    while k < n and binom.sf(k, n, 1.0 - keep) >= confidence:  # sf(k) = P(X >= k + 1)
        k += 1
    return k


def choose_tau(
    post_id,
    student,
    heavy,
    is_harmful,
    weight,
    action_threshold: float,
    keep: float,
    confidence: float = 0.95,
    safety_logit: float = 1.0,
) -> dict:
    """The cascade threshold tau (see the module doc); all arrays are per scoring event."""
    df = pd.DataFrame(
        {
            "post_id": post_id,
            "student": student,
            "heavy": heavy,
            "y": np.asarray(is_harmful, dtype=bool),
            "w": weight,
        }
    )
    caught = df[df["y"] & (df["heavy"] >= action_threshold)]
    if caught.empty or not math.isfinite(action_threshold):
        return {"tau": math.inf, "heavy_recall": 0.0, "rule": "none"}
    need = caught.groupby("post_id").agg(need=("student", "max"), w=("w", "first"))
    needs = np.sort(need["need"].to_numpy())
    k = tolerance_rank(len(needs), keep, confidence)
    if k >= 1:
        tau, rule = float(needs[k - 1]), f"order statistic {k} of {len(needs)}"
    else:
        lo = float(np.clip(needs[0], 1e-6, 1 - 1e-6))
        tau = float(1.0 / (1.0 + math.exp(-(math.log(lo / (1 - lo)) - safety_logit))))
        rule = f"min need - {safety_logit} logit ({len(needs)} posts < tolerance size)"
        log.warning(
            "cascade: only %d heavy-caught validation posts; tau = %s = %.4f", len(needs), rule, tau
        )
    posts = df.groupby("post_id").agg(y=("y", "first"), w=("w", "first"))
    heavy_recall = float(need["w"].sum() / max((posts["w"] * posts["y"]).sum(), 1e-12))
    return {"tau": tau, "heavy_recall": heavy_recall, "rule": rule}


def cascade_scores(student, heavy, tau: float) -> np.ndarray:
    """The cascade's decision score: the heavy score where the student routed, else 0."""
    student = np.asarray(student, dtype=np.float64)
    return np.where(student >= tau, np.asarray(heavy, dtype=np.float64), 0.0)


def cascade_report(
    post_id, student, heavy, is_harmful, weight, action_threshold: float, tau: float
) -> dict:
    """Fraction of scoring events reaching the heavy model and post-level recall kept."""
    df = pd.DataFrame(
        {
            "post_id": post_id,
            "routed": np.asarray(student) >= tau,
            "heavy_hit": np.asarray(heavy) >= action_threshold,
            "y": np.asarray(is_harmful, dtype=bool),
            "w": weight,
        }
    )
    df["cascade_hit"] = df["routed"] & df["heavy_hit"]
    posts = df.groupby("post_id").agg(
        y=("y", "first"),
        w=("w", "first"),
        heavy=("heavy_hit", "max"),
        cascade=("cascade_hit", "max"),
    )
    harm_w = (posts["w"] * posts["y"]).sum()
    heavy_recall = float((posts["w"] * posts["y"] * posts["heavy"]).sum() / max(harm_w, 1e-12))
    cascade_recall = float((posts["w"] * posts["y"] * posts["cascade"]).sum() / max(harm_w, 1e-12))
    fraction = float((df["w"] * df["routed"]).sum() / max(df["w"].sum(), 1e-12))
    return {
        "tau": tau,
        "fraction_to_heavy": fraction,
        "fraction_to_heavy_unweighted": float(df["routed"].mean()) if len(df) else 0.0,
        "heavy_recall": heavy_recall,
        "cascade_recall": cascade_recall,
        "recall_kept": cascade_recall / heavy_recall if heavy_recall > 0 else 1.0,
        "recall_lost": heavy_recall - cascade_recall,
        "compute_saved": 1.0 - fraction,
    }
