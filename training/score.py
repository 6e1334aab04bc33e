"""`vigil score --date D`: score a day's posts with the champion, as the cascade would online.

Each post created on day D is scored at its scoring points (creation, +1 h, +6 h, +24 h) that fall
before the data ends, with point-in-time features from Feast. The student scores every event; only
events above the cascade threshold reach the heavy model (and need a sentence embedding). Output:
``<data root>/scores/dt=D/scores.parquet`` with the decision (remove / review / allow) and, for the
review band, the priority (expected harmful views = p x predicted remaining views). With the
champion's mention model (issue 26, :func:`apply_mentions`) a post that names someone is also
removed when its mention score reaches the mention threshold (``mention_score``, ``removed_by``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from datetime import date

import numpy as np
import pandas as pd

from training import cascade, datasets, registry
from training import text as text_encoder
from training.calibrate import decide
from training.config import from_dict
from vigil.config import paths
from vigil.errors import UserError

log = logging.getLogger(__name__)


def scores_dir():
    return paths().home / "scores"


OUT_COLUMNS = [
    "post_id",
    "author_id",
    "created_at",
    "scored_at",
    "offset_hours",
    "student",
    "routed_to_heavy",
    "probability",
    "decision",
    "predicted_remaining_views",
    "review_priority",
    "model_id",
    "mention_score",
    "removed_by",
]


def score_day(day: date | str) -> dict:
    """Scores the day's posts with the champion; a no-op (``{"skipped": ...}``) without one."""
    day = date.fromisoformat(str(day)[:10])
    bundle = _champion()
    if bundle is None:
        log.info("score: no champion model, nothing scored")
        return {"day": day.isoformat(), "skipped": "no champion model", "posts": 0}
    cfg = from_dict(bundle["meta"]["config"])
    all_posts = datasets._read_mart("posts")
    all_posts["created_at"] = datasets._utc(all_posts["created_at"])
    posts = all_posts[all_posts["created_at"].dt.date == day][
        ["post_id", "author_id", "created_at", "text"]
    ]
    if posts.empty:
        return {
            "day": day.isoformat(),
            "model_id": bundle["model_id"],
            "posts": 0,
            "events": 0,
            "skipped": no_posts_message(day, all_posts["created_at"]),
        }
    posts["text"] = posts["text"].fillna("")
    events = scoring_events(posts, bundle, cfg)
    events = route_and_score(events, bundle, cfg)
    events = decide_and_prioritise(events, bundle, cfg)
    events = apply_mentions(events, bundle, day)
    path = write_scores(events, day)
    counts = events["decision"].value_counts().to_dict()
    threshold = bundle["thresholds"]["multitask"]["threshold"]
    result = {
        "day": day.isoformat(),
        "model_id": bundle["model_id"],
        "posts": int(events["post_id"].nunique()),
        "events": len(events),
        "routed_to_heavy": int(events["routed_to_heavy"].sum()),
        "remove": int(counts.get("remove", 0)),
        "review": int(counts.get("review", 0)),
        "allow": int(counts.get("allow", 0)),
        "removed_by_mention": int((events["removed_by"] == "mention").sum()),
        "threshold": threshold if math.isfinite(threshold) else None,
        "path": str(path),
    }
    log.info("scored %s: %s", day, result)
    return result


def _champion() -> dict | None:
    """The champion's bundle; None when there is no champion (a registry error still raises)."""
    try:
        return registry.load()
    except UserError:
        if registry.champion() is None:
            return None
        raise


def scoring_events(posts: pd.DataFrame, bundle: dict, cfg) -> pd.DataFrame:
    """The posts' scoring events before the data ends, with Feast features as of each event."""
    features_file = paths().features / "post_behavior.parquet"
    behavior_end = (
        pd.read_parquet(features_file, columns=["event_timestamp"])["event_timestamp"].max()
        if features_file.exists()
        else posts["created_at"].max()
    )
    data_end = max(datasets._utc(pd.Series([behavior_end])).iloc[0], posts["created_at"].max())
    events = datasets.build_examples(posts, cfg.score_offsets_hours, data_end)
    events, _, _ = datasets.fetch_features(
        events, cfg.feature_service, graph=getattr(cfg, "graph_embeddings", False)
    )
    for col in [*bundle["behavior_columns"], *bundle["creator_columns"]]:
        if col not in events.columns:
            events[col] = np.nan
    return datasets.add_missing_indicators(
        events, bundle["behavior_columns"], bundle["creator_columns"]
    )


