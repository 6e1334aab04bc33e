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
    parts = build(heavy="always", skip_removed=False)  # re-scores of removed posts asserted
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


def test_spare_heavy_calls_budget_per_utc_day_and_off_unchanged(served):
    """The spare heavy calls (``vigil serve --heavy-budget B --spare-floor F``) on the same world,
    the cascade's routing, a clock the test sets. Expectations from the replay's rule by hand:
    no spare call on the first day; on a day, re-score requests with F x tau <= student < tau get
    the heavy model when the student is at or above the k-th highest such score of the day before
    (k = B - that day's calls at tau) and the day's heavy calls are under B."""
    from datetime import UTC, datetime

    from vigil.moderation.service import build

    always, _, home = served
    ref = {p: always.post("/v1/score", json={"post_id": p}).json() for p in range(1, world.N_POSTS)}
    # the small world's tau (0.29) routes every post (students 0.47-0.58): both services get a
    # stricter cascade, tau 0.55, so that some posts fall below it
    tau = 0.55
    below = sorted((p for p in ref if ref[p]["student"] < tau), key=lambda p: ref[p]["student"])
    above = [p for p in ref if ref[p]["student"] >= tau]
    assert len(below) >= 4 and len(above) >= 2, (len(below), len(above))
    students = [ref[p]["student"] for p in below]
    assert len(set(students)) == len(students)  # no ties: the k-th highest is one post
    budget, floor = 3, 0.999 * min(students) / tau  # every post below tau is a candidate
    top = below[::-1]  # highest student first

    off = build(heavy="cascade", skip_removed=False)
    on = build(heavy="cascade", spare=(budget, floor), skip_removed=False)
    off.model.tau = on.model.tau = tau
    now = [datetime(2026, 11, 2, 12, tzinfo=UTC)]
    on.model.spare.clock = lambda: now[0]
    from fastapi.testclient import TestClient

    from vigil.moderation.service import create_app

    def check(answer, p, spare, off_answer):
        assert answer["spare"] is spare and answer["routed_to_heavy"] is spare
        if spare:  # the heavy model's probability, as when it scores every post
            assert answer["probability"] == pytest.approx(ref[p]["probability"], rel=1e-9)
            assert answer["decision"] == (
                "remove" if answer["path"] == "head" else ref[p]["decision"]
            )
        else:  # unchanged: what the service without spare calls decides
            assert answer["probability"] == off_answer["probability"] == 0.0
            assert answer["decision"] == off_answer["decision"]

    with TestClient(create_app(on)) as c_on, TestClient(create_app(off)) as c_off:

        def both(p, trigger):
            body = {"post_id": p, "trigger": trigger}
            return c_on.post("/v1/score", json=body).json(), c_off.post(
                "/v1/score", json=body
            ).json()

        # day 1: the first day seen, no spare call; creation requests never
        for p in below:
            for trigger in ("request", "first_report"):
                a, o = both(p, trigger)
                check(a, p, False, o)
                assert o["spare"] is False and o["routed_to_heavy"] is False
        # day 2: k = 3 - 0 calls at tau on day 1 -> the 3rd highest of day 1: the top 3 posts,
        # exactly `budget` spare calls (in ascending order: all under the budget when they come)
        now[0] = datetime(2026, 11, 3, 0, 5, tzinfo=UTC)
        day2 = {p: both(p, "views_16") for p in below}
        for p, (a, o) in day2.items():
            check(a, p, p in top[:budget], o)
        assert sum(a["spare"] for a, _ in day2.values()) == budget
        a, _ = both(above[0], "views_16")  # the cascade's own call: never stopped
        assert a["routed_to_heavy"] is True and a["spare"] is False
        # day 3 (reset): k = 3 - 1 call at tau on day 2 -> the 2nd highest of day 2; two calls at
        # tau first, so the budget leaves 1 spare call: the highest post only
        now[0] = datetime(2026, 11, 4, 23, 59, tzinfo=UTC)
        for p in above[:2]:
            a, _ = both(p, "views_32")
            assert a["routed_to_heavy"] is True and a["spare"] is False
        day3 = {p: both(p, "views_32") for p in top}
        for p, (a, o) in day3.items():
            check(a, p, p == top[0], o)
        assert on.model.spare.threshold == ref[top[1]]["student"]
        # the same day again: the budget is spent
        a, o = both(top[0], "views_64")
        check(a, top[0], False, o)
    for parts in (on, off):
        parts.decisions.close()
    rows = [
        json.loads(line)
        for f in (Path(home) / "decisions").glob("dt=*/*.jsonl")
        for line in f.read_text().splitlines()
    ]
    logged = sorted((r["trigger"], r["post_id"]) for r in rows if r.get("spare"))
    expected = [("views_16", p) for p in top[:budget]] + [("views_32", top[0])]
    assert logged == sorted(expected)


def test_spare_setting_a_budget_alone_takes_the_floor_half(monkeypatch):
    from vigil import config
    from vigil.errors import UserError
    from vigil.moderation.cli import spare_setting

    for name in ("VIGIL_SERVE_HEAVY_BUDGET", "VIGIL_SERVE_SPARE_FLOOR"):
        monkeypatch.delenv(name, raising=False)
    assert config.serve_spare_heavy() is None and spare_setting(None, None) is None
    assert spare_setting(216, 0.75) == (216, 0.75)
    assert spare_setting(216, None) == (216, 0.5)  # --heavy-budget alone
    monkeypatch.setenv("VIGIL_SERVE_HEAVY_BUDGET", "216")
    with pytest.raises(ValueError, match="VIGIL_SERVE_SPARE_FLOOR"):
        config.serve_spare_heavy()  # the settings alone name no floor
    assert spare_setting(None, None) == (216, 0.5)  # vigil serve's: the floor 0.5
    monkeypatch.setenv("VIGIL_SERVE_SPARE_FLOOR", "0.75")
    assert config.serve_spare_heavy() == (216, 0.75) == spare_setting(None, None)
    monkeypatch.delenv("VIGIL_SERVE_HEAVY_BUDGET")
    with pytest.raises(UserError, match="VIGIL_SERVE_HEAVY_BUDGET"):
        spare_setting(None, None)  # a floor without a budget
    for budget, floor in (("0", "0.5"), ("2.5", "0.5"), ("216", "1"), ("216", "x")):
        monkeypatch.setenv("VIGIL_SERVE_HEAVY_BUDGET", budget)
        monkeypatch.setenv("VIGIL_SERVE_SPARE_FLOOR", floor)
        with pytest.raises(UserError):
            spare_setting(None, None)
    for budget, floor in ((None, 0.5), (0, 0.5), (0, None), (216, 0.0)):
        with pytest.raises(UserError):
            spare_setting(budget, floor)
