"""The pile-on pair features (issue 26, harassment campaigns) on a hand-made lake: counts by hand.

Target ann (1) is named by bob (2), cat (3, three times), dan (4) and eve (5); ann blocks bob,
reports cat and mutes dan. ``RECENT_HOURS`` is 6 h, the other windows 24 h; only events strictly
before a mention count.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training import mentions

T0 = pd.Timestamp("2026-10-01T00:00:00Z")


def _ev(i, minute, user, action, post=None, target=None, text=None):
    return {
        "event_id": f"e{i}",
        "event_ts": T0 + pd.Timedelta(minutes=minute),
        "user_id": user,
        "action": action,
        "post_id": post,
        "target_user_id": target,
        "text": text,
    }


def _lake(tmp_path, events):
    for d in sorted({e["event_ts"].strftime("%Y-%m-%d") for e in events}):
        day = [e for e in events if e["event_ts"].strftime("%Y-%m-%d") == d]
        (tmp_path / "events" / f"dt={d}").mkdir(parents=True)
        pd.DataFrame(day).to_parquet(
            tmp_path / "events" / f"dt={d}" / "events.parquet", coerce_timestamps="us"
        )
    (tmp_path / "users").mkdir()
    users = pd.DataFrame(
        {
            "user_id": [1, 2, 3, 4, 5],
            "handle": ["ann", "bob", "cat", "dan", "eve"],
            "created_at": T0,
        }
    )
    users.to_parquet(tmp_path / "users" / "users.parquet", coerce_timestamps="us")
    return tmp_path


EVENTS = [
    _ev(1, 0, 2, "post", post=10, text="@ann ugh"),  # m1 bob
    _ev(2, 30, 3, "post", post=11, text="@ann you again"),  # m2 cat
    _ev(3, 40, 1, "block", target=2),  # ann blocks bob (after his mention)
    _ev(4, 45, 1, "report", post=11, target=3),  # ann reports cat (after m2)
    _ev(5, 50, 1, "mute", target=4),  # ann mutes dan (before he ever names her)
    _ev(6, 60, 3, "post", post=12, text="@ann still here?"),  # m3 cat
    _ev(7, 300, 3, "post", post=13, text="@ann ??"),  # m3b cat
    _ev(8, 420, 4, "post", post=14, text="@ann hi"),  # m4 dan, 7 h after m1
    _ev(9, 26 * 60, 5, "post", post=15, text="@ann hey"),  # m5 eve, next day 02:00
]

# post -> (others 24 h, others 6 h, their mentions 6 h, target's negatives of others 24 h,
#          of which others who named ann in the 24 h and were hit after their mention)
EXPECTED = {
    10: (0, 0, 0, 0, 0),  # nobody before
    11: (1, 1, 1, 0, 0),  # bob at 0; ann's block of bob comes at 40, after minute 30
    # bob; negatives of others than cat: bob (block 40), dan (mute 50); bob hit after naming her
    12: (1, 1, 1, 2, 1),
    13: (1, 1, 1, 2, 1),  # at 300 the 6 h window [-60, 300) still holds bob's minute 0
    # at 420: 24 h holds bob, cat; 6 h [60, 420) holds cat at 60 and 300 (1 author, 2 mentions);
    # negatives of others than dan: bob, cat; both hit after naming her (40 >= 0, 45 >= 30)
    14: (2, 1, 2, 2, 2),
    # at 1560: 24 h [120, 1560) holds cat (300) and dan (420); 6 h [1200, 1560) nobody; ann's
    # negatives (40-50) are older than 24 h; cat's report (45) came before his in-window mention
    15: (2, 0, 0, 0, 0),
}


def test_pile_on_features_by_hand(tmp_path):
    df = mentions.build(_lake(tmp_path, EVENTS)).set_index("post_id")
    cols = ["others_mentioning_target_24h", *mentions.CAMPAIGN_FEATURES]
    got = {int(p): tuple(int(v) for v in df.loc[p, cols]) for p in df.index}
    assert got == EXPECTED
    assert mentions.RECENT_HOURS == 6.0
    # the prior negatives of the author himself stay where they were: dan muted at 50, cat reported
    assert df.loc[14, "prior_target_negative"] == 1 and df.loc[12, "prior_target_negative"] == 1
    # cat's report at 45 is ann's reaction to m2 (within 24 h)
    assert df.loc[11, "label_source"] == "target_reaction"


def test_model_reads_the_features_it_was_fitted_on():
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame({f: rng.integers(0, 3, n) for f in mentions.WITH_CAMPAIGN_FEATURES})
    df["is_reply"] = False
    df["text"] = "@x hello"
    df["y"] = df["target_negative_mentioners_24h"] > 0  # only a campaign feature tells
    base = mentions.fit(df, seed=3)
    camp = mentions.fit(df, seed=3, features=mentions.WITH_CAMPAIGN_FEATURES)
    assert mentions.features_of(base) == mentions.PAIR_FEATURES
    assert mentions.features_of(camp) == mentions.WITH_CAMPAIGN_FEATURES
    s = mentions.score(camp, df)
    assert s[df["y"]].min() > s[~df["y"]].max()  # separable on the feature it reads
    # a model saved before the features existed (no attribute) reads the base set
    del base.vigil_features
    assert mentions.features_of(base) == mentions.PAIR_FEATURES
    assert len(mentions.score(base, df)) == n
