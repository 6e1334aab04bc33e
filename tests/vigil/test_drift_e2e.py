"""Drift end to end on a small simulated world (real simulator, lake, dbt, Feast, models).

World: 1,500 users x 14 days from 2026-10-01 (seed 7). The champion is trained on the pre-drift
days 1-8; then the daily pipeline runs day by day (ingest the day, dbt build, score with the
champion, drift checks) for days 9-12. With ``--drift-day 9`` an alert must fire within 3 days of
the drift; the same days of the world without drift raise none. The retrain (challenger on the
recent window, champion/challenger on the same holdout) then runs on the alert, and the test
measures recall of both models on post-drift posts against the simulator's hidden truth
(``_truth/posts.jsonl``), computed here, not by the code under test.

Feast is applied and materialized once; the daily loop skips ``materialize`` (scoring reads the
offline store, which the dbt export rewrites).
"""

from __future__ import annotations

import json
import time
from datetime import date

import pytest

pytestmark = pytest.mark.slow

DRIFT_DAY = 9
DAYS = 14
CHAMPION_DAYS = 8
DAILY_DAYS = (9, 10, 11, 12)
# Small but real models: a few epochs, smaller hash spaces.
TRAIN_OVERRIDES = {
    "epochs": 4,
    "hash_features_word": 2**14,
    "hash_features_char": 2**14,
    "student_hash_features": 2**12,
}


def _day(n: int) -> date:
    return date(2026, 10, n)


def _world(home, monkeypatch, drift_day):
    """Simulate, load the pre-drift days, build, apply Feast, train + promote the champion."""
    monkeypatch.setenv("VIGIL_HOME", str(home))
    from training import registry
    from training.config import load
    from training.train import train
    from vigil import config, features, warehouse
    from vigil.ingest import ingest
    from vigil.simulate import simulate

    raw = config.paths().raw
    simulate(raw, users=1500, days=DAYS, seed=7, drift_day=drift_day, progress=False)
    for d in range(1, CHAMPION_DAYS + 1):
        ingest(raw, day=_day(d).isoformat())
    warehouse.build("all", as_of=_day(CHAMPION_DAYS).isoformat())
    features.apply()
    features.materialize()
    summary = train(load(**TRAIN_OVERRIDES, promote="always"))
    assert registry.champion() == summary["model_id"]
    from training.score import score_day

    for d in range(CHAMPION_DAYS - 2, CHAMPION_DAYS + 1):  # the champion's first days in service
        score_day(_day(d))
    return raw, summary["model_id"]


def _daily(raw, day: date) -> list:
    """One day of the daily pipeline: ingest the day, dbt, score with the champion, drift checks."""
    from training.score import score_day
    from vigil import monitor, warehouse
    from vigil.ingest import ingest

    ingest(raw, day=day.isoformat())
    warehouse.build("all", as_of=day.isoformat())
    score_day(day)
    return [r for r in monitor.run_checks(day) if r.drifted]


def _truth_recall(raw, model_id: str, first_day: date, last_day: date) -> dict:
    """Share of truly harmful posts created in [first_day, last_day] the model removes (its
    calibrated multitask score at any scoring point >= its removal threshold). Ground truth from
    the simulator; scores from the registered model's objects over Feast features."""
    import pandas as pd

    from training import datasets, registry
    from training.config import from_dict
    from training.train import score_frame

    truth = pd.read_json(raw / "_truth" / "posts.jsonl", lines=True)
    truth["created_at"] = pd.to_datetime(truth["created_at"], utc=True)
    lo = pd.Timestamp(first_day, tz="UTC")
    hi = pd.Timestamp(last_day, tz="UTC") + pd.Timedelta(days=1)
    harmful = truth[truth["is_harmful"] & (truth["created_at"] >= lo) & (truth["created_at"] < hi)]
    bundle = registry.load(model_id)
    cfg = from_dict(bundle["meta"]["config"])
    posts = datasets._read_mart("posts")
    posts["created_at"] = datasets._utc(posts["created_at"])
    posts = posts[posts["post_id"].isin(harmful["post_id"])][["post_id", "author_id", "created_at", "text"]]
    posts["text"] = posts["text"].fillna("")
    data_end = posts["created_at"].max() + pd.Timedelta(days=1)
    ex = datasets.build_examples(posts, cfg.score_offsets_hours, data_end)
    ex, _, _ = datasets.fetch_features(ex, cfg.feature_service)
    for col in [*bundle["behavior_columns"], *bundle["creator_columns"]]:
        if col not in ex.columns:
            ex[col] = float("nan")
    ex = datasets.add_missing_indicators(ex, bundle["behavior_columns"], bundle["creator_columns"])
    scored = score_frame(bundle, ex)
    threshold = bundle["thresholds"]["multitask"]["threshold"]
    removed = scored.groupby("post_id")["multitask_cal"].max() >= threshold
    return {"harmful_posts": int(len(harmful)), "removed": int(removed.sum()),
            "recall": float(removed.sum() / max(len(harmful), 1)), "threshold": threshold}


