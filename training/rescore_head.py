"""The re-score head: a second removal path at re-score moments, from the moment's evidence (issue 22).

At a re-score moment the cascade knows more than the heavy model's score: the reports, negative
replies and views the post has gathered so far, its age, and the student's score. The head is a
small logistic regression on those (the student's score on the logit scale, the counters as
log(1 + x), as the stream's exact post counters give them, :mod:`vigil.stream.post_counters`). At
a moment the student routes (the heavy model runs there anyway: no added heavy calls) the post is
removed when the heavy model's calibrated probability reaches its removal threshold (as today) OR
the head's reaches the head's threshold.

The heavy model's score is not an input: on the training days it scores the posts it was trained
on, where it is near certain (in-sample), so a head fitted there learns to trust it and little
else (tried: standardized coefficient 13.9 on the heavy logit, negative on reports).

- **Fit** on the champion's TRAINING days only: every moderator-labeled post created then (the
  labeling queues' ``post_labels``, with their sampling weights), scored at its triggered moments
  (:func:`training.rescore_moments.triggered_moments`, the stream's triggers) on exact counters,
  cut at the end of the training window; each routed moment is one example with the post's label,
  weighted by the post's sampling weight shared over its routed moments. ``vigil train`` fits on
  every routed moment (:data:`DEFAULT_FIT_ON`: the unreported posts' audit labels teach it what a
  report means against the student's score); ``fit_on="evidence"`` keeps only the moments with a
  report or negative reply (the first design: on seed 11 it found no threshold).
- **Threshold** on the VALIDATION days, built the same way: the lowest head score at which the
  posts the head removes and the heavy model does not (at any routed moment) have a
  stratified-bootstrap lower bound on precision >= ``target_precision`` (:func:`training.
  calibrate.bootstrap_removal_threshold`, the heavy model's rule). None: the head adds nothing.
- The head acts only at moments with a report or a negative reply (:data:`EVIDENCE`).
- Test days are never read. Saved beside the model as ``rescore_head.joblib``.

``python -m training.rescore_head [--model ID]`` fits and saves the head of a registered model.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
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
INPUTS = ("student_logit", *(f"log_{c}" for c in COUNTERS))
# with ``history``: what the moderators' labels said so far of the post's reporters and creator
# (:class:`training.rescore_moments.History`, point in time, the post's own label left out)
HISTORY_INPUTS = ("reporter_reputation", "log_creator_harmful_labels", "log_creator_benign_labels")
# the head acts only on moments with users' evidence: reported posts are labeled at a high rate, so
# the validation precision of its removals rests on many labels (unreported posts are sampled at
# 0.4-2.5%, and a head that also acted on them removed benign posts no label had shown)
EVIDENCE = ("reports", "negative_replies")
FIT_ON = ("evidence", "routed")  # the training moments of the head (:func:`fit`)
# what `vigil train` fits (fit_registered): every routed moment (issue 22: seed 11's head found
# no threshold when fitted on evidence moments alone; docs/rescoring.md)
DEFAULT_FIT_ON = "routed"
HEAVY_PATH = 2.0  # the verdict of a moment the heavy model removes: above every head probability
# a re-score request's trigger (vigil.stream.triggers reasons joined by "+", e.g. "first_report",
# "views_64+reports_2", "negative_replies_3"; also the plain "report", "negative_reply", "rescore")
_RESCORE_REASON = re.compile(
    r"first_report|reports?(_\d+)?|views_\d+|negative_repl(y|ies)(_\d+)?|rescore"
)


def is_rescore_trigger(trigger: str | None) -> bool:
    """Whether a scoring request is a re-score moment (every ``+``-joined reason is one of the
    stream's trigger reasons), where the head may act; a creation-time score (no trigger, or
    ``request`` / ``creation``) is not."""
    if not trigger:
        return False
    return all(_RESCORE_REASON.fullmatch(part) for part in str(trigger).split("+"))


def _logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def _counter(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A post_behavior counter by its feature name (Feast's ``view__name`` or the bare name)."""
    cols = [c for c in frame.columns if c == name or c.endswith(f"__{name}")]
    if not cols:
        raise UserError(f"the moments carry no {name!r} counter: the head needs post_behavior.")
    return frame[cols[0]].to_numpy(dtype=np.float64)


def has_evidence(frame: pd.DataFrame) -> np.ndarray:
    """Moments with at least one report or negative reply so far (:data:`EVIDENCE`)."""
    return np.column_stack([np.nan_to_num(_counter(frame, c)) > 0 for c in EVIDENCE]).any(axis=1)


