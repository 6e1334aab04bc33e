"""The re-score head in the scoring service (issue 22): `vigil serve`'s app on a small served
world (moderation_world.py, a champion trained through the real training code) with a head fitted
on hand-made moments where only the reports tell harmful posts apart, saved beside the champion.

At a re-score request (the stream's triggers, e.g. ``first_report``) the decision is remove when
the cascade or the head fires, and the log says which path fired; a creation-time score (trigger
``request``) is the cascade's alone. The head's probability is checked against the logistic
function computed by hand from its coefficients and the features the service reports.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import moderation_world as world
import numpy as np
import pandas as pd
import pytest

from training import rescore_head as rh

HEAD_THRESHOLD = 0.5


def hand_made_head(heavy_threshold: float) -> rh.RescoreHead:
    """Moments where a post is harmful exactly when it has reports: 40 reported (1-20 reports,
    harmful) and 40 unreported (benign), students, views and ages spread alike in both."""
    rows = []
    for i in range(80):
        reports = 1 + i % 20 if i < 40 else 0
        rows.append(
            {
                "student": 0.3 + 0.4 * ((i * 7) % 10) / 10,
                "post_behavior__views": float(10 * (i % 9)),
                "post_behavior__reports": float(reports),
                "post_behavior__negative_replies": 0.0,
                "post_behavior__post_age_hours": 1.0 + (i % 5),
                "is_harmful": reports > 0,
            }
        )
    frame = pd.DataFrame(rows)
    model = rh.fit_model(
        rh.head_inputs(frame), frame["is_harmful"].to_numpy(), np.ones(len(frame)), seed=0
    )
    return rh.RescoreHead(model, HEAD_THRESHOLD, heavy_threshold, {"hand_made": True})


def by_hand(head: rh.RescoreHead, student: float, features: dict) -> float:
    """sigmoid(w . (x - mean) / scale + b) with x = (logit student, log(1 + counters))."""
    scaler = head.model.named_steps["standardscaler"]
    lr = head.model.named_steps["logisticregression"]
    x = [math.log(student / (1 - student))]
    for name in ("views", "reports", "negative_replies", "post_age_hours"):
        x.append(math.log1p(features[f"post_behavior__{name}"] or 0.0))
    z = float(lr.intercept_[0])
    for xi, m, s, w in zip(x, scaler.mean_, scaler.scale_, lr.coef_[0]):
        z += w * (xi - m) / s
    return 1.0 / (1.0 + math.exp(-z))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app with the heavy model for every post (every moment routed), the head saved beside
    the champion; yields (client, head, home)."""
    import joblib
    from fastapi.testclient import TestClient

    from training import registry
    from vigil.moderation.service import build, create_app

    saved = dict(os.environ)
    home = tmp_path_factory.mktemp("serve-head")
    env = world.build(home, "sqlite")
    bundle = registry.load()
    head = hand_made_head(float(bundle["thresholds"]["multitask"]["threshold"]))
    joblib.dump(head, registry.root() / bundle["model_id"] / rh.HEAD_FILE)
    parts = build(heavy="always")
    assert parts.model.head is not None
    with TestClient(create_app(parts)) as client:
        yield client, head, home
    parts.decisions.close()
    world.teardown(env)
    os.environ.clear()
    os.environ.update(saved)


def test_rescore_trigger_names():
    assert rh.is_rescore_trigger("first_report")
    assert rh.is_rescore_trigger("views_64+reports_2+negative_replies_3")
    assert rh.is_rescore_trigger("report")
    for creation in (None, "", "request", "creation", "shadow", "schedule_create", "views_x"):
        assert not rh.is_rescore_trigger(creation)


def test_head_removes_a_reported_post_the_cascade_allows_and_logs_the_path(served):
    client, head, home = served
    at_creation = {
        p: client.post("/v1/score", json={"post_id": p}).json() for p in range(1, world.N_POSTS)
    }
    # a reported post (odd posts carry 3p reports) the cascade does not remove
    candidates = [p for p, a in at_creation.items() if p % 2 and a["decision"] != "remove"]
    assert candidates, "every reported post is removed by the cascade: no case for the head"
    p = candidates[0]
    assert at_creation[p]["head"] is None and at_creation[p]["path"] is None
    answer = client.post("/v1/score", json={"post_id": p, "trigger": "first_report"}).json()
    expected = by_hand(head, answer["student"], answer["features"])
    assert answer["features"]["post_behavior__reports"] == 3 * p
    assert expected >= HEAD_THRESHOLD
    assert answer["head"] == pytest.approx(expected, rel=1e-9)
    assert (answer["decision"], answer["path"]) == ("remove", "head")
    assert answer["probability"] == pytest.approx(at_creation[p]["probability"])
    assert answer["thresholds"]["head"] == HEAD_THRESHOLD
    rows = [
        json.loads(line)
        for f in (Path(home) / "decisions").glob("dt=*/*.jsonl")
        for line in f.read_text().splitlines()
    ]
    mine = [(r["trigger"], r["decision"], r["path"]) for r in rows if r["post_id"] == p]
    assert mine == [
        ("request", at_creation[p]["decision"], None),
        ("first_report", "remove", "head"),
    ]
    logged = next(r for r in rows if r["post_id"] == p and r["trigger"] == "first_report")
    assert logged["head"] == pytest.approx(expected, rel=1e-9)


def test_no_evidence_or_a_cascade_removal_keeps_the_cascades_decision(served):
    client, _, _ = served
    for p in range(1, world.N_POSTS):
        first = client.post("/v1/score", json={"post_id": p}).json()
        again = client.post("/v1/score", json={"post_id": p, "trigger": "views_16"}).json()
        if p % 2 == 0:  # no reports, no negative replies: the head scores 0 and never removes
            assert again["head"] == 0.0
            assert again["decision"] == first["decision"]
        if first["decision"] == "remove":  # the cascade fires first
            assert (again["decision"], again["path"]) == ("remove", "cascade")
            assert first["path"] == "cascade"
