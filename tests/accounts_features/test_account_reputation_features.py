"""Content reputation (vigil.accounts.reputation) on a hand-made timeline; every expected value
is worked out by hand below, and a brute-force check proves no row sees past its cut.

Users: 1 oldbot (09-01), 2 newbot (10-01 00:00), 3 harasser (09-01), 4 newhuman (10-01 00:00),
5 otherbot (09-01). Enforcement: oldbot `bot` 10-01 12:00; harasser `harassment` 10-01 05:00
(not spam: never evidence); otherbot `spam` 10-02 06:00.
Posts ("earn cash now" is the normalised text of the first three):
- oldbot 10-01 00:30 "Earn cash NOW!! https://spam.example/a"
- otherbot 10-01 01:00 "earn cash now https://spam.example/a"
- harasser 10-01 01:30 "wow https://news.example/1"
- newbot 10-01 13:00 "earn cash now https://spam.example/a", 14:00 "hello there
  https://spam.example/c", 15:00 "earn cash now" (no link)
- newhuman 10-01 16:00 "wow https://news.example/1", 10-02 10:00 "earn cash 2 now
  https://news.example/2"
Row 10-01 (cut 10-02 00:00): only oldbot is suspended for spam before the cut.
- newbot: texts bad 2/3 (oldbot's text); links bad 1/2 (/a); spam.example's other posters
  {oldbot, otherbot}, 1 suspended -> 1/2 for both link posts.
- newhuman: "wow" came from the harasser (harassment is no evidence) -> 0, 0; news.example's
  other poster, the harasser, is not a spam suspension -> 0.
- oldbot: its own post is not its own evidence, otherbot's suspension is after the cut -> 0, 0;
  spam.example's other posters {otherbot, newbot}: none suspended -> 0.
Row 10-02 (cut 10-03 00:00): otherbot's suspension counts too.
- newbot: 2/3, 1/2; spam.example 2/2 = 1.
- newhuman: "earn cash now" is bad now -> 1/2; its links never came from a spam account -> 0;
  news.example -> 0.
- oldbot: otherbot posted the same text and link and is suspended now -> 1, 1; spam.example
  {otherbot, newbot}: 1 of 2.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from tests.support.accountlake import build_account_features
from vigil.accounts.features import FEATURES
from vigil.accounts.reputation import REPUTATION_FEATURES


def ts(s: str) -> pd.Timestamp:
    return pd.Timestamp(datetime.fromisoformat(s).replace(tzinfo=UTC))


EVENTS = [
    ("a1", "2026-10-01T00:30:00", 1, "post", 1, "Earn cash NOW!! https://spam.example/a"),
    ("e1", "2026-10-01T01:00:00", 5, "post", 2, "earn cash now https://spam.example/a"),
    ("c1", "2026-10-01T01:30:00", 3, "post", 3, "wow https://news.example/1"),
    ("b1", "2026-10-01T13:00:00", 2, "post", 4, "earn cash now https://spam.example/a"),
    ("b2", "2026-10-01T14:00:00", 2, "post", 5, "hello there https://spam.example/c"),
    ("b3", "2026-10-01T15:00:00", 2, "post", 6, "earn cash now"),
    ("d1", "2026-10-01T16:00:00", 4, "post", 7, "wow https://news.example/1"),
    ("d2", "2026-10-02T10:00:00", 4, "post", 8, "earn cash 2 now https://news.example/2"),
]
USERS = [
    (1, "2026-09-01T00:00:00", "US", "oldbot"),
    (2, "2026-10-01T00:00:00", "US", "newbot"),
    (3, "2026-09-01T00:00:00", "US", "harasser"),
    (4, "2026-10-01T00:00:00", "US", "newhuman"),
    (5, "2026-09-01T00:00:00", "US", "otherbot"),
]
ENFORCEMENT = [
    ("x1", 1, "suspend", "bot", "2026-10-01T12:00:00"),
    ("x2", 3, "suspend", "harassment", "2026-10-01T05:00:00"),
    ("x3", 5, "suspend", "spam", "2026-10-02T06:00:00"),
]
COLS = ["text_bad_share_7d", "link_bad_share_7d", "domain_bad_rate_7d"]


def features(home, cut: str | None = None) -> pd.DataFrame:
    """The feature table (the dbt ``accounts`` stage); with ``cut``, from only the inputs
    known before it."""
    ev = pd.DataFrame(
        EVENTS, columns=["event_id", "event_ts", "user_id", "action", "post_id", "text"]
    )
    ev["event_ts"] = ev["event_ts"].map(ts)
    ev["target_user_id"] = pd.array([None] * len(ev), dtype="Int64")
    ev["country"] = None
    users = pd.DataFrame(USERS, columns=["user_id", "created_at", "home_country", "handle"])
    users["created_at"] = users["created_at"].map(ts)
    dev = pd.DataFrame(
        {
            "seen_id": ["s1"],
            "user_id": [1],
            "seen_at": [ts("2026-09-30T00:00:00")],
            "device_fp": ["d1"],
            "network_fp": ["n1"],
        }
    )
    enf = pd.DataFrame(
        ENFORCEMENT, columns=["enforcement_id", "user_id", "action", "reason", "enforced_at"]
    )
    enf["enforced_at"] = enf["enforced_at"].map(ts)
    if cut is not None:
        c = ts(cut)
        ev, enf = ev[ev["event_ts"] < c], enf[enf["enforced_at"] < c]
        users = users[users["created_at"] < c]
    out = build_account_features(home, ev, users, dev, enf)
    out["day"] = (out["event_timestamp"] - pd.Timedelta(days=1)).dt.strftime("%m-%d")
    return out.set_index(["user_id", "day"])


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("account-features")


@pytest.fixture(scope="module")
def f(home) -> pd.DataFrame:
    return features(home)


def test_reputation_features_are_declared_once():
    assert set(REPUTATION_FEATURES) == set(COLS) and set(COLS) <= set(FEATURES)


@pytest.mark.parametrize(
    ("user", "day", "expected"),
    [
        (2, "10-01", [2 / 3, 1 / 2, 1 / 2]),
        (4, "10-01", [0, 0, 0]),
        (1, "10-01", [0, 0, 0]),
        (2, "10-02", [2 / 3, 1 / 2, 1]),
        (4, "10-02", [1 / 2, 0, 0]),
        (1, "10-02", [1, 1, 1 / 2]),
    ],
)
def test_content_reputation_by_hand(f, user, day, expected):
    assert f.loc[(user, day), COLS].tolist() == pytest.approx(expected)


def test_an_account_without_posts_has_zero_reputation(f):
    # the harasser posts only on 10-01; its 10-02 row still holds that post (7-day window),
    # and 'wow' and news.example were never posted by a spam account
    assert f.loc[(3, "10-02"), COLS].tolist() == [0, 0, 0]


@pytest.mark.parametrize("cut", ["2026-10-02T00:00:00", "2026-10-02T07:00:00"])
def test_rows_before_a_cut_equal_those_from_inputs_truncated_at_it(f, home, cut):
    # brute force: drop every post, suspension and account from the cut on and recompute;
    # each row whose event_timestamp <= cut must not change
    before = f[f["event_timestamp"] <= ts(cut)]
    truncated = features(home, cut)
    truncated = truncated.loc[before.index]
    assert len(before) == 5  # users 1-5 on 10-01
    pd.testing.assert_frame_equal(before[list(FEATURES)], truncated[list(FEATURES)])
