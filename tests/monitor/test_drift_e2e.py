"""Drift end to end on a small simulated world (real simulator, lake, dbt, Feast, models, DAG tasks).

World: USERS x DAYS from 2026-10-01 (seed 7), drift from DRIFT_DAY (abusers switch vocabulary, a
spam campaign starts). The champion is trained on the pre-drift days and scores the days before
the drift (its first days in service). Then the daily pipeline runs day by day from the drift day:
ingest the day, dbt build, score with the champion, and the ``vigil_monitor`` DAG's own task
callables (``check_drift``, then ``emit_drift_alert`` with a real Airflow ``OutletEventAccessors``:
it either raises AirflowSkipException, no event, or sets the drift-alert Asset event's extra).

The retrain is the ``vigil_train`` DAG's task callable run as an Asset-triggered run: its
``triggering_asset_events`` is a real ``TriggeringAssetEventsAccessor`` holding the drift-alert
event the monitor emitted on the last day (an earlier alert day would start a retrain too in
Airflow; to save time the test runs only the last one, which has the most post-drift labels). The
retrain settings come from the data root's ``models/promotion.json`` (an Asset-triggered run has no
params).

The retrain compares the models on the holdout's reviewed sample (``training.holdout``): the
review requests are answered by the simulated moderators (``VIGIL_REVIEW_ANSWERER``, set by
tests/conftest.py). The test then grades both models itself against the simulator's hidden truth
(``_truth/posts.jsonl``) on every post of the holdout day(s): post-drift posts neither model
trained or calibrated on. The numbers in the assertions are computed here, not by the code under
test (which only provides each model's scores through ``training.train.score_frame``).

Feast is applied once; the daily loop does not materialize (scoring reads the offline store, which
the dbt export rewrites).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
USERS = 1500
DAYS = 9
DRIFT_DAY = 7
SEED = 7
CHAMPION_DAYS = DRIFT_DAY - 1  # trained on days 1..6 (train 1-4, validation 5, test 6)
# The champion's day in service before the monitored days: the score-drift reference (the days
# before each recent window); the daily DAG would have scored 5 and 6 as well (skipped: time).
SERVICE_DAYS = (4,)
DAILY_DAYS = tuple(range(DRIFT_DAY, DAYS + 1))  # 7, 8, 9
# Small but real models: a few epochs, smaller hash spaces. The evaluation split holds every post
# of its days (test_benign_rate 1: a small world can afford it), so the holdout precision the
# guardrail reads is exact, not a 10% benign sample where one wrong removal weighs 10.
TRAIN_OVERRIDES = {
    "epochs": 4,
    "hash_features_word": 2**14,
    "hash_features_char": 2**14,
    "student_hash_features": 2**12,
    "test_benign_rate": 1.0,
}
# The retrain after the last day's alert: holdout = day 9, validation = day 8, train = days 2-7.
PROMOTION = {
    "window_days": 7,
    "holdout_days": 1,
    "val_frac": 0.15,
    "train_overrides": TRAIN_OVERRIDES,
}


def _day(n: int) -> date:
    return date(2026, 10, n)


def _dag(dag_id: str):
    """The DAG object of dags/<dag_id>.py (the dags folder on sys.path, as Airflow parses it)."""
    dags = str(REPO / "dags")
    if dags not in sys.path:
        sys.path.insert(0, dags)
    spec = importlib.util.spec_from_file_location(f"_e2e_{dag_id}", REPO / "dags" / f"{dag_id}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, dag_id)()


def _world(home, monkeypatch, drift_day):
    """Simulate, load the pre-drift days, build, apply Feast, train + promote the champion."""
    monkeypatch.setenv("VIGIL_HOME", str(home))
    monkeypatch.setenv("AIRFLOW_HOME", str(home / "airflow"))
    from sim.world import simulate
    from training import registry
    from training.config import load
    from training.score import score_day
    from training.train import train
    from vigil import config
    from vigil.lake.ingest import ingest
    from vigil.serving import features
    from vigil.warehouse import dbt as warehouse

    raw = config.paths().raw
    simulate(raw, users=USERS, days=DAYS, seed=SEED, drift_day=drift_day, progress=False)
    for d in range(1, CHAMPION_DAYS + 1):
        ingest(raw, day=_day(d).isoformat())
    warehouse.build("all", as_of=_day(CHAMPION_DAYS).isoformat())
    features.apply()
    summary = train(load(**TRAIN_OVERRIDES, promote="always"))
    assert registry.champion() == summary["model_id"]
    for d in SERVICE_DAYS:
        score_day(_day(d))
    return raw, summary["model_id"]


def _daily(raw, day: date, monitor_dag) -> tuple[list[str], dict | None]:
    """One day: ingest, dbt, score with the champion, then vigil_monitor's two tasks. Returns the
    alerts and the drift-alert Asset event's extra (None when emit_drift_alert is skipped)."""
    from airflow.sdk.exceptions import AirflowSkipException
    from airflow.sdk.execution_time.context import OutletEventAccessors
    from assets import DRIFT_ALERT

    from training.score import score_day
    from vigil.lake.ingest import ingest
    from vigil.warehouse import dbt as warehouse

    ingest(raw, day=day.isoformat())
    warehouse.build("all", as_of=day.isoformat())
    score_day(day)
    result = monitor_dag.get_task("check_drift").python_callable(
        params={"day": day.isoformat(), "thresholds": None}
    )
    outlets = OutletEventAccessors()
    try:
        monitor_dag.get_task("emit_drift_alert").python_callable(result, outlet_events=outlets)
        extra = dict(outlets[DRIFT_ALERT].extra)
    except AirflowSkipException:
        extra = None
    return sorted({f"{a['check']}:{a['subject']}" for a in result["alerts"]}), extra


