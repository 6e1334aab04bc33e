"""A re-score request is stamped when the stream could have known of its trigger (issue 22).

A late event (its event time before the latest one applied) counted in arrival order used to
stamp its request with its own, earlier time: a view that happened 23 h ago and arrives now would
"trigger" a re-score 23 h ago, which a grader reading the stamp credits to the service. The
expected stamps below are worked out by hand from the event lists.
"""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace

from vigil.stream.rescore import RescoreFeed

H = 3_600_000
T0 = 1_790_000_000_000  # any epoch ms


def _feed(watermark_ms: int = -(1 << 62)) -> RescoreFeed:
    feed = RescoreFeed(sqlite3.connect(":memory:"), creation=True)
    feed.attach(SimpleNamespace(on_applied=None, on_checkpoint=None, watermark_ms=watermark_ms))
    return feed


def _view(i: int, ts: int, post: int = 1) -> tuple:
    return (f"v{post}-{i}", ts, 100 + i, "view", None, "US", post, None)


def test_on_time_events_keep_their_own_time():
    feed = _feed()
    feed.observe([("p1", T0, 1, "post", None, "US", 1, "hi")])
    feed.observe([_view(i, T0 + (i + 1) * 60_000) for i in range(16)])
    # creation at T0; the 16th view at T0 + 16 min
    assert feed.new == [(1, T0, "creation"), (1, T0 + 16 * 60_000, "views_16")]


def test_a_late_event_is_stamped_with_the_latest_time_applied_before_it():
    feed = _feed()
    views = [_view(i, T0 + i * 60_000) for i in range(15)]  # 15 views, T0 .. T0 + 14 min
    other = ("p2", T0 + 24 * H, 2, "post", None, "US", 2, "hi")  # a day later, another post
    late = _view(15, T0 + 20 * 60_000)  # the 16th view happened at T0 + 20 min, arrives now
    feed.observe([*views, other])
    feed.observe([late])
    # the 16th view is known at T0 + 24 h (the latest time applied), not T0 + 20 min
    assert feed.new[-1] == (1, T0 + 24 * H, "views_16")
    assert feed.new[-2] == (2, T0 + 24 * H, "creation")


def test_after_a_restart_the_restored_watermark_is_the_known_time():
    feed = _feed(watermark_ms=T0 + 5 * H)
    feed.observe([("p9", T0 + H, 9, "post", None, "US", 9, "hi")])  # late: created 4 h earlier
    assert feed.new == [(9, T0 + 5 * H, "creation")]
