"""The ``user_graph_embedding`` Feast view, defined once (plain Python, no heavy imports).

``vigil graph embed`` writes ``<data root>/features/user_graph_embedding.parquet``: one row per
user and snapshot day, ``event_timestamp`` = the end of that day (the graph holds only events
before it), the embedding in :data:`FEATURES` and how it was made in ``graph_source``.
"""

from __future__ import annotations

VIEW = "user_graph_embedding"
DIM = 16
FEATURES: tuple[str, ...] = tuple(f"graph_emb_{i:02d}" for i in range(DIM))
TTL_DAYS = 7
# How a row's embedding was made, in the order tried: the model on the user's edges, the mean of
# the embeddings of the user's friends, the mean of all users.
SOURCES = ("graphsage", "friends_mean", "all_mean")
