"""The ranking feature marts (dbt) on a hand-made lake: values worked out by hand, and equal to
what the ranker computes in memory (vigil.ranking.features.FeatureContext).

The lake: posts 100 (author 10, 10-01 08:00, topics [0.75, 0.25, 0]), 101 (author 11, 10-01
09:30, [0, 0.5, 0.5]: a tie, main topic 1), 102 (author 10, 10-02 10:15, [0, 0, 1]) and 103
(author 11, 10-02 10:40, [1, 0, 0]); user 1 likes 100 at 10-01 12:00, shares 101 at 18:00 and
replies to 102 at 10-02 22:00; user 2 likes 100 at 10-02 06:00; views and a dislike (not
positive engagement) and a view on 10-03 (the lake's last day). Decay exp(-age / 3 days).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lakefiles import event, write_lake

from vigil import config
from vigil.ranking import data, feature_tables
from vigil.ranking.features import FeatureContext
from vigil.warehouse import dbt as warehouse

pytestmark = pytest.mark.dbt

VECTORS = {100: [0.75, 0.25, 0.0], 101: [0.0, 0.5, 0.5], 102: [0.0, 0.0, 1.0], 103: [1.0, 0.0, 0.0]}
AUTHORS = {100: 10, 101: 11, 102: 10, 103: 11}
CREATED = {
    100: "2026-10-01T08:00:00Z",
    101: "2026-10-01T09:30:00Z",
    102: "2026-10-02T10:15:00Z",
    103: "2026-10-02T10:40:00Z",
}
ENGAGEMENT = [  # (ts, user, action, post)
    ("2026-10-01T11:00:00Z", 1, "view", 100),
    ("2026-10-01T12:00:00Z", 1, "like", 100),
    ("2026-10-01T18:00:00Z", 1, "share", 101),
    ("2026-10-01T19:00:00Z", 3, "dislike", 101),
    ("2026-10-02T06:00:00Z", 2, "like", 100),
    ("2026-10-02T22:00:00Z", 1, "reply", 102),
    ("2026-10-03T12:00:00Z", 4, "view", 103),
]


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


def _e(days: float) -> float:
    return math.exp(-days / 3.0)


@pytest.fixture(scope="module")
def marts(tmp_path_factory):
    home = tmp_path_factory.mktemp("ranking-marts")
    mp = pytest.MonkeyPatch()
    mp.setenv("VIGIL_HOME", str(home))
    events = [
        event(CREATED[p], AUTHORS[p], "post", post_id=p, text=f"post {p}") for p in CREATED
    ] + [
        event(
            ts,
            u,
            action,
            post_id=p,
            target_user_id=AUTHORS[p],
            text="ok" if action == "reply" else None,
        )
        for ts, u, action, p in ENGAGEMENT
    ]
    lake = config.paths().lake
    write_lake(lake, events)
    ids = sorted(VECTORS)
    feature_tables.write_post_topics(ids, np.array([VECTORS[p] for p in ids]), "v0001")
    summary = warehouse.build("all")
    summary["home"] = str(home)
    frames = {t: pd.read_parquet(home / "features" / f"{t}.parquet") for t in feature_tables.TABLES}
    view = data.load(lake)
    vec = np.array([VECTORS[int(p)] for p in view.posts["post_id"]], dtype=np.float32)
    ctx = FeatureContext(view, vec)
    mp.undo()
    return summary, frames, ctx


def test_post_topics_mart_main_topic_is_argmax(marts):
    summary, frames, _ = marts
    assert summary["exported"]["post_topics"] == 12
    pt = frames["post_topics"]
    main = pt[pt["is_main_topic"] == 1].set_index("post_id")["topic_id"].to_dict()
    assert main == {100: 0, 101: 1, 102: 2, 103: 0}  # 101's tie goes to the lower topic
    created = pt.groupby("post_id")["event_timestamp"].first()
    assert created[102] == _ts(CREATED[102])
    assert set(pt["topics_version"]) == {"v0001"}


def test_user_topic_interest_by_hand(marts):
    _, frames, _ = marts
    it = frames["user_topic_interest"]
    got = {
        (r.user_id, r.topic_id, r.event_timestamp.date().isoformat()): (
            r.interest,
            r.interest_share,
        )
        for r in it.itertuples()
    }
    # user 1 at 10-02: like of 100 12 h before (0.5 day), share (x2) of 101 6 h before (0.25 day)
    t0, t1, t2 = 0.75 * _e(0.5), 0.25 * _e(0.5) + 2 * 0.5 * _e(0.25), 2 * 0.5 * _e(0.25)
    # at 10-03 one day later, plus the reply (x1.5) to 102 2 h before
    u1_d3 = [t0 * _e(1), t1 * _e(1), t2 * _e(1) + 1.5 * _e(2 / 24)]
    expected = {
        (1, 0, "2026-10-02"): t0, (1, 1, "2026-10-02"): t1, (1, 2, "2026-10-02"): t2,
        (1, 0, "2026-10-03"): u1_d3[0], (1, 1, "2026-10-03"): u1_d3[1], (1, 2, "2026-10-03"): u1_d3[2],
        (1, 0, "2026-10-04"): u1_d3[0] * _e(1), (1, 1, "2026-10-04"): u1_d3[1] * _e(1),
        (1, 2, "2026-10-04"): u1_d3[2] * _e(1),
        # user 2's like of 100 at 10-02 06:00: nothing before 10-03
        (2, 0, "2026-10-03"): 0.75 * _e(0.75), (2, 1, "2026-10-03"): 0.25 * _e(0.75),
        (2, 0, "2026-10-04"): 0.75 * _e(1.75), (2, 1, "2026-10-04"): 0.25 * _e(1.75),
    }  # fmt: skip
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key][0] == pytest.approx(value, rel=1e-12), key
    # shares: of the user's largest topic that day
    assert got[(1, 0, "2026-10-02")][1] == pytest.approx(t0 / t1, rel=1e-12)
    assert got[(1, 1, "2026-10-02")][1] == 1.0
    assert got[(1, 2, "2026-10-03")][1] == 1.0  # the reply made topic 2 the largest
    assert got[(2, 1, "2026-10-04")][1] == pytest.approx(1 / 3, rel=1e-12)


def test_user_author_affinity_by_hand(marts):
    _, frames, _ = marts
    got = {
        (r.user_id, r.author_id, r.event_timestamp.date().isoformat()): r.affinity
        for r in frames["user_author_affinity"].itertuples()
    }
    a10, a11 = _e(0.5), 2 * _e(0.25)
    expected = {
        (1, 10, "2026-10-02"): a10, (1, 11, "2026-10-02"): a11,
        (1, 10, "2026-10-03"): a10 * _e(1) + 1.5 * _e(2 / 24), (1, 11, "2026-10-03"): a11 * _e(1),
        (1, 10, "2026-10-04"): (a10 * _e(1) + 1.5 * _e(2 / 24)) * _e(1),
        (1, 11, "2026-10-04"): a11 * _e(2),
        (2, 10, "2026-10-03"): _e(0.75), (2, 10, "2026-10-04"): _e(1.75),
    }  # fmt: skip
    assert set(got) == set(expected)  # the view and the dislike are not positive engagement
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key


def test_topic_velocity_by_hand(marts):
    _, frames, _ = marts
    tv = frames["topic_velocity"]
    # 3 topics x every hour from 10-01 09:00 (the first post's hour + 1) to 10-04 00:00
    assert len(tv) == 3 * 64
    got = {(r.topic_id, r.event_timestamp): r for r in tv.itertuples()}

    def vel(topic, at):
        r = got[(topic, _ts(at))]
        return r.posts_last_hour, r.posts_prior_24h, r.velocity

    assert vel(0, "2026-10-01T09:00:00Z") == (1, 0, 2.0)  # post 100 in [08:00, 09:00)
    assert vel(0, "2026-10-01T10:00:00Z") == (0, 1, pytest.approx(24 / 25))
    assert vel(1, "2026-10-01T10:00:00Z") == (1, 0, 2.0)  # 101, the tie, counts for topic 1
    assert vel(2, "2026-10-01T10:00:00Z") == (0, 0, 1.0)
    # 10-02 09:00: the prior window [10-01 08:00, 10-02 08:00) holds post 100 (its start)
    assert vel(0, "2026-10-02T09:00:00Z") == (0, 1, pytest.approx(24 / 25))
    assert vel(0, "2026-10-02T10:00:00Z") == (0, 0, 1.0)  # [10-01 09:00, ...) does not
    assert vel(0, "2026-10-02T11:00:00Z") == (1, 0, 2.0)  # post 103 at 10:40


def test_marts_equal_the_rankers_in_memory_features(marts):
    _, frames, ctx = marts
    day_ms = {
        d: int(datetime.fromisoformat(d).replace(tzinfo=UTC).timestamp() * 1000)
        for d in ("2026-10-02", "2026-10-03", "2026-10-04")
    }
    it, af = frames["user_topic_interest"], frames["user_author_affinity"]
    for day, ms in day_ms.items():
        snap = ctx.snapshot(ms)
        rows = it[it["event_timestamp"].dt.date.astype(str) == day]
        dense = np.zeros_like(snap.interest)
        dense[rows["user_id"], rows["topic_id"]] = rows["interest"]
        np.testing.assert_allclose(dense, snap.interest, rtol=1e-12, atol=0)
        rows = af[af["event_timestamp"].dt.date.astype(str) == day]
        keys = rows["user_id"].to_numpy() * ctx.n_users + rows["author_id"].to_numpy()
        order = np.argsort(keys)
        np.testing.assert_array_equal(keys[order], snap.affinity_keys)
        np.testing.assert_allclose(rows["affinity"].to_numpy()[order], snap.affinity, rtol=1e-12)
    tv = frames["topic_velocity"]
    hours = (tv["event_timestamp"].astype("int64") // 1000).to_numpy()  # us -> ms
    np.testing.assert_allclose(
        tv["velocity"].to_numpy(), ctx.velocity(tv["topic_id"].to_numpy(), hours), rtol=1e-12
    )
    main = frames["post_topics"].query("is_main_topic == 1").set_index("post_id")["topic_id"]
    posts = ctx.view.posts["post_id"].to_numpy()
    assert main.reindex(posts).tolist() == ctx.main_topic.tolist()


def test_features_gate_passes_the_marts_and_catches_broken_rows(marts, tmp_path, monkeypatch):
    import shutil

    from vigil.quality.gate import run_gate

    summary, frames, _ = marts
    home = tmp_path / "home"
    shutil.copytree(Path(summary["home"]), home)
    monkeypatch.setenv("VIGIL_HOME", str(home))
    ours = set(feature_tables.TABLES)

    def failures(result):
        return {(r.table, r.check) for r in result.failures if r.table in ours}

    good = run_gate("features", run_date="2026-10-03", raise_on_failure=False)
    assert {t for t in good.tables} >= ours and failures(good) == set()
    tv = frames["topic_velocity"].copy()
    tv.loc[5, "velocity"] = 3.0  # not (last + 1) / (prior / 24 + 1)
    tv.to_parquet(home / "features" / "topic_velocity.parquet", index=False)
    pt = frames["post_topics"].copy()
    pt.loc[pt["post_id"] == 100, "is_main_topic"] = 1  # three main topics
    pt.to_parquet(home / "features" / "post_topics.parquet", index=False)
    it = frames["user_topic_interest"]
    pd.concat([it, it.head(1)]).to_parquet(home / "features" / "user_topic_interest.parquet")
    bad = run_gate("features", run_date="2026-10-03", raise_on_failure=False)
    assert failures(bad) == {
        ("topic_velocity", "velocity_formula"),
        ("post_topics", "one_main_topic"),
        ("post_topics", "main_topic_is_largest"),
        ("user_topic_interest", "key_unique"),
    }


def test_compare_with_memory_reports_agreement_and_a_changed_value(marts, tmp_path, monkeypatch):
    import shutil

    summary, frames, _ = marts
    home = tmp_path / "home"
    shutil.copytree(Path(summary["home"]), home)
    monkeypatch.setenv("VIGIL_HOME", str(home))
    r = feature_tables.compare_with_memory()
    assert (r["interest_rows"], r["affinity_rows"], r["velocity_rows"]) == (13, 8, 192)
    assert r["interest_rows_mismatched"] == r["affinity_days_mismatched"] == 0
    assert r["main_topic_mismatches"] == r["posts_without_topics"] == 0
    assert max(r["interest_max_rel_diff"], r["affinity_max_rel_diff"]) < 1e-12
    assert r["velocity_max_rel_diff"] < 1e-12
    af = frames["user_author_affinity"].copy()
    af.loc[0, "affinity"] *= 1.5  # 50% more than the ranker computes
    af.to_parquet(home / "features" / "user_author_affinity.parquet", index=False)
    assert feature_tables.compare_with_memory()["affinity_max_rel_diff"] == pytest.approx(1 / 3)
