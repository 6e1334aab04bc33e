"""The account features on a hand-made tiny world; every expected value is worked out by hand.

Users: 1 alice1 (created 09-21), 2 bob_2 (created 10-01 12:00), 3 carol, 4 dave, 5 erin.
Day 10-01 (row event_timestamp 10-02 00:00):
- alice1: post 00:00 "Hello World 12 https://a.com/1", post 01:00 "unique words here",
  follow 3 at 02:00, unfollow 3 at 03:00 -> gaps 3600 s x 3: CV 0, one log2 bin (11): entropy 0;
  4 hours once each: hour entropy log2(4) = 2; text "hello world" also posted by bob_2: 1 of 2
  posts duplicated; its link also posted by bob_2: 1 of 1 linked posts; churn (1+1)/1 = 2.
- bob_2: post 13:00:00 "hello, world! https://a.com/1", reply 13:00:10 to carol "@carol nice",
  post 13:00:40 "@carol @alice1 @dave @erin look" -> gaps 10 s, 30 s: CV = 10/20 = 0.5;
  bins floor(log2 11) = 3 and floor(log2 31) = 4: entropy 1 bit; targets carol x3 (reply, two
  mentions), alice1, dave, erin: top-3 (carol, alice1, dave by id) = 5 of 6.
Fingerprints: alice1 d1/n1, bob_2 d1/n2, carol d3/n2 first seen 10-02 05:00 (after the first row).
Day 10-02: alice1 likes at 10:00 (gap 31 h), carol views at 10:00.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pandas as pd
import pytest

from tests.support.accountlake import build_account_features
from vigil.accounts.features import FEATURES


def ts(s: str) -> pd.Timestamp:
    return pd.Timestamp(datetime.fromisoformat(s).replace(tzinfo=UTC))


EVENTS = [
    ("e1", "2026-10-01T00:00:00", 1, "post", 1, None, "Hello World 12 https://a.com/1"),
    ("e2", "2026-10-01T01:00:00", 1, "post", 2, None, "unique words here"),
    ("e3", "2026-10-01T02:00:00", 1, "follow", None, 3, None),
    ("e4", "2026-10-01T03:00:00", 1, "unfollow", None, 3, None),
    ("f1", "2026-10-01T13:00:00", 2, "post", 3, None, "hello, world! https://a.com/1"),
    ("f2", "2026-10-01T13:00:10", 2, "reply", 9, 3, "@carol nice"),
    ("f3", "2026-10-01T13:00:40", 2, "post", 4, None, "@carol @alice1 @dave @erin look"),
    ("g1", "2026-10-02T10:00:00", 1, "like", 3, 2, None),
    ("h1", "2026-10-02T10:00:00", 3, "view", 3, 2, None),
]
USERS = [
    (1, "2026-09-21T00:00:00", "US", "alice1"),
    (2, "2026-10-01T12:00:00", "US", "bob_2"),
    (3, "2026-09-01T00:00:00", "GB", "carol"),
    (4, "2026-09-01T00:00:00", "GB", "dave"),
    (5, "2026-09-01T00:00:00", "GB", "erin"),
]
DEVICES = [
    ("s1", 1, "2026-10-01T00:00:00", "d1", "n1"),
    ("s2", 2, "2026-10-01T12:59:00", "d1", "n2"),
    ("s3", 3, "2026-10-02T05:00:00", "d3", "n2"),
]


def features(home, window_days: int = 7) -> pd.DataFrame:
    """The feature table as the dbt ``accounts`` stage builds it from this world."""
    ev = pd.DataFrame(
        EVENTS,
        columns=["event_id", "event_ts", "user_id", "action", "post_id", "target_user_id", "text"],
    )
    ev["event_ts"] = ev["event_ts"].map(ts)
    ev["country"] = None  # logins' country: this world has no logins in its events
    users = pd.DataFrame(USERS, columns=["user_id", "created_at", "home_country", "handle"])
    users["created_at"] = users["created_at"].map(ts)
    dev = pd.DataFrame(
        DEVICES, columns=["seen_id", "user_id", "seen_at", "device_fp", "network_fp"]
    )
    dev["seen_at"] = dev["seen_at"].map(ts)
    enf = pd.DataFrame(columns=["enforcement_id", "user_id", "action", "reason", "enforced_at"])
    out = build_account_features(home, ev, users, dev, enf, window_days)
    out["day"] = (out["event_timestamp"] - pd.Timedelta(days=1)).dt.strftime("%m-%d")
    return out.set_index(["user_id", "day"])


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("account-features")


@pytest.fixture(scope="module")
def f(home) -> pd.DataFrame:
    return features(home)


def test_columns_are_the_declared_features(f):
    assert list(f.columns[: len(FEATURES) + 1]) == ["event_timestamp", *FEATURES]


def test_rows_exist_from_account_creation(f):
    # bob_2 was created on 10-01 at noon: rows for 10-01 and 10-02; all five users on 10-02
    assert sorted(f.xs("10-02", level="day").index) == [1, 2, 3, 4, 5]
    assert (2, "10-01") in f.index
    assert f.loc[(2, "10-01"), "account_age_days"] == pytest.approx(0.5)
    assert f.loc[(1, "10-01"), "account_age_days"] == pytest.approx(11.0)


def test_scheduled_cadence_of_alice(f):
    row = f.loc[(1, "10-01")]
    assert row["events_7d"] == 4 and row["posts_7d"] == 2 and row["active_hours_7d"] == 4
    assert row["gap_cv_7d"] == pytest.approx(0.0)
    assert row["gap_entropy_7d"] == pytest.approx(0.0)
    assert row["hour_entropy_7d"] == pytest.approx(2.0)
    assert row["follow_churn_7d"] == pytest.approx(2.0)


def test_duplication_shares(f):
    a, b = f.loc[(1, "10-01")], f.loc[(2, "10-01")]
    assert a["dup_text_share_7d"] == pytest.approx(0.5)
    assert a["dup_link_share_7d"] == pytest.approx(1.0)
    assert a["link_share_7d"] == pytest.approx(0.5)
    assert b["dup_text_share_7d"] == pytest.approx(1 / 3)
    assert b["dup_link_share_7d"] == pytest.approx(1.0)
    assert b["link_share_7d"] == pytest.approx(1 / 3)


def test_bursty_gaps_and_targets_of_bob(f):
    b = f.loc[(2, "10-01")]
    assert b["gap_cv_7d"] == pytest.approx(0.5)
    assert b["gap_entropy_7d"] == pytest.approx(1.0)
    assert b["hour_entropy_7d"] == pytest.approx(0.0)
    assert b["targeted_actions_7d"] == 6
    assert b["target_concentration_7d"] == pytest.approx(5 / 6)


def test_fingerprint_sharing_is_point_in_time(f):
    # on 10-01 carol has not been seen with n2 yet; by the end of 10-02 she has
    assert f.loc[(2, "10-01"), ["fp_shared_accounts", "device_shared_accounts"]].tolist() == [1, 1]
    assert f.loc[(2, "10-02"), ["fp_shared_accounts", "device_shared_accounts"]].tolist() == [2, 1]
    assert f.loc[(3, "10-02"), ["fp_shared_accounts", "device_shared_accounts"]].tolist() == [1, 0]
    assert f.loc[(1, "10-01"), "fp_shared_accounts"] == 1


def test_later_events_do_not_leak_into_earlier_rows(f):
    # alice's like on 10-02 is in the 10-02 row only: gaps 3600 x 3 and 31 h
    assert f.loc[(1, "10-01"), "events_7d"] == 4
    gaps = [3600, 3600, 3600, 31 * 3600]
    mean = sum(gaps) / 4
    sd = math.sqrt(sum((g - mean) ** 2 for g in gaps) / 4)
    assert f.loc[(1, "10-02"), "gap_cv_7d"] == pytest.approx(sd / mean)
    assert f.loc[(1, "10-02"), "events_7d"] == 5


def test_window_drops_gaps_that_start_before_it(home):
    f1 = features(home, window_days=1)
    row = f1.loc[(1, "10-02")]
    assert row["events_7d"] == 1 and row["gap_cv_7d"] == 0.0 and row["follow_churn_7d"] == 0.0


def test_the_accounts_stage_refuses_spark_with_one_clear_error():
    from vigil.errors import UserError
    from vigil.warehouse import dbt as warehouse

    with pytest.raises(
        UserError, match="DuckDB SQL: build the accounts stage with --target duckdb"
    ):
        warehouse.build("accounts", target="spark")
