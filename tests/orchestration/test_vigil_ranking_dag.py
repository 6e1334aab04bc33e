"""vigil_ranking and vigil_trends through real Airflow (``airflow dags test``, SQLite metadata DB)
on a small discovery world (300 users, 4 days), with a stand-in champion in the registry whose
scores mark every 5th post harmful.

Expectations computed apart from the DAG: each sampled user's list is the per-user path
(:func:`vigil.ranking.rank.candidates` -> build -> predict -> rerank) with the champion's harm
looked up by brute force over the scores file; nothing removed, own, duplicated or scored harmful
by the champion is shown, while the other model's scores and the champion's later scores are
ignored; the topic model saw exactly the posts before the day; a re-run writes the same
timelines and no new topic version; the hour's trends are the detector's live trends."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import duckdb
import joblib
import numpy as np
import pandas as pd
import pytest

from sim.discovery import simulate_discovery

DAY = "2026-10-04"
AT = "2026-10-04T01:00:00+00:00"  # a trend in the seed-7 world is live (detected 00:28)
T = int(pd.Timestamp(DAY, tz="UTC").value // 1_000_000)
RANKING_TASKS = ["fit_topics", "train_ranker", "rank_timelines", "validate_timelines",
                 "report_ranking"]
CHAMPION = "stand-in-champion"

AIRFLOW_RUN = r"""
import json, sys, sqlalchemy as sa
from vigil.orchestration import airflow_env
from sim import pipeline
env = airflow_env.build_env()
airflow_env.ensure_ready(env)
out = {}
for dag_id, when in (("vigil_ranking", sys.argv[1]), ("vigil_trends", sys.argv[2])):
    r = pipeline.dags_test(dag_id, when, {}, env=env)
    out[dag_id] = {"ok": r["ok"], "states": {t: v["state"] for t, v in r["tasks"].items()}}
eng = sa.create_engine(airflow_env.sql_alchemy_conn())
with eng.connect() as c:
    out["events"] = sorted(r[0] for r in c.execute(sa.text(
        "select a.uri from asset_event e join asset a on a.id = e.asset_id")))