def test_drift_alert_retrain_and_recovery(tmp_path, monkeypatch):
    from training import promotion, registry
    from vigil import monitor

    started = time.monotonic()
    raw, champion_id = _world(tmp_path / "drift", monkeypatch, DRIFT_DAY)
    alerts_by_day = {}
    for d in DAILY_DAYS:
        alerts_by_day[d] = sorted({f"{a.check}:{a.subject}" for a in _daily(raw, _day(d))})
    print("alerts by day:", json.dumps(alerts_by_day))
    first_alert = min((d for d, a in alerts_by_day.items() if a), default=None)
    assert first_alert is not None and first_alert - DRIFT_DAY <= 2, alerts_by_day
    assert len(monitor.read_alerts()) > 0

    # The retrain the alert schedules (what vigil_train runs on a drift-alert Asset event).
    record = promotion.retrain_and_decide(
        promotion.PromotionConfig(window_days=7, holdout_days=2, train_overrides=TRAIN_OVERRIDES),
        trigger={"day": _day(DAILY_DAYS[-1]).isoformat(), "drifted": alerts_by_day[DAILY_DAYS[-1]]},
    )
    print("decision:", json.dumps(record, default=str))
    assert promotion.read_decisions()[-1]["challenger"] == record["challenger"]
    assert record["champion"] == champion_id
    assert record["champion_metrics"] is not None and record["challenger_metrics"] is not None

    # Recall on post-drift posts from the hidden truth, both models at their own thresholds.
    before = _truth_recall(raw, champion_id, _day(DRIFT_DAY), _day(DAILY_DAYS[-1]))
    after = _truth_recall(raw, record["challenger"], _day(DRIFT_DAY), _day(DAILY_DAYS[-1]))
    print("truth recall champion:", before, "challenger:", after)
    print(f"scenario took {time.monotonic() - started:.0f} s")
    if record["decision"] == "promote":
        assert registry.champion() == record["challenger"]
        assert after["recall"] > before["recall"], (before, after)
        # Rollback is one call (``vigil models rollback``): the old champion is back.
        assert registry.rollback()["model_id"] == champion_id
    else:
        assert registry.champion() == champion_id


def test_no_drift_no_alert_on_the_same_days(tmp_path, monkeypatch):
    raw, _ = _world(tmp_path / "nodrift", monkeypatch, None)
    alerts_by_day = {d: sorted({f"{a.check}:{a.subject}" for a in _daily(raw, _day(d))}) for d in DAILY_DAYS}
    print("alerts by day (no drift):", json.dumps(alerts_by_day))
    assert not any(alerts_by_day.values()), alerts_by_day


AIRFLOW_RUN = r"""
import json, sys, sqlalchemy as sa
from vigil import airflow_env, pipeline
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


def test_vigil_monitor_dag_emits_the_asset_event_only_on_alert(tmp_path, monkeypatch):
    """Real Airflow (``airflow dags test``, SQLite metadata DB): a quiet day skips
    ``emit_drift_alert`` (no Asset event); a drifted day emits ``vigil://monitor/drift_alert``
    with what drifted. Data: the hand-made feature tables of test_monitor (report rate x3 and new
    words on the last 3 days of 20)."""
    import subprocess
    import sys

    from test_monitor import _features

    home = tmp_path / "vigil"
    monkeypatch.setenv("VIGIL_HOME", str(home))
    monkeypatch.setenv("VIGIL_AIRFLOW_DB", "sqlite")
    _features(home, 3.0)
    proc = subprocess.run([sys.executable, "-c", AIRFLOW_RUN, "2026-10-14", "2026-10-20"],
                          capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["runs"]["2026-10-14"]["states"] == {"check_drift": "success", "emit_drift_alert": "skipped"}
    assert out["runs"]["2026-10-20"]["states"] == {"check_drift": "success", "emit_drift_alert": "success"}
    assert len(out["events"]) == 1
    uri, extra = out["events"][0]
    assert uri == "vigil://monitor/drift_alert"
    extra = json.loads(extra) if isinstance(extra, str) else extra
    assert extra["day"] == "2026-10-20"
    assert "report_rate:post_behavior:reports_per_view" in extra["drifted"]
