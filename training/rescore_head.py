"""The re-score head: the removal verdict at a re-score moment from the moment's evidence (issue 22).

At a re-score moment the cascade knows more than the heavy model's text-and-features score: the
reports, negative replies and views the post has gathered so far, its age, and the student's
score. The head is a small logistic regression on those (log-scaled counters, as the stream's
exact post counters give them, :mod:`vigil.stream.post_counters`) and the two models' scores on
the logit scale; it replaces the heavy model's probability as the removal verdict at the moments
the student routes (it needs the heavy score, so it never adds heavy-model calls).

- **Fit** on the champion's TRAINING days only: every moderator-labeled post created then (the
  labeling queues' ``post_labels``, with their sampling weights), scored at its triggered moments
  (:func:`training.rescore_moments.triggered_moments`, the stream's triggers) on exact counters,
  cut at the end of the training window; each routed moment is one example with the post's label,
  weighted by the post's sampling weight shared over its routed moments.
- **Threshold** on the VALIDATION days, the same way built: the lowest head score whose removed
  posts (a post is removed when any routed moment reaches it) have a stratified-bootstrap lower
  bound on precision >= ``target_precision`` (:func:`training.calibrate.
  bootstrap_removal_threshold`, as the heavy model's threshold).
- Test days are never read. Saved beside the model as ``rescore_head.joblib``.

``python -m training.rescore_head [--model ID]`` fits and saves the head of a registered model.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from training import datasets, registry
from training import rescore_moments as rm
from training.calibrate import bootstrap_removal_threshold
from training.config import from_dict
from vigil.errors import UserError
from vigil.stream.triggers import Triggers

log = logging.getLogger(__name__)

HEAD_FILE = "rescore_head.joblib"
# the moment's counters the head reads (post_behavior feature names, as the stream serves them)
COUNTERS = ("views", "reports", "negative_replies", "post_age_hours")
INPUTS = ("heavy_logit", "student_logit", *(f"log_{c}" for c in COUNTERS))


def _logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def _counter(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A post_behavior counter by its feature name (Feast's ``view__name`` or the bare name)."""
    cols = [c for c in frame.columns if c == name or c.endswith(f"__{name}")]
    if not cols:
        raise UserError(f"the moments carry no {name!r} counter: the head needs post_behavior.")
    return frame[cols[0]].to_numpy(dtype=np.float64)


def head_inputs(frame: pd.DataFrame) -> np.ndarray:
    """The head's inputs (:data:`INPUTS`) of moments with ``heavy``, ``student`` and the post
    counters: the scores on the logit scale (clipped at 1e-4), the counters as log(1 + x)."""
    cols = [_logit(frame["heavy"]), _logit(frame["student"])]
    for name in COUNTERS:
        cols.append(np.log1p(np.maximum(np.nan_to_num(_counter(frame, name)), 0.0)))
    return np.column_stack(cols)


@dataclass
class RescoreHead:
    """A fitted head: ``model`` (scaler + logistic regression), ``threshold`` (removal at or
    above), and the record of how both were chosen."""

    model: object
    threshold: float
    info: dict = field(default_factory=dict)

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        """P(harmful) of each moment (the moments need ``heavy``, ``student``, the counters)."""
        if frame.empty:
            return np.zeros(0)
        return self.model.predict_proba(head_inputs(frame))[:, 1]


def fit_model(x: np.ndarray, y: np.ndarray, w: np.ndarray, seed: int, c: float = 1.0):
    """Weighted logistic regression on standardized inputs."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=c, max_iter=1000, random_state=seed)
    )
    model.fit(x, y.astype(int), logisticregression__sample_weight=w)
    return model


def post_weights(moments: pd.DataFrame) -> np.ndarray:
    """Each moment's weight: its post's sampling weight shared equally over the post's moments."""
    n = moments.groupby("post_id")["post_id"].transform("size").to_numpy(dtype=np.float64)
    return moments["sampling_weight"].to_numpy(dtype=np.float64) / n


def choose_threshold(moments: pd.DataFrame, scores: np.ndarray, target: float, seed: int) -> dict:
    """The removal threshold on labeled posts' routed moments (post_id, is_harmful,
    sampling_weight): per post its highest head score (removed when any moment reaches the
    threshold), the heavy model's rule (:func:`bootstrap_removal_threshold`)."""
    per = (
        moments.assign(head=scores)
        .groupby("post_id")
        .agg(score=("head", "max"), y=("is_harmful", "first"), w=("sampling_weight", "first"))
    )
    return bootstrap_removal_threshold(
        per["score"], per["y"].astype(float), per["w"], target, level=0.95, seed=seed
    ) | {"posts": len(per), "harmful_posts": int(per["y"].astype(bool).sum())}