def head_inputs(frame: pd.DataFrame, history: bool = False) -> np.ndarray:
    """The head's inputs (:data:`INPUTS`) of moments with ``student`` and the post counters: the
    student's score on the logit scale (clipped at 1e-4), the counters as log(1 + x); with
    ``history`` also :data:`HISTORY_INPUTS` from the moments' :data:`training.rescore_moments.
    HISTORY` columns (the reporters' reputation as is, the creator's label counts as log(1 + x))."""
    cols = [_logit(frame["student"])]
    for name in COUNTERS:
        cols.append(np.log1p(np.maximum(np.nan_to_num(_counter(frame, name)), 0.0)))
    if history:
        missing = [c for c in rm.HISTORY if c not in frame.columns]
        if missing:
            raise UserError(
                f"the moments carry no {', '.join(missing)}: this re-score head reads the "
                "reporters' and the creator's label history (training.rescore_moments.History)."
            )
        cols.append(np.nan_to_num(frame["reporter_reputation"].to_numpy(np.float64), nan=0.5))
        for name in rm.HISTORY[1:]:
            cols.append(np.log1p(np.maximum(np.nan_to_num(frame[name].to_numpy(np.float64)), 0)))
    return np.column_stack(cols)


def input_names(history: bool = False) -> tuple[str, ...]:
    return (*INPUTS, *HISTORY_INPUTS) if history else INPUTS


@dataclass
class RescoreHead:
    """A fitted head: ``model`` (scaler + logistic regression), ``threshold`` (the head's removal
    threshold, inf: none), ``heavy_threshold`` (the heavy model's, kept as the first path), and the
    record of how they were chosen; ``history``: it also reads :data:`HISTORY_INPUTS`."""

    model: object
    threshold: float
    heavy_threshold: float
    info: dict = field(default_factory=dict)
    history: bool = False

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        """The head's P(harmful) of each moment with evidence (:func:`has_evidence`), 0 for the
        others (moments with ``student`` and the counters)."""
        if frame.empty:
            return np.zeros(0)
        x = head_inputs(frame, getattr(self, "history", False))  # heads saved before: False
        return self.model.predict_proba(x)[:, 1] * has_evidence(frame)

    def score_one(self, student: float, features: dict) -> float:
        """The head's probability of one moment: the student's score and the moment's features
        by name, as the online store serves them (None: missing, counted 0)."""
        return float(self.score(pd.DataFrame([{**features, "student": student}]))[0])

    def fires(self, probability: float) -> bool:
        return bool(probability > 0 and probability >= self.threshold)

    def verdict(self, frame: pd.DataFrame) -> np.ndarray:
        """Each routed moment's verdict score: :data:`HEAVY_PATH` where the heavy model's
        probability (``heavy``) reaches its threshold, else the head's probability; the moment
        removes at or above :attr:`remove_at`."""
        heavy = frame["heavy"].to_numpy(dtype=np.float64) >= self.heavy_threshold
        return np.where(heavy, HEAVY_PATH, self.score(frame))

    @property
    def remove_at(self) -> float:
        return min(self.threshold, HEAVY_PATH)


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


def choose_threshold(
    moments: pd.DataFrame, scores: np.ndarray, heavy_threshold: float, target: float, seed: int
) -> dict:
    """The head's removal threshold on labeled posts' routed moments (post_id, heavy, is_harmful,
    sampling_weight) and their head ``scores``: a post is removed when any moment's heavy
    probability reaches ``heavy_threshold`` or its head score reaches the threshold; the head's
    threshold is the heavy model's rule (:func:`bootstrap_removal_threshold`) on the highest head
    score of each post the heavy model does not remove, so the head's own removals hold the
    target precision. ``threshold`` inf: the head adds nothing."""
    frame = moments.assign(head=scores, by_heavy=moments["heavy"] >= heavy_threshold)
    per = frame.groupby("post_id").agg(
        head=("head", "max"),
        by_heavy=("by_heavy", "max"),
        y=("is_harmful", "first"),
        w=("sampling_weight", "first"),
    )
    # the head's own removals (posts the heavy model leaves) must hold the target by themselves:
    # then adding them cannot pull the removals' precision below it
    rest = per[~per["by_heavy"]]
    out = bootstrap_removal_threshold(
        rest["head"], rest["y"].astype(float), rest["w"], target, level=0.95, seed=seed
    )
    if out["threshold"] <= 0:  # a head score of 0 is a moment without evidence: never removes
        out["threshold"] = float("inf")
    added = ~per["by_heavy"] & (per["head"] >= out["threshold"])
    return out | {
        "posts": len(per),
        "harmful_posts": int(per["y"].astype(bool).sum()),
        "removed_by_heavy": int(per["by_heavy"].sum()),
        "added_by_head": int(added.sum()),
        "added_by_head_harmful": int(per.loc[added, "y"].astype(bool).sum()),
    }


