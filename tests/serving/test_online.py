"""vigil.serving.online: the direct reader returns exactly what Feast's get_online_features returns.

The reference is Feast itself (``FeatureStore.get_online_features`` with the feature service) on
the hand-made marts of test_features.py, materialized into a real SQLite file and a real Redis.
"""

from __future__ import annotations

from test_features import feast_home, online_store  # noqa: F401  (fixtures)

from vigil.serving import features
from vigil.serving.online import OnlineReader


def _feast_row(post_id: int, user_id: int) -> dict:
    fs = features.store()
    service = fs.get_feature_service("moderation_v1")
    got = fs.get_online_features(
        features=service,
        entity_rows=[{"post_id": post_id, "user_id": user_id}],
        full_feature_names=True,
    ).to_dict()
    return {name: values[0] for name, values in got.items()}


def test_reader_equals_feast_including_missing_entities(online_store, feast_home):  # noqa: F811
    features.materialize()
    reader = OnlineReader("moderation_v1")
    assert reader.store_kind == online_store
    # post 1 by 7, post 3 by 8; 999 exists nowhere; (1, 999): a known post, an unknown user.
    for post_id, user_id in [(1, 7), (3, 8), (999, 998), (1, 999), (3, 7)]:
        mine = reader.read(post_id=post_id, user_id=user_id)
        assert mine == _feast_row(post_id, user_id), (post_id, user_id)
        assert sorted(mine) == sorted(_feast_row(post_id, user_id))
    # Hand-checked values (test_features.py's events): post 1's last snapshot (13:00) has 6 views
    # and 2 reports; its author 7's latest user_activity row (day 3) has uam_30d 30.
    by_post = reader.read(post_id=1)
    assert by_post["user_id"] == 7
    assert by_post["post_behavior__views"] == 6
    assert by_post["post_behavior__reports"] == 2
    assert by_post["user_activity__uam_30d"] == 30
    assert by_post == _feast_row(1, 7)
    missing = reader.read(post_id=999)
    assert missing["user_id"] is None
    assert all(missing[c] is None for c in reader.columns)
    assert len(reader.columns) == 33


def test_reader_sees_values_pushed_after_it_was_built(online_store, feast_home):  # noqa: F811
    import pandas as pd

    features.materialize()
    reader = OnlineReader("moderation_v1")
    assert reader.read(user_id=8)["user_activity__uam_30d"] == 4
    features.push(
        "user_activity",
        pd.DataFrame(
            {
                "user_id": [8],
                "event_timestamp": [pd.Timestamp("2026-10-04", tz="UTC")],
                "uam_30d": [77],
                "active_days_30d": [3],
                "uam_1d": [5],
            }
        ),
    )
    assert reader.read(user_id=8)["user_activity__uam_30d"] == 77
    assert reader.read(post_id=3, user_id=8) == _feast_row(3, 8)
