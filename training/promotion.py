"""Champion/challenger: retrain on a recent window, promote only a model that is better.

``retrain_and_decide()`` is what a drift alert leads to (the ``vigil_train`` DAG, scheduled by the
``vigil://monitor/drift_alert`` Asset):

1. The holdout: every post created in the last ``holdout_days`` days of data.
2. The challenger trains on the ``window_days`` days before the holdout (recent traffic only; the
   latest ``val_frac`` of those days calibrates and picks thresholds), through ``training.train``
   with ``promote="never"``.
3. Champion and challenger score every holdout post; moderators review a sample of them drawn by
   ``training.holdout`` (each model's score strata plus a uniform stratum, every post with a known
   inclusion probability > 0) through the review queue ``promotion_holdout``. Both models are
   evaluated on the SAME labels (``training.assess.evaluate_objects``): the holdout's queue labels
   and the reviewed posts weighted 1 / pi, so recall and precision estimate the whole holdout,
   not only reported posts.
4. Promotion only if the challenger (a) has a higher recall at the target precision, (b) prevents
   a larger share of harmful views in the replay, and (c) its removals on the holdout meet the
   precision guardrail. Otherwise the champion stays. Without a champion the challenger is promoted.
5. The decision, with every number, is appended to ``<models>/decisions.jsonl`` and logged.

Rollback to the previous champion: ``vigil models rollback`` (``training.registry.rollback``).
Thresholds: :class:`PromotionConfig` (defaults below). ``<models>/promotion.json`` under the data
root overrides any field for every retrain, including the ones a drift-alert Asset event starts
(an Asset-triggered run has no params to pass).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vigil.config import paths
from vigil.errors import UserError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromotionConfig:
    """Champion/challenger settings (documented in docs/monitoring.md, Retraining)."""

    window_days: int = (
        14  # challenger training window: labeled posts of the N days before the holdout
    )
    holdout_days: int = 3  # holdout: labeled posts created in the last N days of data
    val_frac: float = 0.25  # latest share of the window's days used for calibration/thresholds
    model: str = "multitask"  # whose metrics decide (multitask | baseline; replay also has cascade)
    target_precision: float = 0.95  # recall is measured at this precision
    # the guardrail: the holdout must not show (one-sided, at guardrail_confidence) that the
    # challenger's removals are less than precision_guardrail harmful
    precision_guardrail: float = 0.95
    guardrail_confidence: float = 0.95
    min_recall_gain: float = 0.0  # challenger recall must exceed champion's by more than this
    min_views_gain: float = (
        0.0  # harmful-views-prevented share must exceed champion's by more than this
    )
    min_holdout_posts: int = 10  # fewer labeled holdout posts: no decision possible, champion stays
    # The holdout's review sample (training.holdout): at most this many distinct posts reviewed
    # per retrain; ``holdout_uniform_share`` of it (at least) goes to a uniform sample of the posts
    # no score stratum covers, the rest to each model's score strata (``holdout_strata``: share of
    # a model's budget, sampling rate; highest scores first, as the score audit's).
    holdout_review_budget: int = 500
    holdout_uniform_share: float = 0.4
    holdout_strata: tuple = ((0.5, 1.0), (0.25, 0.25), (0.25, 0.1))
    train_overrides: dict = field(default_factory=dict)  # TrainConfig fields for the challenger

    @classmethod
    def from_file(cls, path: str | Path | None) -> PromotionConfig:
        if path is None:
            return cls()
        try:
            values = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(
                f"cannot read promotion config {path}: {exc}; pass a JSON object."
            ) from None
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise UserError(
                f"unknown promotion setting(s) {sorted(unknown)} in {path}: use {sorted(cls.__dataclass_fields__)}."
            )
        return cls(**values)


def config_path() -> Path:
    """``<models>/promotion.json``: the data root's PromotionConfig overrides (optional)."""
    return paths().models / "promotion.json"


def load_config() -> PromotionConfig:
    """PromotionConfig from ``config_path()`` when it exists, else the defaults."""
    f = config_path()
    return PromotionConfig.from_file(f if f.is_file() else None)


def decisions_path() -> Path:
    return paths().models / "decisions.jsonl"


def read_decisions() -> list[dict]:
    f = decisions_path()
    if not f.is_file():
        return []
    return [json.loads(line) for line in f.read_text().splitlines() if line.strip()]


