"""Harmful views prevented, replayed on a hand-made timeline."""

import pandas as pd
import pytest

from training.evaluate import replay, replay_summary, views_at

T = pd.Timestamp("2026-10-01", tz="UTC")


def h(x):
    return T + pd.Timedelta(hours=x)


def timeline():
    # post 1 (harmful): 10 views by 01:00, 30 by 02:00, 100 by 03:00 (final)
    # post 2 (benign): 50 by 01:00 (final); post 3 (harmful): 40 by 02:00 (final)
    return pd.DataFrame(
        {
            "post_id": [1, 1, 1, 2, 3],
            "event_timestamp": [h(1), h(2), h(3), h(1), h(2)],
            "views": [10.0, 30.0, 100.0, 50.0, 40.0],
        }
    )


def examples():
    return pd.DataFrame(
        {
            "post_id": [1, 1, 1, 2, 3, 3],
            "scored_at": [h(0.5), h(1.5), h(6.5), h(0.5), h(0.5), h(1.5)],
            "score": [0.2, 0.9, 0.95, 0.85, 0.1, 0.3],
            "is_harmful": [True, True, True, False, True, True],
            "sampling_weight": [1.0, 1.0, 1.0, 1.0, 2.0, 2.0],
        }
    )


def test_views_at_takes_latest_snapshot_before():
    got = views_at(timeline(), [1, 1, 1, 2], [h(0.5), h(1.5), h(2), h(9)])
    assert list(got) == [0.0, 10.0, 30.0, 50.0]


def test_replay_hand_made():
    posts = replay(examples(), timeline(), "score", threshold=0.8)
    # post 1 removed at 01:30 with 10 views: 100 - 10 = 90 prevented; post 2 removed at 00:30
    # with 0 views (benign, wrongly removed); post 3 never reaches 0.8.
    assert posts.loc[1, "removed_at"] == h(1.5)
    assert posts.loc[1, "views_prevented"] == 90.0
    assert posts.loc[2, "views_prevented"] == 50.0
    assert not posts.loc[3, "removed"]
    s = replay_summary(posts)
    # harmful views: post 1 (weight 1) 100 + post 3 (weight 2) 2 x 40 = 180; prevented 90
    assert s["harmful_views_total"] == 180.0
    assert s["harmful_views_prevented_share"] == pytest.approx(90 / 180)
    assert s["benign_posts_removed"] == 1
    assert s["removal_precision"] == pytest.approx(0.5)
    assert s["harmful_posts_removed_share"] == pytest.approx(1 / 3)