print(json.dumps(out))
"""


def _stand_in_champion(home, posts: pd.DataFrame) -> pd.DataFrame:
    """models/champion.json and scores/dt=*/scores.parquet as `vigil score` writes them: the
    champion scores every 5th post 0.9 at creation; another model scores every post id = 1 mod 5
    0.99; the champion scores posts id = 2 mod 5 0.99 only after the ranking time."""
    (home / "models").mkdir(parents=True, exist_ok=True)
    (home / "models" / "champion.json").write_text(
        json.dumps({"model_id": CHAMPION, "history": []})
    )
    created = pd.to_datetime(posts["created_ms"], unit="ms", utc=True)
    parts = [
        pd.DataFrame({"post_id": posts["post_id"], "scored_at": created, "model_id": CHAMPION,
                      "probability": np.where(posts["post_id"] % 5 == 0, 0.9, 0.01)}),
        pd.DataFrame({"post_id": posts["post_id"], "scored_at": created, "model_id": "other",
                      "probability": np.where(posts["post_id"] % 5 == 1, 0.99, 0.0)}),
        pd.DataFrame({"post_id": posts["post_id"], "model_id": CHAMPION, "probability": 0.99,
                      "scored_at": pd.Timestamp(T + 3_600_000, unit="ms", tz="UTC")}
                     ).loc[posts["post_id"].to_numpy() % 5 == 2],
    ]  # fmt: skip
    scores = pd.concat(parts, ignore_index=True)
    scores["day"] = scores["scored_at"].dt.date.astype(str)
    for day, frame in scores.groupby("day"):
        out = home / "scores" / f"dt={day}"
        out.mkdir(parents=True, exist_ok=True)
        frame.drop(columns="day").to_parquet(out / "scores.parquet", index=False)
    return scores.drop(columns="day")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("ranking_dag") / "vigil"
    old = {k: os.environ.get(k) for k in ("VIGIL_HOME", "VIGIL_AIRFLOW_DB")}
    os.environ.update(VIGIL_HOME=str(home), VIGIL_AIRFLOW_DB="sqlite")
    try:
        from vigil.lake.ingest import ingest
        from vigil.ranking import data

        raw = home.parent / "raw"
        simulate_discovery(raw, users=300, days=4, seed=7)
        ingest(raw)
        view = data.load()
        scores = _stand_in_champion(home, view.posts)
        proc = subprocess.run([sys.executable, "-c", AIRFLOW_RUN, "2026-10-04T00:15:00+00:00", AT],
                              capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
        assert proc.stdout.strip(), proc.stderr[-3000:]
        run = json.loads(proc.stdout.strip().splitlines()[-1])
        yield {"home": home, "view": view, "scores": scores, "run": run}
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _timelines(home) -> pd.DataFrame:
    return pd.read_parquet(home / "ranking" / "home" / f"dt={DAY}" / "timelines.parquet")


def _champion_harm_brute_force(scores: pd.DataFrame, post_ids: np.ndarray, t: int) -> np.ndarray:
    mine = scores[(scores["model_id"] == CHAMPION)
                  & (scores["scored_at"] <= pd.Timestamp(t, unit="ms", tz="UTC"))]  # fmt: skip
    latest = mine.sort_values("scored_at").groupby("post_id")["probability"].last()
    return latest.reindex(post_ids).to_numpy(dtype=float)


def test_vigil_ranking_dag_ranks_every_user_as_the_per_user_path(world):
    from vigil.ranking import rank, topics
    from vigil.ranking.features import FEATURES, FeatureContext, build

    run, home, view = world["run"], world["home"], world["view"]
    assert run["vigil_ranking"]["ok"], run
    assert list(run["vigil_ranking"]["states"]) == RANKING_TASKS
    assert set(run["vigil_ranking"]["states"].values()) == {"success"}
    assert "vigil://ranking/home" in run["events"]

    tl = _timelines(home)
    meta = json.loads((home / "ranking" / "home" / f"dt={DAY}" / "meta.json").read_text())
    assert tl["user_id"].nunique() == len(view.users) == meta["users"] == 300
    assert len(tl) == meta["slots"] and meta["champion"] == CHAMPION
    # the topic model saw exactly the posts created before the day (counted from the lake here)
    before = duckdb.connect().execute(
        f"select count(distinct post_id) from read_parquet('{home}/lake/events/dt=*/events.parquet')"
        f" where action = 'post' and event_ts < timestamptz '{DAY} 00:00:00+00'"
    ).fetchone()[0]
    model = topics.find({"posts": int(before), "before_ms": T})
    assert model is not None and model.meta["version"] == "v0001"

    # health, from the lake and the scores file, not from the DAG's own columns
    removed = {p for p, at in view.removed_ms.items() if at <= T}
    assert not set(tl["post_id"]) & removed
    assert not (tl["author_id"] == tl["user_id"]).any()
    assert not tl.duplicated(["user_id", "post_id"]).any()
    assert not (tl["post_id"] % 5 == 0).any()  # the champion's 0.9: above the harm cut
    assert (tl["post_id"] % 5 == 1).any() and (tl["post_id"] % 5 == 2).any()  # ignored scores

    # the per-user path with the champion's harm by brute force, for 25 users
    ctx = FeatureContext(view, model.transform(view.posts["text"]))
    ranker = joblib.load(home / "models" / "ranker" / f"dt={DAY}" / "model.joblib")
    camps = rank.follow_camps(ctx)
    pid = view.posts["post_id"].to_numpy()
    users = np.random.default_rng(3).choice(view.users["user_id"].to_numpy(), 25, replace=False)
    shown_without_join = 0
    for u in users.tolist():
        rows = rank.candidates(ctx, u, T)
        X = build(ctx, np.full(len(rows), u), rows, np.full(len(rows), T))
        risk = np.fmax(X[:, FEATURES.index("harm_prob")].astype(float),
                       _champion_harm_brute_force(world["scores"], pid[rows], T))  # fmt: skip
        top = rank.rerank(ctx, rows, rank.predict(ranker, X), risk, camps,
                          rank.user_lean(ctx, camps, u))  # fmt: skip
        got = tl[tl["user_id"] == u].sort_values("rank")["post_id"].tolist()
        assert got == pid[rows[top]].tolist(), u
        plain = rank.rerank(ctx, rows, rank.predict(ranker, X), X[:, FEATURES.index("harm_prob")],
                            camps, rank.user_lean(ctx, camps, u))  # fmt: skip
        shown_without_join += int((pid[rows[plain]] % 5 == 0).sum())
    assert shown_without_join > 0  # the join is what kept the champion's harmful posts out


def test_rerunning_the_day_changes_nothing(world):
    from vigil.ranking import pipeline

    home = world["home"]
    first = _timelines(home)
    meta = (home / "ranking" / "home" / f"dt={DAY}" / "meta.json").read_bytes()
    assert pipeline.fit_topics(DAY)["reused"] is True
    pipeline.train_ranker(DAY)
    pipeline.rank_timelines(DAY, workers=2)
    pd.testing.assert_frame_equal(_timelines(home), first)
    assert (home / "ranking" / "home" / f"dt={DAY}" / "meta.json").read_bytes() == meta
    assert sorted(p.name for p in (home / "models" / "topics").iterdir()) == ["v0001"]


def test_vigil_trends_dag_writes_the_live_trends_and_explore_pages(world):
    from vigil.ranking import pipeline, topics, trends

    run, home, view = world["run"], world["home"], world["view"]
    assert run["vigil_trends"]["ok"], run
    assert run["vigil_trends"]["states"] == {"detect_trends": "success",
                                             "validate_trends": "success"}  # fmt: skip
    assert "vigil://ranking/trends" in run["events"]
    out = home / "ranking" / "trends" / "dt=2026-10-04" / "hour=01"
    got = pd.read_parquet(out / "trends.parquet")
    explore = pd.read_parquet(out / "explore.parquet")
    t = pipeline.hour_ms(AT)
    model = topics.load_latest()
    vec = model.transform(view.posts["text"])
    m = view.posts["created_ms"].to_numpy() < t
    found = trends.detect(view.posts["created_ms"].to_numpy()[m], vec[m],
                          view.posts["region"].to_numpy()[m], view.start_ms)  # fmt: skip
    live = [tr for tr in found if tr.detected_ms <= t and t - tr.last_ms <= 3_600_000]
    assert len(live) >= 1
    assert got["trend_id"].tolist() == [tr.trend_id for tr in live]
    at = pd.Timestamp(t, unit="ms", tz="UTC")
    assert (got["detected_at"] <= at).all() and (got["last_at"] >= at - pd.Timedelta("1h")).all()
    # every user sees every live trend (at most 10), each once
    assert len(explore) == 300 * min(len(live), 10)
    assert not explore.duplicated(["user_id", "trend_id"]).any()