# -- the rule (pure: tested on hand-made numbers) ----------------------------------------------------
def headline(metrics: dict, model: str = "multitask") -> dict:
    """The three numbers the rule reads from ``training.assess.evaluate_objects`` metrics."""
    ranking = (metrics.get("models") or {}).get(model, {})
    replay = (metrics.get("replay") or {}).get(model, {})
    return {
        "recall_at_95p": _num(ranking.get("recall_at_95p")),
        "harmful_views_prevented_share": _num(replay.get("harmful_views_prevented_share")),
        "removal_precision": _num(replay.get("removal_precision")),
        "posts_removed": int(replay.get("posts_removed") or 0),
        "removed_effective_n": _num(replay.get("removed_effective_n", replay.get("posts_removed"))),
    }


def precision_upper_bound(precision: float, n: float, confidence: float = 0.95) -> float:
    """One-sided Wilson upper bound of a removal precision measured on ``n`` (effective) posts;
    NaN when nothing was removed."""
    from scipy.stats import norm

    from training.calibrate import wilson_lower_bound

    if not (math.isfinite(precision) and math.isfinite(n)) or n <= 0:
        return float("nan")
    z = float(norm.ppf(confidence))
    return 1.0 - wilson_lower_bound((1.0 - precision) * n, n, z)


