"""``lake/post_topics/post_topics.parquet``: the topic step's output, a dbt source.

The topic step (:func:`vigil.ranking.pipeline.fit_topics`, through
:func:`vigil.ranking.feature_tables.write_post_topics`) writes every lake post's topic weights
here, one row per (post, topic); the marts stage builds the ranking feature marts from it. Worlds
without a topic model get an empty file (:func:`ensure_lake_file`) so the source always reads.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from vigil import config

SCHEMA = pa.schema(
    [
        ("post_id", pa.int64()),
        ("topic_id", pa.int32()),
        ("topic_weight", pa.float32()),
        ("topics_version", pa.string()),
    ]
)


def path(paths: config.Paths | None = None) -> Path:
    return (paths or config.paths()).lake / "post_topics" / "post_topics.parquet"


def ensure_lake_file(paths: config.Paths) -> None:
    """An empty file when the topic step never ran: dbt's source needs one."""
    dest = path(paths)
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(SCHEMA.empty_table(), dest)
