"""`vigil features materialize` copies `user_graph_embedding` online when its source exists."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from tests.graph.test_graph_edges import lake  # noqa: F401 (the hand-made 2-day lake fixture)
from tests.serving.test_features import write_marts
from tests.training.test_graph_features import SNAPSHOTS, value, write_snapshots
from vigil.graph.features import FEATURES, VIEW
from vigil.serving import features


@pytest.fixture
def marts_home(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VIGIL_FEAST_PROJECT", f"vigil_test_{uuid.uuid4().hex[:10]}")
    write_marts()
    features.apply()
    yield tmp_path / "home"
    features.store().teardown()


def _online(user: int) -> dict:
    refs = [f"{VIEW}:{f}" for f in (*FEATURES, "graph_source")]
    got = (
        features.store()
        .get_online_features(
            features=refs, entity_rows=[{"user_id": user}], full_feature_names=True
        )
        .to_dict()
    )
    return {r.split(":")[1]: got[r.replace(":", "__")][0] for r in refs}


def test_materialize_skips_the_graph_view_without_its_source(marts_home):
    out = features.materialize()
    assert VIEW not in out["views"]
    assert _online(7)["graph_source"] is None


def test_materialize_copies_the_latest_graph_snapshot_online(marts_home):
    write_snapshots()
    out = features.materialize()
    rows = sum(len(users) for users in SNAPSHOTS.values())  # 2 + 3 hand-written rows
    assert out["views"][VIEW]["rows"] == rows and out["views"][VIEW]["entities"] == 3
    # online: each user's latest snapshot (stamped 10-03 for all three)
    for user, source in SNAPSHOTS[3].items():
        got = _online(user)
        assert got["graph_source"] == source
        assert np.allclose([got[f] for f in FEATURES], value(user, 3))
    assert _online(9)["graph_source"] is None  # never embedded
    assert features.materialize()["rows"] == 0  # nothing new: nothing copied


def test_daily_run_embeds_only_with_a_trained_model(lake):  # noqa: F811
    """vigil_daily's graph_embed task: skipped without a model; a backfill embeds every lake day."""
    import pandas as pd

    from vigil.cli import main
    from vigil.graph import publish

    home = lake
    assert "skipped" in publish.for_daily_run("2026-10-02", backfill=True)
    assert not (home / "features" / f"{VIEW}.parquet").exists()
    assert main(["graph", "train", "--day", "2026-10-01", "--epochs", "1"]) == 0
    out = publish.for_daily_run("2026-10-02", backfill=True)
    assert out["days"] == 2
    rows = pd.read_parquet(home / "features" / f"{VIEW}.parquet")
    stamps = sorted(str(t.date()) for t in rows["event_timestamp"].unique())
    assert stamps == ["2026-10-02", "2026-10-03"]  # the ends of 10-01 and 10-02
    # a daily (not backfill) run publishes its own day only, replacing it
    assert publish.for_daily_run("2026-10-02")["days"] == 1
    assert len(pd.read_parquet(home / "features" / f"{VIEW}.parquet")) == len(rows)