def route_and_score(events: pd.DataFrame, bundle: dict, cfg) -> pd.DataFrame:
    """The cascade: the student scores every event; events at or above tau get the heavy model's
    calibrated probability (the others keep 0)."""
    events["student"] = cascade.student_scores(bundle["student"], events)
    routed = events["student"] >= bundle["cascade_tau"]
    events["routed_to_heavy"] = routed
    events["probability"] = 0.0
    if routed.any():
        heavy_in = events[routed]
        emb = text_encoder.encode(heavy_in["text"].tolist(), cfg.encoder_batch_size)
        raw = bundle["multitask"].predict(heavy_in, emb)
        events.loc[routed, "probability"] = bundle["calibrators"]["multitask"].transform(raw)
    return events


def decide_and_prioritise(events: pd.DataFrame, bundle: dict, cfg) -> pd.DataFrame:
    """remove / review / allow per event; review priority = p x predicted remaining views."""
    threshold = bundle["thresholds"]["multitask"]["threshold"]
    events["decision"] = decide(events["probability"], threshold, cfg.review_band)
    vcol = bundle.get("views_column")
    views_now = events[vcol].fillna(0.0) if vcol and vcol in events else np.zeros(len(events))
    events["predicted_remaining_views"] = bundle["remaining_views"].predict(
        events["offset_hours"], views_now
    )
    events["review_priority"] = np.where(
        events["decision"] == "review",
        events["probability"] * events["predicted_remaining_views"],
        0.0,
    )
    events["model_id"] = bundle["model_id"]
    return events


def apply_mentions(events: pd.DataFrame, bundle: dict, day: date, mention=None, lake=None):
    """The mention path (issue 26): with the model's mention model (``mention.joblib``, default
    :func:`registry.load_mention`) and a finite threshold, a post that names someone is removed
    when the post path or its mention score fires (:func:`mentions.decide_with_mentions`, the
    rule of :func:`mentions.combine`). Adds ``mention_score`` (the post's highest mention's; NaN
    without a mention or a mention model) and ``removed_by`` (post / mention / both / None)."""
    from training import mentions

    threshold = bundle["thresholds"]["multitask"]["threshold"]
    if mention is None:
        mention = registry.load_mention(bundle["model_id"])
    m_threshold = float(mention["threshold"]) if mention is not None else math.inf
    events["mention_score"] = np.nan
    if math.isfinite(m_threshold):
        since = pd.Timestamp(day.isoformat(), tz="UTC")
        scores = mentions.post_scores(
            mention["model"], lake or paths().lake, since, since + pd.Timedelta(days=1)
        )
        events["mention_score"] = events["post_id"].map(scores).astype(float)
    decision, by = mentions.decide_with_mentions(
        events["decision"], events["probability"], threshold, events["mention_score"], m_threshold
    )
    events["review_priority"] = np.where(decision == "remove", 0.0, events["review_priority"])
    events["decision"], events["removed_by"] = decision, pd.array(by, dtype="string")
    return events


def write_scores(events: pd.DataFrame, day: date):
    """``scores/dt=D/scores.parquet``; idempotent per day: a rerun rewrites the same partition."""
    out_dir = scores_dir() / f"dt={day.isoformat()}"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "scores.parquet"
    events[OUT_COLUMNS].to_parquet(path, index=False, coerce_timestamps="us")
    return path


def no_posts_message(day: date, created_at: pd.Series) -> str:
    """Why nothing was scored: no post was created on ``day``, and which days the data covers."""
    if created_at.empty:
        return (
            f"no posts to score on {day}: the posts mart is empty; ingest logs and run `vigil dbt`."
        )
    first, last = created_at.min().date(), created_at.max().date()
    return (
        f"no posts were created on {day}: the posts mart covers {first} .. {last}; pick a day in "
        "that range, or ingest that day's logs and run `vigil dbt marts` first."
    )


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", required=True, help="day to score, YYYY-MM-DD")


def run(args: argparse.Namespace) -> int:
    try:
        date.fromisoformat(args.date)
    except ValueError:
        raise UserError(f"--date {args.date!r} is not a date: use YYYY-MM-DD.") from None
    result = score_day(args.date)
    if result.get("posts") == 0 and "model_id" in result and result.get("skipped"):
        raise UserError(result["skipped"])
    print(json.dumps(result, indent=2, default=str))
    return 0
