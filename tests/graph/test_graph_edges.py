"""The user graph read from a hand-made lake: follow state, interactions, mentions, point in time."""

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from vigil.errors import UserError
from vigil.graph import edges


def _event(ts, user, action, target=None, text=None):
    return {
        "event_id": f"{ts}-{user}-{action}",
        "event_ts": pd.Timestamp(ts, tz="UTC"),
        "user_id": user,
        "action": action,
        "post_id": 100 if action in ("reply", "like", "view", "block") else None,
        "target_user_id": target,
        "text": text,
        "country": "US",
    }


DAY1 = [
    _event("2026-10-01 01:00", 1, "follow", 2),
    _event("2026-10-01 02:00", 1, "unfollow", 2),  # 1 -> 2 no longer holds
    _event("2026-10-01 03:00", 2, "follow", 3),
    _event("2026-10-01 04:00", 3, "follow", 2),  # 2-3: two follows, 2
    _event("2026-10-01 05:00", 1, "reply", 3, "@bob you again?"),  # 1-3 reply 1, 1-2 mention 1
    _event("2026-10-01 06:00", 1, "like", 3),  # 1-3 + 0.5
    _event("2026-10-01 07:00", 2, "view", 1),  # no proximity
    _event("2026-10-01 08:00", 2, "block", 1),  # a feature of 1, no edge
]
DAY2 = [_event("2026-10-02 09:00", 1, "follow", 2)]


@pytest.fixture
def lake(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    for day, rows in (("2026-10-01", DAY1), ("2026-10-02", DAY2)):
        folder = tmp_path / "lake" / "events" / f"dt={day}"
        folder.mkdir(parents=True)
        frame = pd.DataFrame(rows).astype({"post_id": "Int64", "target_user_id": "Int64"})
        frame.to_parquet(folder / "events.parquet", index=False)
    users = pd.DataFrame(
        {
            "user_id": [1, 2, 3, 4, 5],
            "created_at": pd.to_datetime(
                ["2026-01-01", "2026-09-01", "2026-09-25", "2026-10-05", "2026-09-30"], utc=True
            ),
            "home_country": ["US"] * 5,
            "handle": ["ann", "bob", "cat", "dan", "eve"],
        }
    )
    (tmp_path / "lake" / "users").mkdir(parents=True)
    users.to_parquet(tmp_path / "lake" / "users" / "users.parquet", index=False)
    return tmp_path


def _weights(ug) -> dict:
    g, ids = ug.graph, ug.user_ids
    out = {}
    for i in range(g.num_nodes):
        for k in range(g.indptr[i], g.indptr[i + 1]):
            a, b = int(ids[i]), int(ids[g.indices[k]])
            if a < b:
                out[(a, b)] = float(g.weights[k])
    return out


def test_graph_as_of_the_first_day_by_hand(lake):
    ug = edges.load(date(2026, 10, 1))
    assert ug.user_ids.tolist() == [1, 2, 3, 5]  # 4 joins on 2026-10-05
    got = _weights(ug)
    want = {(1, 2): math.log1p(1.0), (1, 3): math.log1p(1.5), (2, 3): math.log1p(2.0)}
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value)
    assert ug.graph.degree().tolist() == [2, 2, 2, 0]  # eve: no edge
    f = dict(zip(edges.FEATURE_NAMES, ug.features[0]))  # ann
    assert f["replies"] == pytest.approx(math.log1p(1))
    assert f["mentions_made"] == pytest.approx(math.log1p(1))
    assert f["blocks_received"] == pytest.approx(math.log1p(1))
    assert f["account_age_days"] == pytest.approx(math.log1p(274.0))  # 2026-01-01 to 10-02


def test_a_later_day_sees_the_later_follow(lake):
    got = _weights(edges.load(date(2026, 10, 2)))
    assert got[(1, 2)] == pytest.approx(math.log1p(2.0))  # mention + the new follow


def test_no_lake_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    with pytest.raises(UserError, match="ingest first"):
        edges.load(date(2026, 10, 1))


def test_features_have_one_row_per_user(lake):
    ug = edges.load(date(2026, 10, 1))
    assert ug.features.shape == (4, len(edges.FEATURE_NAMES))
    assert np.isfinite(ug.features).all()


def test_train_then_publish_two_daily_snapshots(lake):
    from vigil.cli import main
    from vigil.graph.features import FEATURES, SOURCES, VIEW

    assert main(["graph", "train", "--day", "2026-10-01", "--epochs", "1"]) == 0
    assert main(["graph", "embed", "--day", "2026-10-02", "--days", "2"]) == 0
    rows = pd.read_parquet(lake / "features" / f"{VIEW}.parquet")
    assert list(rows.columns) == ["user_id", "event_timestamp", *FEATURES, "graph_source"]
    per_day = rows.groupby("event_timestamp")["user_id"].apply(list).to_dict()
    assert [str(t.date()) for t in per_day] == ["2026-10-02", "2026-10-03"]  # ends of the days
    assert all(users == [1, 2, 3, 5] for users in per_day.values())
    assert set(rows["graph_source"]) <= set(SOURCES)
    eve = rows[rows["user_id"] == 5]
    assert (eve["graph_source"] == "all_mean").all()  # no edge: the mean of all users
    norms = np.linalg.norm(rows.loc[rows["user_id"] != 5, list(FEATURES)].to_numpy(), axis=1)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)
    # publishing a day again replaces it
    assert main(["graph", "embed", "--day", "2026-10-02"]) == 0
    assert len(pd.read_parquet(lake / "features" / f"{VIEW}.parquet")) == len(rows)