def fit(
    train: pd.DataFrame,
    val: pd.DataFrame,
    heavy_threshold: float,
    target: float = 0.95,
    seed: int = 7,
    history: bool = False,
    fit_on: str = "evidence",
) -> RescoreHead:
    """The head from routed, labeled moments (``heavy``, ``student``, counters, post_id,
    is_harmful, sampling_weight; with ``history`` also the :data:`training.rescore_moments.
    HISTORY` columns) of the training days, thresholded on the validation days'. ``fit_on``:
    ``evidence``, the moments with a report or negative reply (where the head acts), or
    ``routed``, every routed moment (the unreported posts' labels, few but weighted up to the
    population, teach it what the evidence means); it acts at moments with evidence either way."""
    if fit_on not in FIT_ON:
        raise UserError(f"fit_on must be one of {', '.join(FIT_ON)}, not {fit_on!r}.")
    if fit_on == "evidence":
        train = train[has_evidence(train)]
    for name, part in (("training", train), ("validation", val)):
        if part.empty or part["is_harmful"].nunique() < 2:
            raise UserError(
                f"the {name} days have no routed labeled moments of both classes: the re-score "
                "head needs harmful and benign labels there (simulate more days)."
            )
    x = head_inputs(train, history)
    model = fit_model(x, train["is_harmful"].to_numpy(), post_weights(train), seed)
    scores = model.predict_proba(head_inputs(val, history))[:, 1] * has_evidence(val)
    threshold = choose_threshold(val, scores, heavy_threshold, target, seed)
    coef = model.named_steps["logisticregression"].coef_[0]
    names = input_names(history)
    info = {
        "inputs": list(names),
        "coefficients_standardized": dict(zip(names, np.round(coef, 4).tolist())),
        "train_moments": len(train),
        "train_posts": int(train["post_id"].nunique()),
        "fit_on": fit_on,
        "heavy_threshold": heavy_threshold,
        "validation": threshold,
    }
    log.info("re-score head: %s", json.dumps(info))
    return RescoreHead(model, float(threshold["threshold"]), heavy_threshold, info, history)


def crossfit(
    train: pd.DataFrame,
    val: pd.DataFrame,
    heavy_threshold: float,
    folds: int = 5,
    target: float = 0.95,
    seed: int = 7,
    history: bool = False,
) -> RescoreHead:
    """More labels for the threshold (tried for seed 11, where the 24 validation posts the heavy
    model leaves gave none): the labeled posts of the training AND validation days are split in
    ``folds`` by post; each fold's moments are scored by a head fitted on the other folds'
    moments with evidence; the threshold is :func:`choose_threshold` on all those out-of-fold
    scores; the head kept is fitted on every moment with evidence. On the training days the heavy
    model scores posts it was trained on, so it leaves fewer harmful ones there: the precision of
    the head's own removals is if anything understated."""
    pool = pd.concat([train, val], ignore_index=True)
    evidence = has_evidence(pool)
    if pool[evidence]["is_harmful"].nunique() < 2:
        raise UserError(
            "the training and validation days have no routed labeled moments with evidence of "
            "both classes: the re-score head needs harmful and benign labels there."
        )
    ids = pool["post_id"].unique()
    order = np.random.default_rng(seed).permutation(len(ids))
    fold = pool["post_id"].map(dict(zip(ids[order], np.arange(len(ids)) % folds))).to_numpy()
    scores = np.zeros(len(pool))
    for k in range(folds):
        rows = evidence & (fold != k)
        if pool.loc[rows, "is_harmful"].nunique() < 2:
            continue  # a fold that cannot be fitted scores 0: it adds nothing
        model = fit_model(
            head_inputs(pool[rows], history),
            pool.loc[rows, "is_harmful"].to_numpy(),
            post_weights(pool[rows]),
            seed,
        )
        held = fold == k
        x = head_inputs(pool[held], history)
        scores[held] = model.predict_proba(x)[:, 1] * evidence[held]
    threshold = choose_threshold(pool, scores, heavy_threshold, target, seed)
    part = pool[evidence]
    x = head_inputs(part, history)
    model = fit_model(x, part["is_harmful"].to_numpy(), post_weights(part), seed)
    info = {
        "crossfit_folds": folds,
        "inputs": list(input_names(history)),
        "train_moments": len(part),
        "train_posts": int(part["post_id"].nunique()),
        "heavy_threshold": heavy_threshold,
        "validation": threshold,
    }
    log.info("re-score head (cross-fitted): %s", json.dumps(info, default=str))
    return RescoreHead(model, float(threshold["threshold"]), heavy_threshold, info, history)


