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