def fit(train: pd.DataFrame, val: pd.DataFrame, target: float = 0.95, seed: int = 7) -> RescoreHead:
    """The head from routed, labeled moments (``heavy``, ``student``, counters, post_id,
    is_harmful, sampling_weight) of the training days, thresholded on the validation days'."""
    for name, part in (("training", train), ("validation", val)):
        if part.empty or part["is_harmful"].nunique() < 2:
            raise UserError(
                f"the {name} days have no routed labeled moments of both classes: the re-score "
                "head needs harmful and benign labels there (simulate more days)."
            )
    model = fit_model(head_inputs(train), train["is_harmful"].to_numpy(), post_weights(train), seed)
    threshold = choose_threshold(val, model.predict_proba(head_inputs(val))[:, 1], target, seed)
    coef = model.named_steps["logisticregression"].coef_[0]
    info = {
        "inputs": list(INPUTS),
        "coefficients_standardized": dict(zip(INPUTS, np.round(coef, 4).tolist())),
        "train_moments": len(train),
        "train_posts": int(train["post_id"].nunique()),
        "validation": threshold,
    }
    log.info("re-score head: %s", json.dumps(info))
    return RescoreHead(model, float(threshold["threshold"]), info)


# -- the labeled moments of a registered model's training and validation days -----------------
def labeled_moments(bundle: dict, triggers: Triggers | None = None) -> dict[str, pd.DataFrame]:
    """Routed moments of the labeled posts of the model's training and validation days
    (triggered schedule, exact counters), each split cut at the end of its own window."""
    meta = bundle["meta"]
    splits = {s: [str(d) for d in meta["splits"][s]] for s in ("train", "val")}
    posts, created = rm.read_posts()
    labels = datasets.labeled_posts(datasets._read_mart("post_labels"), posts)
    events = rm.read_events(splits["train"])
    end = {s: pd.Timestamp(ds[-1], tz="UTC") + pd.Timedelta(days=1) for s, ds in splits.items()}
    events = events[events["ts"] < end["val"]]
    emb = rm.Embeddings(posts, bundle)
    out = {}
    for name, days in splits.items():
        lab = labels[labels["day"].isin(set(days))]
        part = posts[posts["post_id"].isin(set(lab["post_id"]))]
        ev = events[events["ts"] < end[name]]
        moments = rm.triggered_moments(part, ev, triggers or Triggers(), end[name])
        moments = moments[moments["scored_at"] < end[name]]
        scored = rm.score_moments(moments, posts, bundle, emb, ev, created)
        scored = scored[scored["student"] >= bundle["cascade_tau"]]
        keep = lab.set_index("post_id")[["is_harmful", "sampling_weight"]]
        out[name] = scored.join(keep, on="post_id").reset_index(drop=True)
        log.info(
            "re-score head: %s days %s..%s: %d labeled posts, %d routed moments of %d posts",
            name,
            days[0],
            days[-1],
            len(lab),
            len(out[name]),
            out[name]["post_id"].nunique(),
        )
    return out


def fit_registered(model_id: str | None = None, save: bool = True) -> RescoreHead:
    """Fit the head of a registered model (default: the champion) and save it beside it."""
    bundle = registry.load(model_id)
    cfg = from_dict(bundle["meta"]["config"])
    parts = labeled_moments(bundle)
    head = fit(parts["train"], parts["val"], cfg.target_precision, cfg.seed)
    head.info["model_id"] = bundle["model_id"]
    if save:
        import joblib

        path = registry.root() / bundle["model_id"] / HEAD_FILE
        tmp = path.with_suffix(".tmp")
        joblib.dump(head, tmp, compress=3)
        os.replace(tmp, path)
        log.info("re-score head saved: %s (threshold %.4f)", path, head.threshold)
    return head


def load(model_id: str) -> RescoreHead | None:
    """The head saved beside a registered model, or None when it has none."""
    import joblib

    path = registry.root() / model_id / HEAD_FILE
    if not path.is_file():
        return None
    try:
        return joblib.load(path)
    except registry.UNREADABLE_MODEL as exc:
        raise UserError(
            f"re-score head {path} cannot be read ({type(exc).__name__}): fit it again with "
            "`python -m training.rescore_head`."
        ) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.rescore_head", description=__doc__)
    parser.add_argument("--model", default=None, help="model id (default: the champion)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        head = fit_registered(args.model)
    except UserError as exc:
        print(f"error: {exc}")
        return 2
    print(json.dumps({"threshold": head.threshold, **head.info}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