def _num(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def decide(champion: dict | None, challenger: dict, cfg: PromotionConfig) -> dict:
    """Promote or keep, from :func:`headline` numbers of both models on the same holdout.

    NaN never passes a comparison (a one-class holdout decides nothing; a challenger that removes
    nothing has no precision and fails the guardrail).
    """
    checks = {}
    if champion is None:
        return {"promote": True, "reason": "no champion yet", "checks": checks}
    checks["recall_better"] = bool(
        challenger["recall_at_95p"] > champion["recall_at_95p"] + cfg.min_recall_gain
    )
    # Views a champion "prevents" with removals the holdout shows below the guardrail (its own
    # one-sided upper bound < precision_guardrail) set no bar: it would keep its seat by removing
    # benign posts. NaN (it removed nothing) is no evidence: its views count as they are.
    champion_upper = precision_upper_bound(
        champion["removal_precision"],
        champion.get("removed_effective_n", float("nan")),
        cfg.guardrail_confidence,
    )
    checks["views_prevented_better"] = bool(champion_upper < cfg.precision_guardrail) or bool(
        challenger["harmful_views_prevented_share"]
        > champion["harmful_views_prevented_share"] + cfg.min_views_gain
    )
    # The threshold was set so that a 95% lower bound on validation precision is >= 0.95; on the
    # (small) holdout a point estimate is noisy, so the guardrail fails only when the holdout is
    # evidence against it: the upper confidence bound of the measured precision is below target.
    upper = precision_upper_bound(
        challenger["removal_precision"],
        challenger.get("removed_effective_n", float("nan")),
        cfg.guardrail_confidence,
    )
    checks["precision_guardrail"] = bool(upper >= cfg.precision_guardrail)
    promote = all(checks.values())
    failed = [k for k, ok in checks.items() if not ok]
    reason = (
        "challenger better on every check"
        if promote
        else "champion stays: failed " + ", ".join(failed)
    )
    return {
        "promote": promote,
        "reason": reason,
        "checks": checks,
        "challenger_precision_upper_bound": upper,
        "champion_precision_upper_bound": champion_upper,
    }


# -- the retrain -------------------------------------------------------------------------------------
def recent_splits(days: list[str], cfg: PromotionConfig) -> dict[str, list[str]]:
    """Day lists for ``datasets.build``: the last ``holdout_days`` are the test split (the holdout);
    the ``window_days`` before it train, their latest ``val_frac`` validate."""
    days = sorted(days)
    if len(days) < cfg.holdout_days + 2:
        raise UserError(
            f"only {len(days)} day(s) of labeled posts: the retrain needs {cfg.holdout_days} holdout day(s) "
            "plus at least 2 training days; wait for more data or lower holdout_days."
        )
    test = days[-cfg.holdout_days :]
    window = days[: -cfg.holdout_days][-cfg.window_days :]
    n_val = max(1, round(len(window) * cfg.val_frac))
    n_val = min(n_val, len(window) - 1)
    return {"train": window[:-n_val], "val": window[-n_val:], "test": test}


def _labeled_days(as_of: date | None) -> list[str]:
    import pandas as pd

    from training import datasets

    labels = datasets._read_mart("post_labels")
    posts = datasets._read_mart("posts")[["post_id", "created_at"]]
    lab = labels[["post_id"]].merge(posts, on="post_id")
    created = datasets._utc(lab["created_at"])
    if as_of is not None:
        created = created[created < pd.Timestamp(as_of, tz="UTC") + pd.Timedelta(days=1)]
    # Days with at least one labeled post; the window counts calendar days, so fill the gaps.
    if created.empty:
        raise UserError("there are no labeled posts: the retrain needs moderator labels.")
    first, last = created.min().normalize(), created.max().normalize()
    return [d.strftime("%Y-%m-%d") for d in pd.date_range(first, last, freq="D")]


def retrain_and_decide(
    cfg: PromotionConfig | None = None,
    as_of: date | str | None = None,
    trigger: dict | None = None,
) -> dict:
    """Train a challenger on the recent window, compare with the champion on the same reviewed
    holdout, promote or keep, log and store the decision. Returns the decision record."""
    from training import datasets, registry
    from training.config import load
    from training.train import train

    cfg = cfg or load_config()
    as_of_day = date.fromisoformat(str(as_of)[:10]) if as_of else None
    splits = recent_splits(_labeled_days(as_of_day), cfg)
    train_cfg = load(
        **{**cfg.train_overrides, "promote": "never", "target_precision": cfg.target_precision}
    )
    log.info(
        "retrain: challenger on %s .. %s, holdout %s .. %s",
        splits["train"][0],
        splits["val"][-1],
        splits["test"][0],
        splits["test"][-1],
    )
    ts = datasets.build(train_cfg, splits=splits)
    challenger_id = train(train_cfg, training_set=ts)["model_id"]
    champion_id = registry.champion()
    bundles = {"challenger": registry.load(challenger_id)}
    if champion_id is not None:
        bundles["champion"] = registry.load(champion_id)
    sample, sample_summary = review_holdout(bundles, splits["test"], train_cfg, cfg)
    numbers, holdout = evaluate_on_holdout(bundles, ts, sample, splits, train_cfg, cfg)
    holdout["labels"] = sample_summary
    verdict = _verdict(numbers.get("champion"), numbers["challenger"], holdout, cfg)
    if verdict["promote"]:
        registry.promote(challenger_id)
    record = {
        "decided_at": datetime.now(UTC).isoformat(),
        "decision": "promote" if verdict["promote"] else "keep",
        "reason": verdict["reason"],
        "checks": verdict["checks"],
        "challenger_precision_upper_bound": verdict.get("challenger_precision_upper_bound"),
        "champion_precision_upper_bound": verdict.get("champion_precision_upper_bound"),
        "champion": champion_id,
        "challenger": challenger_id,
        "champion_after": registry.champion(),
        "model": cfg.model,
        "holdout": {"days": splits["test"], **holdout},
        "train_window": {"train": splits["train"], "val": splits["val"]},
        "champion_metrics": numbers.get("champion"),
        "challenger_metrics": numbers["challenger"],
        "config": asdict(cfg),
        "trigger": trigger,
    }
    _append(record)
    _log_decision(record, cfg)
    return record


def holdout_population(train_cfg, days: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every post created on ``days``: its scoring events with Feast features (as training
    builds its validation population), and the queue labels of those days' posts."""
    from training import datasets

    posts = datasets._read_mart("posts")
    posts["created_at"] = datasets._utc(posts["created_at"])
    queue_labels = datasets.labeled_posts(datasets._read_mart("post_labels"), posts)
    queue_labels = queue_labels[queue_labels["day"].isin(set(days))].reset_index(drop=True)
    behavior = datasets._read_mart("post_behavior")
    data_end = max(datasets._utc(behavior["event_timestamp"]).max(), posts["created_at"].max())
    # Every post of the holdout days, whatever max_posts says: each must have pi > 0.
    events = datasets.build_population(
        posts, queue_labels, days, replace(train_cfg, max_posts=None), data_end
    )
    return events, queue_labels


def post_scores(bundle: dict, events: pd.DataFrame, model: str) -> pd.Series:
    """Per post: the highest calibrated ``model`` score over its scoring events."""
    from training.assess import score_frame

    events = events.copy()
    for col in [*bundle["behavior_columns"], *bundle["creator_columns"]]:
        if col not in events.columns:
            events[col] = np.nan
    return score_frame(bundle, events).groupby("post_id")[f"{model}_cal"].max()


def review_holdout(
    bundles: dict[str, dict], days: list[str], train_cfg, cfg: PromotionConfig
) -> tuple[pd.DataFrame, dict]:
    """The holdout's reviewed labels (``training.holdout``): both models score every holdout
    post, a sample drawn from their score strata plus a uniform stratum goes to review."""
    from training import holdout
    from vigil.review.files import FileReviewQueue, load_answerer

    events, queue_labels = holdout_population(train_cfg, days)
    if events.empty:
        raise UserError(f"no posts were created on the holdout day(s) {days}: ingest them first.")
    scores = {side: post_scores(b, events, cfg.model) for side, b in bundles.items()}
    labeled = events.groupby("post_id")["labeled"].first().astype(bool)
    p = holdout.plan(
        scores, labeled, cfg.holdout_review_budget, cfg.holdout_uniform_share, cfg.holdout_strata
    )
    queue = FileReviewQueue(holdout.QUEUE, cfg.holdout_review_budget, answer=load_answerer())
    return holdout.review(p, queue_labels, queue, train_cfg.seed)


def evaluate_on_holdout(
    bundles: dict[str, dict],
    ts,
    sample: pd.DataFrame,
    splits: dict[str, list[str]],
    train_cfg,
    cfg: PromotionConfig,
) -> tuple[dict[str, dict], dict]:
    """Both models' :func:`headline` numbers on the holdout, and what the holdout held.

    With review verdicts, the test split is rebuilt on the reviewed sample (queue labels weight
    1, reviews 1 / pi); without any answered request, the queue labels with their queue weights
    (the numbers then describe reported posts, and say so in ``label_sources``).
    """
    from training import datasets, holdout
    from training.assess import evaluate_objects
    from training.config import from_dict

    if (sample["queue"] == holdout.QUEUE).any():
        ts = datasets.build(train_cfg, splits=splits, with_population=False, test_labels=sample)
    else:
        log.warning(
            "holdout: no review request answered yet; champion and challenger compared on the "
            "holdout's queue labels only"
        )
    from training.evaluate import label_sources

    test = ts.split("test").groupby("post_id").first()
    numbers = {}
    for side, bundle in bundles.items():
        side_cfg = train_cfg if side == "challenger" else from_dict(bundle["meta"]["config"])
        metrics, _ = evaluate_objects(bundle, ts, side_cfg)
        numbers[side] = headline(metrics, cfg.model)
    return numbers, {
        "labeled_posts": len(test),
        "harmful_posts": int(test["is_harmful"].astype(bool).sum()),
        "label_sources": label_sources(ts.split("test")),
    }


def _verdict(champion: dict | None, challenger: dict, holdout: dict, cfg: PromotionConfig) -> dict:
    """:func:`decide`, unless the holdout has too few labeled posts to decide anything."""
    n_posts = holdout["labeled_posts"]
    if n_posts >= cfg.min_holdout_posts:
        return decide(champion, challenger, cfg)
    return {
        "promote": champion is None,
        "reason": f"holdout has {n_posts} labeled posts < {cfg.min_holdout_posts}: "
        + ("no champion yet, challenger promoted" if champion is None else "champion stays"),
        "checks": {},
    }


def _log_decision(record: dict, cfg: PromotionConfig) -> None:
    champion, challenger = record["champion_metrics"], record["challenger_metrics"]
    labels = record["holdout"]["labels"]
    log.warning(
        "champion/challenger: %s (%s); recall@%.0fP champion=%s challenger=%.3f; views prevented "
        "champion=%s challenger=%.3f; challenger precision=%.3f; holdout %d of %d posts labeled "
        "(%d queue, %d reviewed, %d pending; effective n %.0f), %d harmful",
        record["decision"].upper(),
        record["reason"],
        cfg.target_precision * 100,
        _fmt(champion, "recall_at_95p"),
        challenger["recall_at_95p"],
        _fmt(champion, "harmful_views_prevented_share"),
        challenger["harmful_views_prevented_share"],
        challenger["removal_precision"],
        record["holdout"]["labeled_posts"],
        labels["posts"],
        labels["queue"],
        labels["review_sample"],
        labels["pending"],
        labels["effective_n"],
        record["holdout"]["harmful_posts"],
    )


def _fmt(numbers: dict | None, key: str) -> str:
    return "-" if numbers is None else f"{numbers[key]:.3f}"


def _append(record: dict) -> None:
    f = decisions_path()
    f.parent.mkdir(parents=True, exist_ok=True)
    with f.open("a") as out:
        out.write(json.dumps(_clean(record), default=_json_default, allow_nan=False) + "\n")


def _clean(value):
    """NaN -> null, so decisions.jsonl is strict JSON."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_default(value: Any):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (date, datetime, timedelta)):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    return str(value)
