"""The no-history account features (vigil.accounts.signup) on a hand-made timeline; every
expected value is worked out by hand, and a brute-force check proves no row sees past its cut.

Users (home country): 1 newbot (US, created 10-01 00:00), 2 oldbot (US, 09-01), 3 newhuman (US,
10-01 00:00), 4 harasser (US, 09-01), 5 latebot (US, 10-02 00:00).
Fingerprints: oldbot d1/n1 09-30 10:00; newbot d1/n9 10-01 01:00; harasser d7/n7 09-30 09:00;
newhuman d8/n7 10-01 02:00; latebot d1/n5 10-02 08:00.
Enforcement: oldbot `bot` 10-01 12:00; harasser `harassment` 10-02 06:00; latebot `bot`
10-02 09:00.
Day 10-01 (row event_timestamp 10-02 00:00):
- oldbot: post 00:30 "buy cheap followers now https://spam.example/x" (no login in the window);
- newbot: login 01:00 from RU, posts 01:01 and 01:04 with oldbot's exact text, follows at 01:02
  and 01:03 -> 4 non-login events per 1 login = 4; follows 2/4 = 0.5, views 0, likes 0;
  logins abroad 1/1; fingerprint reputation: oldbot (d1, shared
  since 10-01 01:00, suspended `bot` at 12:00, both before the cut) -> 1 suspended, 1 for bot;
- newhuman: login 02:00 (US), view 02:01, like 02:02, post 02:03 "wow https://news.example/a/1",
  login 20:00 (US), view 20:01 -> 4 events / 2 logins = 2; views 2/4, likes 1/4, follows 0;
  abroad 0; shares n7 with the harasser, suspended only on 10-02 06:00 (after the cut): 0 suspended;
- harasser: post 03:00 "wow https://news.example/a/1" -> 1 event, no login: 1 per login, abroad 0.
Day 10-02 (row event_timestamp 10-03 00:00): newhuman's row now counts the harasser's suspension
(1 suspended, 0 for bot); newbot's counts latebot too (seen with d1 at 08:00, suspended `bot` at
09:00): 2 suspended, 2 for bot.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from tests.support.accountlake import build_account_features
from vigil.accounts.features import FEATURES
from vigil.accounts.signup import SIGNUP_FEATURES


def ts(s: str) -> pd.Timestamp:
    return pd.Timestamp(datetime.fromisoformat(s).replace(tzinfo=UTC))


SPAM = "buy cheap followers now https://spam.example/x"
EVENTS = [
    ("a1", "2026-10-01T00:30:00", 2, "post", 1, None, SPAM, None),
    ("b1", "2026-10-01T01:00:00", 1, "login", None, None, None, "RU"),
    ("b2", "2026-10-01T01:01:00", 1, "post", 2, None, SPAM, None),
    ("b3", "2026-10-01T01:02:00", 1, "follow", None, 3, None, None),
    ("b4", "2026-10-01T01:03:00", 1, "follow", None, 4, None, None),
    ("b5", "2026-10-01T01:04:00", 1, "post", 3, None, SPAM, None),
    ("c1", "2026-10-01T02:00:00", 3, "login", None, None, None, "US"),
    ("c2", "2026-10-01T02:01:00", 3, "view", 1, 2, None, None),
    ("c3", "2026-10-01T02:02:00", 3, "like", 1, 2, None, None),
    ("c4", "2026-10-01T02:03:00", 3, "post", 4, None, "wow https://news.example/a/1", None),
    ("c5", "2026-10-01T20:00:00", 3, "login", None, None, None, "US"),
    ("c6", "2026-10-01T20:01:00", 3, "view", 4, 3, None, None),
    ("d1", "2026-10-01T03:00:00", 4, "post", 5, None, "wow https://news.example/a/1", None),
    ("e1", "2026-10-02T08:00:00", 5, "login", None, None, None, "RU"),
    ("e2", "2026-10-02T08:01:00", 5, "post", 6, None, SPAM, None),
]
USERS = [
    (1, "2026-10-01T00:00:00", "US", "newbot"),
    (2, "2026-09-01T00:00:00", "US", "oldbot"),
    (3, "2026-10-01T00:00:00", "US", "newhuman"),
    (4, "2026-09-01T00:00:00", "US", "harasser"),
    (5, "2026-10-02T00:00:00", "US", "latebot"),
]
DEVICES = [
    ("s1", 2, "2026-09-30T10:00:00", "d1", "n1"),
    ("s2", 1, "2026-10-01T01:00:00", "d1", "n9"),
    ("s3", 4, "2026-09-30T09:00:00", "d7", "n7"),
    ("s4", 3, "2026-10-01T02:00:00", "d8", "n7"),
    ("s5", 5, "2026-10-02T08:00:00", "d1", "n5"),
]
ENFORCEMENT = [
    ("x1", 2, "suspend", "bot", "2026-10-01T12:00:00"),
    ("x2", 4, "suspend", "harassment", "2026-10-02T06:00:00"),
    ("x3", 5, "suspend", "bot", "2026-10-02T09:00:00"),
]


def features(home, cut: str | None = None) -> pd.DataFrame:
    """The feature table (the dbt ``accounts`` stage); with ``cut``, from only the inputs
    known before it."""
    ev = pd.DataFrame(
        EVENTS,
        columns=[
            "event_id",
            "event_ts",
            "user_id",
            "action",
            "post_id",
            "target_user_id",
            "text",
            "country",
        ],
    )
    ev["event_ts"] = ev["event_ts"].map(ts)
    users = pd.DataFrame(USERS, columns=["user_id", "created_at", "home_country", "handle"])
    users["created_at"] = users["created_at"].map(ts)
    dev = pd.DataFrame(
        DEVICES, columns=["seen_id", "user_id", "seen_at", "device_fp", "network_fp"]
    )
    dev["seen_at"] = dev["seen_at"].map(ts)
    enf = pd.DataFrame(
        ENFORCEMENT, columns=["enforcement_id", "user_id", "action", "reason", "enforced_at"]
    )
    enf["enforced_at"] = enf["enforced_at"].map(ts)
    if cut is not None:
        c = ts(cut)
        ev, dev = ev[ev["event_ts"] < c], dev[dev["seen_at"] < c]
        enf, users = enf[enf["enforced_at"] < c], users[users["created_at"] < c]
    out = build_account_features(home, ev, users, dev, enf)
    out["day"] = (out["event_timestamp"] - pd.Timedelta(days=1)).dt.strftime("%m-%d")
    return out.set_index(["user_id", "day"])


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("account-features")


@pytest.fixture(scope="module")
def f(home) -> pd.DataFrame:
    return features(home)


def test_signup_features_are_declared_once():
    assert set(SIGNUP_FEATURES) <= set(FEATURES)


def test_action_mix_and_session_shape_by_hand(f):
    bot, human = f.loc[(1, "10-01")], f.loc[(3, "10-01")]
    assert bot[["follow_share_7d", "view_share_7d", "like_share_7d"]].tolist() == [0.5, 0, 0]
    assert bot["events_per_login_7d"] == pytest.approx(4.0)
    assert human["follow_share_7d"] == 0
    assert human["view_share_7d"] == pytest.approx(0.5)
    assert human["like_share_7d"] == pytest.approx(0.25)
    assert human["events_per_login_7d"] == pytest.approx(2.0)
    # a post without a login in the window: 1 event per max(0, 1) logins
    assert f.loc[(4, "10-01"), "events_per_login_7d"] == pytest.approx(1.0)


def test_login_geography_by_hand(f):
    assert f.loc[(1, "10-01"), "login_abroad_share_7d"] == pytest.approx(1.0)
    assert f.loc[(3, "10-01"), "login_abroad_share_7d"] == 0
    assert f.loc[(4, "10-01"), "login_abroad_share_7d"] == 0  # no login at all


def test_fingerprint_reputation_by_hand(f):
    cols = ["fp_suspended_accounts", "fp_bot_suspended_accounts"]
    assert f.loc[(1, "10-01"), cols].tolist() == [1, 1]
    assert f.loc[(1, "10-02"), cols].tolist() == [2, 2]
    # the harasser's suspension (10-02 06:00) is after the 10-01 row's cut
    assert f.loc[(3, "10-01"), cols].tolist() == [0, 0]
    assert f.loc[(3, "10-02"), cols].tolist() == [1, 0]
    # latebot first shares d1 at its first login, 10-02 08:00: its own row counts both bots
    assert f.loc[(5, "10-02"), cols].tolist() == [1, 1]


@pytest.mark.parametrize("cut", ["2026-10-02T00:00:00", "2026-10-02T00:00:00.000001"])
def test_rows_before_a_cut_equal_those_from_inputs_truncated_at_it(f, home, cut):
    # brute force: drop every event, sighting, suspension and account from the cut on and
    # recompute; each row whose event_timestamp <= cut must not change, feature by feature
    before = f[f["event_timestamp"] <= ts(cut)]
    truncated = features(home, cut)
    truncated = truncated[truncated["event_timestamp"] <= ts(cut)]
    assert len(before) == 4  # users 1-4 on 10-01
    pd.testing.assert_frame_equal(
        before[list(FEATURES)], truncated.loc[before.index, list(FEATURES)]
    )
