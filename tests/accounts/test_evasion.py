"""Ban-evasion matching on a hand-made world: values and ranking computed by hand."""

import math

import pandas as pd
import pytest

from vigil.accounts import evasion

T0 = pd.Timestamp("2026-10-01T00:00:00Z")


def _event(user, hour, text=None, target=None, action="post", day=0):
    return {
        "user_id": user,
        "action": action,
        "event_ts": T0 + pd.Timedelta(days=day, hours=hour),
        "text": text,
        "post_id": None,
        "target_user_id": target,
    }


@pytest.fixture
def world():
    """Suspended: 1 (suspended day 1) and 2 (day 3). New: 3 (created day 4) and 5 (day 4).

    Account 3 writes like 1 (the same words), acts at 1's hour (03h), and logs in from 1's device.
    It shares a network with 2, a network two more accounts (6, 7) use. It replies to 2's target
    (account 9). Account 5 writes about something else entirely, at hour 15 like 2, on its own
    device and network, and no targets."""
    events = pd.DataFrame(
        [
            _event(1, 3, "purple elephants dance tonight"),
            _event(1, 3, "purple elephants dance tonight", day=1),
            _event(2, 15, "stock market rally", target=9, action="reply"),
            _event(3, 3, "purple elephants dance tonight", day=4),
            _event(3, 3, target=9, action="reply", text="zebra", day=5),
            _event(5, 15, "gardening tomatoes seasons", day=4),
        ]
    )
    users = pd.DataFrame(
        {
            "user_id": [1, 2, 3, 5, 6, 7],
            "created_at": [T0 - pd.Timedelta(days=30)] * 2
            + [T0 + pd.Timedelta(days=4)] * 2
            + [T0 - pd.Timedelta(days=30)] * 2,
        }
    )
    enforcement = pd.DataFrame(
        {
            "user_id": [1, 2],
            "action": ["suspend", "suspend"],
            "reason": ["harassment", "bot"],
            "enforced_at": [T0 + pd.Timedelta(days=1), T0 + pd.Timedelta(days=3)],
        }
    )
    devices = pd.DataFrame(
        {
            "user_id": [1, 3, 2, 3, 6, 7, 5],
            "device_fp": ["dA", "dA", "dB", "dC", "d6", "d7", "d5"],
            "network_fp": ["n1", "n9", "nS", "nS", "nS", "n7", "n5"],
        }
    )
    return events, users, enforcement, devices


def test_new_accounts_and_suspensions(world):
    _, users, enforcement, _ = world
    assert sorted(evasion.new_accounts(users, enforcement)["user_id"]) == [3, 5]
    sus = evasion.suspensions(enforcement)
    assert sorted(sus["user_id"]) == [1, 2]


def test_evidence_values_by_hand(world):
    events, users, enforcement, devices = world
    pairs = evasion.evidence(events, users, enforcement, devices).set_index(
        ["user_id", "candidate_id"]
    )
    a, b = pairs.loc[(3, 1)], pairs.loc[(3, 2)]
    assert a["device_shared"] == 1.0 and b["device_shared"] == 0.0
    # nS is used by accounts 2, 3 and 6: min(1, 2/3); 3 and 1 share no network; dA is used by
    # 1 and 3 only: min(1, 2/2)
    assert b["network_shared"] == pytest.approx(2 / 3) and a["network_shared"] == 0.0
    # 3's texts: "purple elephants dance tonight zebra"; 1's the same four words twice, no zebra:
    # both tf-idf vectors are positive on the four shared words only, so the cosine is < 1 and > 0.
    # 3 and 2 share no word: 0.
    assert 0.5 < a["text_cosine"] < 1.0 and b["text_cosine"] == 0.0
    # 3 and 2 both act on account 9 only: cosine 1; 1 targets nobody
    assert b["target_cosine"] == pytest.approx(1.0) and a["target_cosine"] == 0.0
    # hour profiles over the four active accounts (3h: 1, 3; 15h: 2, 5) minus their mean:
    # 3 and 1 are identical (cosine 1), 3 and 2 opposite (cosine -1, clipped to 0)
    assert a["hour_cosine"] == pytest.approx(1.0) and b["hour_cosine"] == pytest.approx(0.0)
    # created day 4: 3 days after 1's suspension, 1 day after 2's (recency scale 3 days)
    assert a["recency"] == pytest.approx(math.exp(-3 / 3))
    assert b["recency"] == pytest.approx(math.exp(-1 / 3))
    # no home country on these profiles: no country evidence
    assert a["same_country"] == 0.0 and b["same_country"] == 0.0
    cfg = evasion.MatchConfig()
    hand_b = cfg.w_network * 2 / 3 + cfg.w_target + cfg.w_recency * math.exp(-1 / 3)
    assert b["score"] == pytest.approx(hand_b)


