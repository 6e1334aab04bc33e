"""The ranking features as warehouse tables: the topic step's output and the dbt marts over it.

The topic step (:func:`vigil.ranking.pipeline.fit_topics`) writes every lake post's topic
distribution to ``lake/post_topics/post_topics.parquet`` (:func:`write_post_topics`: one row per
post and topic, the NMF version that produced it). The marts stage's ``dbt build`` reads it as
the ``lake.post_topics`` source and builds four feature marts (``dbt/models/marts/features``),
exported to ``features/<table>.parquet`` for Feast (views in ``feature_repo/feature_views.py``)
and checked by the ``features`` gate (``expectations/features/<table>.json``):

- ``post_topics``: a post's topic weights, its main topic (the largest weight, the first on a
  tie, as ``numpy.argmax``), at the post's creation;
- ``user_topic_interest``: per user, topic and day D, positive engagement (like 1, reply 1.5,
  share 2) with posts of the topic before D 00:00 UTC, each weighted by the post's topic weight
  and decayed by exp(-age / 3 days), and its share of the user's largest topic that day;
- ``user_author_affinity``: per user, author and day D, the same decayed engagement with the
  author's posts;
- ``topic_velocity``: per main topic and hour H, the posts created in [H - 1 h, H) over the
  hourly mean of the 24 h before ((now + 1) / (base / 24 + 1)).

These are the values :class:`vigil.ranking.features.FeatureContext` computes in memory
(``snapshot().interest``, ``snapshot().affinity``, ``velocity``): tests/ranking/test_feature_marts.py
holds the two equal on a hand-made lake and checks both against hand-computed numbers.
Without the topic step's file (every world but the discovery one) the source is an empty file
and the marts build empty at no cost (``vigil.has_post_topics``, dbt/macros/ranking.sql;
the empty file: :func:`vigil.lake.post_topics.ensure_lake_file`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vigil.lake import post_topics

log = logging.getLogger(__name__)

TTL_DAYS = 7
# Feast views over the marts: view -> (entity join keys, {feature: (type, description)}).
VIEWS: dict[str, tuple[tuple[str, ...], dict[str, tuple[str, str]]]] = {
    "post_topics": (
        ("post_id", "topic_id"),
        {
            "topic_weight": ("float", "the post's weight on the topic (weights sum to 1)"),
            "is_main_topic": ("int", "1 when the topic is the post's largest"),
        },
    ),
    "user_topic_interest": (
        ("user_id", "topic_id"),
        {
            "interest": ("float", "positive engagement with the topic, decayed over 3 days"),
            "interest_share": ("float", "interest / the user's largest topic interest that day"),
        },
    ),
    "user_author_affinity": (
        ("user_id", "author_id"),
        {"affinity": ("float", "positive engagement with the author, decayed over 3 days")},
    ),
    "topic_velocity": (
        ("topic_id",),
        {
            "posts_last_hour": ("int", "posts of the main topic created in the hour before"),
            "posts_prior_24h": ("int", "posts of the main topic in the 24 hours before that"),
            "velocity": ("float", "(posts_last_hour + 1) / (posts_prior_24h / 24 + 1)"),
        },
    ),
}
TABLES = tuple(VIEWS)


def write_post_topics(post_ids, topic_vec: np.ndarray, version: str) -> Path:
    """Every post's topic weights (dense: one row per post and topic, zeros included, so the
    marts' main topic is numpy's argmax), replacing the file whole (rename)."""
    post_ids = np.asarray(post_ids, dtype=np.int64)
    n, k = topic_vec.shape
    table = pa.table(
        {
            "post_id": np.repeat(post_ids, k),
            "topic_id": np.tile(np.arange(k, dtype=np.int32), n),
            "topic_weight": np.asarray(topic_vec, dtype=np.float32).reshape(-1),
            "topics_version": pa.array([version] * (n * k), pa.string()),
        },
        schema=post_topics.SCHEMA,
    )
    dest = post_topics.path()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, dest)
    log.info("post topics: %d posts x %d topics (%s) -> %s", n, k, version, dest)
    return dest


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = np.maximum(np.abs(a), np.abs(b))
    diff = np.divide(np.abs(a - b), scale, out=np.zeros_like(scale), where=scale > 0)
    return float(diff.max()) if len(diff) else 0.0


def compare_with_memory(features_dir: Path | None = None) -> dict:
    """The exported marts against :class:`~vigil.ranking.features.FeatureContext` on the same
    lake and post topics: rows one side has and the other lacks, and the largest relative
    difference, per mart. A check for a real world (tests/ranking/test_feature_marts.py holds
    it on a hand-made one)."""
    import pandas as pd

    from vigil import config
    from vigil.ranking import data
    from vigil.ranking.features import FeatureContext

    out_dir = Path(features_dir) if features_dir is not None else config.paths().features
    marts = {t: pd.read_parquet(out_dir / f"{t}.parquet") for t in TABLES}
    view = data.load()
    pt = marts["post_topics"]
    k = int(pt["topic_id"].max()) + 1
    dense = pt.pivot(index="post_id", columns="topic_id", values="topic_weight")
    vec = dense.reindex(view.posts["post_id"].to_numpy()).fillna(0.0).to_numpy(np.float32)
    ctx = FeatureContext(view, vec[:, :k])
    report = {"posts": len(view.posts), "posts_without_topics": int(
        (~view.posts["post_id"].isin(dense.index)).sum())}  # fmt: skip
    it, af = marts["user_topic_interest"], marts["user_author_affinity"]
    days = sorted(set(it["event_timestamp"]) | set(af["event_timestamp"]))
    worst = {"interest": 0.0, "affinity": 0.0}
    mismatched = {"interest": 0, "affinity": 0}
    for day in days:
        snap = ctx.snapshot(int(day.value // 1_000_000))  # ns -> ms
        rows = it[it["event_timestamp"] == day]
        got = np.zeros_like(snap.interest)
        got[rows["user_id"], rows["topic_id"]] = rows["interest"]
        mismatched["interest"] += int(((got > 0) != (snap.interest > 0)).sum())
        worst["interest"] = max(worst["interest"], _rel(got.ravel(), snap.interest.ravel()))
        rows = af[af["event_timestamp"] == day]
        keys = rows["user_id"].to_numpy() * ctx.n_users + rows["author_id"].to_numpy()
        order = np.argsort(keys)
        same = len(keys) == len(snap.affinity_keys) and bool(
            (keys[order] == snap.affinity_keys).all()
        )
        if not same:
            mismatched["affinity"] += abs(len(keys) - len(snap.affinity_keys)) or 1
            continue
        worst["affinity"] = max(
            worst["affinity"], _rel(rows["affinity"].to_numpy()[order], snap.affinity)
        )
    tv = marts["topic_velocity"]
    hours = (tv["event_timestamp"].astype("datetime64[ms, UTC]").astype("int64")).to_numpy()
    main = pt[pt["is_main_topic"] == 1].set_index("post_id")["topic_id"]
    report.update({
        "days": len(days),
        "interest_rows": len(it), "interest_rows_mismatched": mismatched["interest"],
        "interest_max_rel_diff": worst["interest"],
        "affinity_rows": len(af), "affinity_days_mismatched": mismatched["affinity"],
        "affinity_max_rel_diff": worst["affinity"],
        "velocity_rows": len(tv), "velocity_max_rel_diff": _rel(
            tv["velocity"].to_numpy(), ctx.velocity(tv["topic_id"].to_numpy(), hours)),
        "main_topic_mismatches": int(
            (main.reindex(view.posts["post_id"].to_numpy()).fillna(-1).to_numpy()
             != ctx.main_topic).sum()),
    })  # fmt: skip
    log.info("ranking marts vs in-memory features: %s", report)
    return report
