"""Coordination clusters on a hand-made event set, and the pairing against a brute force."""

import itertools
import random

import pandas as pd

from vigil.accounts import clusters

T0 = pd.Timestamp("2026-10-01T08:00:00Z")


def _post(user, minutes, text):
    return {
        "user_id": user,
        "action": "post",
        "event_ts": T0 + pd.Timedelta(minutes=minutes),
        "text": text,
        "post_id": None,
        "target_user_id": None,
    }


def hand_made_events() -> pd.DataFrame:
    rows = []
    # campaign A (accounts 1, 2, 3): the same text and link, three waves two hours apart,
    # each member within 2 minutes of the wave's start
    for wave, start in enumerate([0, 120, 240]):
        for j, user in enumerate([1, 2, 3]):
            rows.append(
                _post(user, start + j, f"Vote yes on measure {wave} https://ex.com/m{wave}")
            )
    # campaign B (accounts 4-7): paraphrases of one long sentence, no shared link, four waves
    base = "the harbour bridge closure was planned by the council to hide the budget gap"
    for wave, start in enumerate([30, 150, 300, 420]):
        for j, user in enumerate([4, 5, 6, 7]):
            text = f"{'wow ' * (j % 2)}{base} {wave} {'really' if j == 2 else ''}!!"
            rows.append(_post(user, start + 3 * j, text))
    # friends (8, 9, 10) share one link within minutes, once
    for j, user in enumerate([8, 9, 10]):
        rows.append(_post(user, 60 + j, f"lol look at this https://news.example/story-1 #{j}"))
    # two news accounts (11, 12) post the same headline twice: below the three co-posts needed
    for start in (200, 500):
        for user in (11, 12):
            rows.append(_post(user, start, "Breaking: storm warning for the coast"))
    # campaign A's text, once, by an outsider (13) a day later: outside every window
    rows.append(_post(13, 24 * 60, "Vote yes on measure 0 https://ex.com/m0"))
    return pd.DataFrame(rows)


def test_exact_clusters_on_hand_made_events():
    found = clusters.find_clusters(hand_made_events())
    groups = {frozenset(g["user_id"]) for _, g in found.groupby("cluster_id")}
    assert groups == {frozenset({1, 2, 3}), frozenset({4, 5, 6, 7})}
    biggest = found[found["cluster_id"] == 1]
    assert set(biggest["user_id"]) == {4, 5, 6, 7} and set(biggest["size"]) == {4}
    a = found[found["cluster_id"] == 2].iloc[0]
    # evidence: three links and three texts (each 5 words: too short for paraphrase bands)
    assert a["shared_items"] == 6
    six = {f"link:https://ex.com/m{w}" for w in range(3)} | {
        f"text:vote yes on measure {w}" for w in range(3)
    }
    assert set(a["top_items"].split(" | ")) <= six and len(a["top_items"].split(" | ")) == 5
    # evidence: campaign A's co-posts span its first wave's first post to its last wave's last
    assert a["first_post_at"] == T0
    assert a["last_post_at"] == T0 + pd.Timedelta(minutes=242)


def test_louvain_gives_the_same_clusters_here():
    cfg = clusters.ClusterConfig(method="louvain")
    found = clusters.find_clusters(hand_made_events(), cfg)
    groups = {frozenset(g["user_id"]) for _, g in found.groupby("cluster_id")}
    assert groups == {frozenset({1, 2, 3}), frozenset({4, 5, 6, 7})}


def test_normalise():
    assert clusters.normalise("Hello,  WORLD! https://x.y/z ok") == "hello world ok"


def _brute_force_pairs(keys: pd.DataFrame, window_ns: int) -> set:
    out = set()
    rows = keys.to_dict("records")
    for a, b in itertools.permutations(rows, 2):
        same_key = a["key"] == b["key"] and a["user_id"] != b["user_id"]
        if same_key and abs(a["ts"] - b["ts"]) <= window_ns:
            out.add((a["post"], a["user_id"], b["user_id"], a["key"]))
    return out


def test_co_posts_match_a_brute_force():
    rnd = random.Random(5)
    rows = [
        {
            "user_id": rnd.randint(1, 6),
            "ts": rnd.randint(0, 3_600) * 1_000_000_000,
            "post": i,
            "key": rnd.randint(1, 4),
        }
        for i in range(120)
    ]
    keys = pd.DataFrame(rows)
    cfg = clusters.ClusterConfig(
        window_minutes=5, max_key_accounts_share=1.0, max_key_hours=10**6, min_burst_accounts=2
    )
    co = clusters.co_posts(keys, cfg)
    got = set(zip(co["post"], co["user_id"], co["other_user_id"], co["key"]))
    assert got == _brute_force_pairs(keys, 5 * 60 * 1_000_000_000)
    assert len(got) > 50


def test_an_account_in_one_wave_with_four_members_joins_their_cluster():
    events = hand_made_events()
    base = "the harbour bridge closure was planned by the council to hide the budget gap"
    # account 15 posts campaign B's sentence in its second wave only (one co-post: no edge),
    # meeting all four members; account 16 posts it once a day later and meets nobody
    extra = pd.DataFrame([_post(15, 151, f"{base} 1 !!"), _post(16, 24 * 60 + 150, f"{base} 1 !!")])
    found = clusters.find_clusters(pd.concat([events, extra], ignore_index=True))
    groups = {frozenset(g["user_id"]) for _, g in found.groupby("cluster_id")}
    assert groups == {frozenset({1, 2, 3}), frozenset({4, 5, 6, 7, 15})}