def _asset_triggered_retrain(extra: dict) -> dict:
    """vigil_train's task, called as Airflow calls it for a run the drift-alert Asset scheduled."""
    from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult
    from airflow.sdk.execution_time.context import TriggeringAssetEventsAccessor
    from assets import DRIFT_ALERT

    event = AssetEventDagRunReferenceResult(
        asset={"name": DRIFT_ALERT.name, "uri": DRIFT_ALERT.uri, "extra": {}},
        extra=extra,
        source_task_id="emit_drift_alert",
        source_dag_id="vigil_monitor",
        source_run_id=f"scheduled__{extra['day']}",
        source_map_index=-1,
        source_aliases=[],
        timestamp=datetime.now(UTC),
    )
    train_dag = _dag("vigil_train")
    return train_dag.get_task("train_evaluate_register").python_callable(
        triggering_asset_events=TriggeringAssetEventsAccessor.build([event])
    )


def _truth_grades(raw, model_id: str, days: list[str]) -> dict:
    """Grade one model on EVERY post created on ``days`` against the hidden truth: a post is
    removed when its calibrated multitask score at any scoring point reaches the model's removal
    threshold. Also recall at 95% precision of its per-post max score (brute force over cut-offs)."""
    import numpy as np
    import pandas as pd

    from training import datasets, registry
    from training.config import from_dict
    from training.train import score_frame

    truth = pd.read_json(raw / "_truth" / "posts.jsonl", lines=True)
    truth["day"] = pd.to_datetime(truth["created_at"], utc=True).dt.strftime("%Y-%m-%d")
    truth = truth[truth["day"].isin(days)].set_index("post_id")
    bundle = registry.load(model_id)
    cfg = from_dict(bundle["meta"]["config"])
    posts = datasets._read_mart("posts")
    posts["created_at"] = datasets._utc(posts["created_at"])
    posts = posts[posts["post_id"].isin(truth.index)][
        ["post_id", "author_id", "created_at", "text"]
    ]
    posts["text"] = posts["text"].fillna("")
    assert len(posts) == len(truth)  # every post of those days is in the lake
    data_end = posts["created_at"].max() + pd.Timedelta(days=1)
    ex = datasets.build_examples(posts, cfg.score_offsets_hours, data_end)
    ex, _, _ = datasets.fetch_features(ex, cfg.feature_service)
    for col in [*bundle["behavior_columns"], *bundle["creator_columns"]]:
        if col not in ex.columns:
            ex[col] = float("nan")
    ex = datasets.add_missing_indicators(ex, bundle["behavior_columns"], bundle["creator_columns"])
    score = score_frame(bundle, ex).groupby("post_id")["multitask_cal"].max()
    y = truth["is_harmful"].astype(bool).reindex(score.index).to_numpy()
    s = score.to_numpy()
    threshold = bundle["thresholds"]["multitask"]["threshold"]
    removed = s >= threshold
    # Brute force: every cut-off at a distinct score; keep the best recall with precision >= 0.95.
    best = 0.0
    for cut in np.unique(s):
        keep = s >= cut
        if y[keep].mean() >= 0.95:
            best = max(best, y[keep].sum() / y.sum())
    return {
        "posts": len(y),
        "harmful": int(y.sum()),
        "removed": int(removed.sum()),
        "harmful_removed": int((removed & y).sum()),
        "recall": float((removed & y).sum() / y.sum()),
        "precision": float((removed & y).sum() / removed.sum()) if removed.any() else float("nan"),
        "recall_at_95p": float(best),
        "threshold": threshold,
    }


