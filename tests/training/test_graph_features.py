"""The author's graph embedding as post-model features: Feast's point-in-time join (real store).

Hand-made daily snapshots of ``user_graph_embedding`` (stamped at the end of their day); each
value encodes (user, snapshot day), so the row a scoring event received can be read off it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from training import graph_features as gf
from training.config import TrainConfig
from vigil import config
from vigil.errors import UserError
from vigil.graph.features import FEATURES
from vigil.serving import features


def at(day: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(2026, 10, day, hh, mm, ss, tzinfo=UTC)


def value(user: int, stamp_day: int) -> np.ndarray:
    """The embedding of ``user`` in the snapshot stamped at ``stamp_day`` 00:00."""
    return user + stamp_day / 100 + np.arange(len(FEATURES)) / 10_000


# snapshot stamp (the end of the previous day) -> {user: graph_source}
SNAPSHOTS = {
    2: {7: "graphsage", 5: "all_mean"},  # the graph as of the end of 10-01
    3: {7: "graphsage", 5: "graphsage", 8: "friends_mean"},  # user 8 is new on 10-02
}


def write_snapshots() -> None:
    rows = []
    for day, users in SNAPSHOTS.items():
        for user, source in users.items():
            row = {"user_id": user, "event_timestamp": at(day)}
            row |= dict(zip(FEATURES, value(user, day)))
            rows.append(row | {"graph_source": source})
    path = config.paths().features / "user_graph_embedding.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True).dt.as_unit("us")
    frame.to_parquet(path, index=False)


@pytest.fixture
def graph_home(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VIGIL_FEAST_PROJECT", f"vigil_test_{uuid.uuid4().hex[:10]}")
    features.apply()
    yield tmp_path / "home"
    features.store().teardown()


def mean_of(day: int) -> np.ndarray:
    return np.mean([value(u, day) for u in SNAPSHOTS[day]], axis=0)


# (author, scoring time) -> (expected embedding, expected source flag)
CASES = [
    (7, at(1, 12), np.zeros(len(FEATURES)), "none"),  # before the first snapshot
    (7, at(2, 0), value(7, 2), "graphsage"),  # exactly at a snapshot: that snapshot
    (7, at(2, 23, 59, 59), value(7, 2), "graphsage"),  # not the later one (stamped 10-03)
    (7, at(3, 6), value(7, 3), "graphsage"),
    (5, at(2, 12), value(5, 2), "all_mean"),  # the view's own source is kept
    (8, at(2, 12), mean_of(2), "none"),  # new user: not in the 10-02 snapshot -> its mean
    (8, at(3, 6), value(8, 3), "friends_mean"),
    (9, at(3, 6), mean_of(3), "none"),  # never embedded: the latest snapshot's mean
    (7, at(9, 23), value(7, 3), "graphsage"),  # 6 days 23 h old: inside the 7-day ttl
    (7, at(10, 0, 0, 1), np.zeros(len(FEATURES)), "none"),  # 7 days + 1 s: expired
]


def test_join_is_point_in_time_with_fallback_and_source_flags(graph_home):
    write_snapshots()
    examples = pd.DataFrame(
        {
            "example_id": np.arange(len(CASES)) + 100,
            "author_id": [c[0] for c in CASES],
            "scored_at": pd.to_datetime([c[1] for c in CASES], utc=True),
        }
    )
    out = gf.join(examples).set_index("example_id")
    assert list(out.index) == list(examples["example_id"])  # order and rows kept
    for i, (author, t, emb, source) in enumerate(CASES):
        row = out.loc[100 + i]
        got = row[list(gf.EMBEDDING_COLUMNS)].to_numpy(dtype=float)
        assert np.allclose(got, emb), (author, t, got[:2], emb[:2])
        flags = {c: row[c] for c in gf.SOURCE_FLAGS}
        assert flags == {c: float(c == f"graph_src_{source}") for c in gf.SOURCE_FLAGS}


def test_without_published_embeddings_is_one_clear_error(graph_home):
    examples = pd.DataFrame(
        {"example_id": [1], "author_id": [7], "scored_at": pd.to_datetime([at(2, 1)], utc=True)}
    )
    with pytest.raises(UserError, match="vigil graph embed"):
        gf.join(examples)


def test_graph_embeddings_are_off_by_default():
    assert TrainConfig().graph_embeddings is False