# -- the labeled moments of a registered model's training and validation days -----------------
def labeled_moments(
    bundle: dict, triggers: Triggers | None = None, history: bool = False
) -> dict[str, pd.DataFrame]:
    """Routed moments of the labeled posts of the model's training and validation days
    (triggered schedule, exact counters; with ``history`` the :class:`training.rescore_moments.
    History` columns too, point in time), each split cut at the end of its own window."""
    meta = bundle["meta"]
    splits = {s: [str(d) for d in meta["splits"][s]] for s in ("train", "val")}
    posts, created = rm.read_posts()
    labels = datasets.labeled_posts(datasets._read_mart("post_labels"), posts)
    events = rm.read_events(splits["train"])
    end = {s: pd.Timestamp(ds[-1], tz="UTC") + pd.Timedelta(days=1) for s, ds in splits.items()}
    events = events[events["ts"] < end["val"]]
    emb = rm.Embeddings(posts, bundle)
    known = rm.read_history(posts) if history else None
    out = {}
    for name, days in splits.items():
        lab = labels[labels["day"].isin(set(days))]
        part = posts[posts["post_id"].isin(set(lab["post_id"]))]
        ev = events[events["ts"] < end[name]]
        moments = rm.triggered_moments(part, ev, triggers or Triggers(), end[name])
        moments = moments[moments["scored_at"] < end[name]]
        scored = rm.score_moments(moments, posts, bundle, emb, ev, created)
        scored = scored[scored["student"] >= bundle["cascade_tau"]]
        if known is not None:
            scored = known.add(scored)
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


def fit_registered(
    model_id: str | None = None,
    save: bool = True,
    bundle: dict | None = None,
    folds: int = 0,
    history: bool = False,
    fit_on: str = DEFAULT_FIT_ON,
) -> RescoreHead:
    """Fit the head of a registered model (default: the champion) and save it beside it;
    ``bundle``: the model's objects already in memory (``vigil train`` right after saving it);
    ``folds`` > 1: thresholded on cross-fitted training and validation labels (:func:`crossfit`);
    ``history``: the head also reads the reporters' and the creator's label history; ``fit_on``:
    see :func:`fit`."""
    bundle = bundle if bundle is not None else registry.load(model_id)
    cfg = from_dict(bundle["meta"]["config"])
    parts = labeled_moments(bundle, history=history)
    heavy_threshold = float(bundle["thresholds"]["multitask"]["threshold"])
    if folds > 1:
        head = crossfit(
            parts["train"],
            parts["val"],
            heavy_threshold,
            folds,
            cfg.target_precision,
            cfg.seed,
            history,
        )
    else:
        head = fit(
            parts["train"],
            parts["val"],
            heavy_threshold,
            cfg.target_precision,
            cfg.seed,
            history,
            fit_on,
        )
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
    parser.add_argument(
        "--crossfit",
        type=int,
        default=0,
        metavar="K",
        help="threshold on K-fold cross-fitted training + validation labels (default: off, the "
        "validation days' labels only)",
    )
    parser.add_argument(
        "--history",
        action="store_true",
        help="the head also reads the reporters' reputation and the creator's labeled posts "
        "(point in time, from post_labels)",
    )
    parser.add_argument(
        "--fit-on",
        choices=FIT_ON,
        default=DEFAULT_FIT_ON,
        help="the training moments: every routed one (default) or those with a report or "
        "negative reply; the head acts at moments with evidence either way",
    )
    parser.add_argument(
        "--no-save", action="store_true", help="fit and report, keep the saved head as is"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # through the module's import name: a head pickled from ``__main__`` would not load elsewhere
    import importlib

    try:
        module = importlib.import_module("training.rescore_head")
        head = module.fit_registered(
            args.model,
            save=not args.no_save,
            folds=args.crossfit,
            history=args.history,
            fit_on=args.fit_on,
        )
    except UserError as exc:
        print(f"error: {exc}")
        return 2
    print(json.dumps({"threshold": head.threshold, **head.info}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