def test_drift_alert_asset_retrain_promotion_and_recovery(tmp_path, monkeypatch):
    from training import promotion, registry
    from vigil.monitor import drift as monitor

    started = time.monotonic()
    raw, champion_id = _world(tmp_path / "drift", monkeypatch, DRIFT_DAY)
    monitor_dag = _dag("vigil_monitor")
    alerts_by_day, events = {}, {}
    for d in DAILY_DAYS:
        alerts_by_day[d], events[d] = _daily(raw, _day(d), monitor_dag)
    print("alerts by day:", json.dumps(alerts_by_day))
    first_alert = min((d for d, a in alerts_by_day.items() if a), default=None)
    assert first_alert is not None and first_alert - DRIFT_DAY <= 2, alerts_by_day
    # An Asset event exactly on the alert days, carrying what drifted.
    assert {d for d, e in events.items() if e} == {d for d, a in alerts_by_day.items() if a}
    last = DAILY_DAYS[-1]
    assert events[last] == {"day": _day(last).isoformat(), "drifted": alerts_by_day[last]}
    assert len(monitor.read_alerts(_day(first_alert))) > 0

    # The retrain the last alert's Asset event schedules, with the data root's promotion settings.
    promotion.config_path().write_text(json.dumps(PROMOTION))
    record = _asset_triggered_retrain(events[last])
    print("decision:", json.dumps(record, default=str))
    logged = promotion.read_decisions()[-1]
    assert logged["challenger"] == record["challenger"] and logged["trigger"] == events[last]
    assert record["champion"] == champion_id
    assert record["holdout"]["days"] == [_day(last).isoformat()]
    for side in ("champion_metrics", "challenger_metrics"):
        assert set(record[side]) >= {
            "recall_at_95p",
            "harmful_views_prevented_share",
            "removal_precision",
        }

    # Graded here from the hidden truth, on the holdout day (post-drift, unseen by both models),
    # and the champion on its last pre-drift days (its validation and test days).
    holdout = record["holdout"]["days"]
    pre_drift = [_day(d).isoformat() for d in (CHAMPION_DAYS - 1, CHAMPION_DAYS)]
    before = _truth_grades(raw, champion_id, holdout)
    after = _truth_grades(raw, record["challenger"], holdout)
    champion_pre = _truth_grades(raw, champion_id, pre_drift)
    print("truth: champion pre-drift", pre_drift, champion_pre)
    print("truth on holdout", holdout, "champion:", before, "challenger:", after)
    assert record["decision"] == "promote", record["reason"]
    # The comparison rests on the reviewed holdout sample, which stands for every holdout post:
    # the sample's design covers all of them, reviews outnumber the queue labels, and the
    # Horvitz-Thompson count of harmful posts lands near the truth's (the simulated moderators
    # err on 1% of verdicts; queue labels alone would see a handful of harmful posts).
    labels = record["holdout"]["labels"]
    print("holdout labels:", labels)
    assert labels["posts"] == before["posts"], labels
    assert labels["review_sample"] > 5 * labels["queue"] and labels["pending"] == 0, labels
    assert 0.7 * before["harmful"] <= labels["harmful_estimate"] <= 1.5 * before["harmful"], (
        labels,
        before,
    )
    assert registry.champion() == record["challenger"]
    # The promoted challenger recovers recall on post-drift posts: above the champion's there, and
    # at least the champion's own pre-drift recall; its removals stay >= 90% harmful in truth.
    assert after["recall"] > before["recall"], (before, after)
    assert after["recall"] >= champion_pre["recall"], (champion_pre, after)
    assert after["recall_at_95p"] > before["recall_at_95p"], (before, after)
    assert after["precision"] >= 0.9, after

    # Rollback is one command.
    env = dict(os.environ)
    out = subprocess.run(
        [str(Path(sys.executable).parent / "vigil"), "models", "rollback"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert registry.champion() == champion_id
    print(f"scenario took {time.monotonic() - started:.0f} s")


def test_no_drift_no_alert_on_the_same_days(tmp_path, monkeypatch):
    raw, _ = _world(tmp_path / "nodrift", monkeypatch, None)
    monitor_dag = _dag("vigil_monitor")
    results = {d: _daily(raw, _day(d), monitor_dag) for d in DAILY_DAYS}
    print("alerts by day (no drift):", json.dumps({d: a for d, (a, _) in results.items()}))
    assert not any(a for a, _ in results.values()), results
    assert not any(e for _, e in results.values()), results


AIRFLOW_RUN = r"""
import json, sys, sqlalchemy as sa
from vigil.orchestration import airflow_env
from sim import pipeline
env = airflow_env.build_env()
airflow_env.ensure_ready(env)
out = {"runs": {}}
for day in sys.argv[1:]:
    r = pipeline.dags_test("vigil_monitor", day, {"day": day}, env=env)
    out["runs"][day] = {"ok": r["ok"], "states": {t: v["state"] for t, v in r["tasks"].items()}}
eng = sa.create_engine(airflow_env.sql_alchemy_conn())
with eng.connect() as c:
    out["events"] = [[r[0], r[1]] for r in c.execute(sa.text(
        "select a.uri, e.extra from asset_event e join asset a on a.id = e.asset_id"))]
print(json.dumps(out, default=str))
"""


def _steady_user_views(home):
    """The other tables the monitor reads (a missing one is an alert of its own): every monitored
    user feature, the same 60 values each of the 20 days, so they never drift."""
    import pandas as pd

    from vigil.monitor.drift import monitored_features

    start = datetime(2026, 10, 1, 12, tzinfo=UTC)
    for view, columns in monitored_features().items():
        if view == "post_behavior":
            continue  # written by _features
        rows = [
            {"user_id": i + 1, "event_timestamp": start + pd.Timedelta(days=day)}
            | {c: float((i * (k + 3)) % 11) for k, c in enumerate(columns)}
            for day in range(20)
            for i in range(60)
        ]
        pd.DataFrame(rows).to_parquet(home / "features" / f"{view}.parquet")


def test_vigil_monitor_dag_emits_the_asset_event_only_on_alert(tmp_path, monkeypatch):
    """Real Airflow (``airflow dags test``, SQLite metadata DB): a quiet day skips
    ``emit_drift_alert`` (no Asset event); a drifted day emits ``vigil://monitor/drift_alert``
    with what drifted. Data: the hand-made feature tables of test_monitor (report rate x3 and new
    words on the last 3 days of 20) and steady user feature tables."""
    from test_monitor import _features

    home = tmp_path / "vigil"
    monkeypatch.setenv("VIGIL_HOME", str(home))
    monkeypatch.setenv("VIGIL_AIRFLOW_DB", "sqlite")
    _features(home, 3.0)
    _steady_user_views(home)
    proc = subprocess.run(
        [sys.executable, "-c", AIRFLOW_RUN, "2026-10-14", "2026-10-20"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["runs"]["2026-10-14"]["states"] == {
        "check_drift": "success",
        "emit_drift_alert": "skipped",
    }
    assert out["runs"]["2026-10-20"]["states"] == {
        "check_drift": "success",
        "emit_drift_alert": "success",
    }
    assert len(out["events"]) == 1
    uri, extra = out["events"][0]
    assert uri == "vigil://monitor/drift_alert"
    extra = json.loads(extra) if isinstance(extra, str) else extra
    assert extra["day"] == "2026-10-20"
    assert "report_rate:post_behavior:reports_per_view" in extra["drifted"]