def test_ranking_and_match_flag(world):
    events, users, enforcement, devices = world
    m = evasion.match(events, users, enforcement, devices)
    three = m[m["user_id"] == 3].sort_values("rank")
    assert list(three["candidate_id"]) == [1, 2]
    five = m[m["user_id"] == 5].sort_values("rank")
    # 5 shares only the hour profile with 2 and nothing with 1: 2 first, both far below a match
    assert list(five["candidate_id"]) == [2, 1]
    best = evasion.best_matches(m).set_index("user_id")
    assert bool(best.loc[3, "is_match"]) and not bool(best.loc[5, "is_match"])


def test_handle_stems_and_mentions_as_targets(world):
    events, users, enforcement, devices = world
    # 5 takes 2's handle with other digits and @mentions 9 (handle "target_nine")
    users = users.assign(handle=["ann1", "bob_rocket77", "zed3", "bob_rocket1", "x6", "y7"])
    users = pd.concat(
        [users, pd.DataFrame({"user_id": [9], "created_at": [T0], "handle": ["target_nine"]})]
    )
    mention = pd.DataFrame([_event(5, 15, "hey @Target_Nine look", day=5)])
    events = pd.concat([events, mention.astype(events.dtypes.to_dict())], ignore_index=True)
    pairs = evasion.evidence(events, users, enforcement, devices).set_index(
        ["user_id", "candidate_id"]
    )
    assert pairs.loc[(5, 2), "handle_stem"] == 1.0 and pairs.loc[(5, 1), "handle_stem"] == 0.0
    # 5 and 2 now both aim at account 9 only (2 by a reply, 5 by a mention): cosine 1
    assert pairs.loc[(5, 2), "target_cosine"] == pytest.approx(1.0)


def test_cadence_of_scheduled_accounts():
    # 1 (suspended) and 3 (new) act every 30 minutes, 2 (suspended) every 45, 5 (new) at random
    rows = []
    for k in range(12):
        rows.append(_event(1, 0.5 * k, action="like", target=8))
        rows.append(_event(2, 0.75 * k, action="like", target=8))
        rows.append(_event(3, 0.5 * k, action="like", target=8, day=4))
    for h in (0.1, 0.2, 3.0, 3.05, 9.0, 13.7):
        rows.append(_event(5, h, action="like", target=8, day=4))
    users = pd.DataFrame(
        {
            "user_id": [1, 2, 3, 5],
            "created_at": [T0 - pd.Timedelta(days=9)] * 2 + [T0 + pd.Timedelta(days=4)] * 2,
        }
    )
    enforcement = pd.DataFrame({"user_id": [1, 2], "enforced_at": [T0 + pd.Timedelta(days=1)] * 2})
    pairs = evasion.evidence(pd.DataFrame(rows), users, enforcement).set_index(
        ["user_id", "candidate_id"]
    )
    assert pairs.loc[(3, 1), "cadence"] == pytest.approx(1.0)
    assert pairs.loc[(3, 2), "cadence"] == pytest.approx(math.exp(-math.log(1.5) / 0.05))
    assert pairs.loc[(5, 1), "cadence"] == 0.0


def test_suspension_after_creation_is_no_candidate(world):
    events, users, enforcement, devices = world
    late = enforcement.assign(enforced_at=[T0 + pd.Timedelta(days=1), T0 + pd.Timedelta(days=10)])
    m = evasion.match(events, users, late, devices)
    assert set(m.loc[m["user_id"] == 3, "candidate_id"]) == {1}


def test_same_country_by_hand(world):
    events, users, enforcement, devices = world
    # 3 and 1 are from BR, 5 from US like 2; 6 and 7 (no candidates) from BR; 2 has no country
    users = users.assign(home_country=["BR", None, "BR", "US", "BR", "BR"])
    pairs = evasion.evidence(events, users, enforcement, devices).set_index(
        ["user_id", "candidate_id"]
    )
    assert pairs.loc[(3, 1), "same_country"] == 1.0
    assert pairs.loc[(3, 2), "same_country"] == 0.0  # unknown is no match
    assert pairs.loc[(5, 1), "same_country"] == 0.0 and pairs.loc[(5, 2), "same_country"] == 0.0
    cfg = evasion.MatchConfig()
    # 5 and 1 share no evidence but recency (5 was created 3 days after 1's suspension)
    assert pairs.loc[(5, 1), "score"] == pytest.approx(cfg.w_recency * math.exp(-3 / 3))
    # the country adds its weight to 3 -> 1 and nothing else changes
    before = evasion.evidence(events, users.drop(columns="home_country"), enforcement, devices)
    before = before.set_index(["user_id", "candidate_id"])
    assert pairs.loc[(3, 1), "score"] - before.loc[(3, 1), "score"] == pytest.approx(cfg.w_country)
