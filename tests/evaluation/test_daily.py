"""`vigil online-eval run` on a hand-made day: lake views, a decision log with two models, the
simulated moderators answering the review requests. With a budget above the number of units the
sample is a census (pi = 1), so every estimate must equal its hand-computed value."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sim import moderators
from sim import truth as sim_truth
from vigil import config

DAY = "2026-10-05"
VIEWS = {1: 10, 2: 4, 4: 20, 5: 2, 6: 1}  # post 3: removed before anyone saw it
HARMFUL = {1, 3, 4}
# (post, model, hour, probability, decision)
DECISIONS = [
    (1, "m-control", 5, 0.9, "remove"),
    (3, "m-control", 0, 0.95, "remove"),
    (4, "m-control", 1, 0.2, "allow"),
    (2, "m-control", 1, 0.01, "allow"),
    (1, "m-cand", 3, 0.95, "remove"),
    (4, "m-cand", 12, 0.85, "remove"),
    (3, "m-cand", 0, 0.3, "allow"),
    (5, "m-cand", 2, 0.02, "allow"),
]


def _world(home: Path) -> None:
    rows = [
        {"action": "view", "post_id": p, "event_ts": pd.Timestamp(f"{DAY}T{h:02d}:30", tz="UTC")}
        for p, n in VIEWS.items()
        for h in range(n)
    ] + [{"action": "like", "post_id": 1, "event_ts": pd.Timestamp(f"{DAY}T01:00", tz="UTC")}]
    lake = home / "lake" / "events" / f"dt={DAY}"
    lake.mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(lake / "events.parquet")
    log = home / "decisions" / f"dt={DAY}"
    log.mkdir(parents=True)
    (log / "decisions-1.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "post_id": p,
                    "decided_at": f"{DAY}T{h:02d}:00:00+00:00",
                    "model_id": m,
                    "probability": prob,
                    "decision": d,
                    "trigger": "request",
                }
            )
            + "\n"
            for p, m, h, prob, d in DECISIONS
        )
    )
    truth = home / "raw" / "_truth"
    truth.mkdir(parents=True)
    (truth / "posts.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "post_id": p,
                    "author_id": 100 + p,
                    "created_at": f"{DAY}T00:00:00Z",
                    "is_harmful": p in HARMFUL,
                    "harm_types": ["hate"] if p in HARMFUL else [],
                }
            )
            + "\n"
            for p in range(1, 7)
        )
    )


def test_census_day_gives_the_hand_computed_estimates(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    monkeypatch.setenv("VIGIL_REVIEW_ANSWERER", "sim.moderators:answer")
    _world(tmp_path)
    from vigil.evaluation.daily import run

    report = run(DAY, "m-control", "m-cand", budget=100)
    # What the moderators say (the truth through their error rate), computed outside the platform.
    said = moderators.verdicts(sim_truth.posts(tmp_path / "raw"), range(1, 7))
    h = dict(zip(said["post_id"], said["is_harmful"]))
    views = {p: VIEWS.get(p, 0) for p in range(1, 7)}
    assert report["units"] == 6 and report["drawn"] == 6 and report["labels"] == 6
    prevalence = sum(v for p, v in views.items() if h[p]) / sum(views.values())
    assert report["prevalence"]["estimate"] == pytest.approx(prevalence)
    assert report["prevalence"]["se"] == 0.0
    control, cand = report["control"], report["candidate"]
    assert control["removals"] == 2 and cand["removals"] == 2
    assert control["precision"]["estimate"] == pytest.approx((h[1] + h[3]) / 2)
    assert cand["precision"]["estimate"] == pytest.approx((h[1] + h[4]) / 2)
    # prevented = the post's views at or after the removal: post 1 viewed hours 0..9 at :30;
    # control removed it at 05:00 -> 5 views, the candidate at 03:00 -> 7; post 4 (hours 0..19)
    # at 12:00 -> 8; post 3 had no views.
    assert control["harmful_views_prevented"]["estimate"] == pytest.approx(5 * h[1])
    assert cand["harmful_views_prevented"]["estimate"] == pytest.approx(7 * h[1] + 8 * h[4])
    folder = config.paths().reports / "online_eval" / f"day={DAY}"
    assert json.loads((folder / "report.json").read_text())["day"] == DAY
    assert "Prevalence" in (folder / "report.md").read_text()
    requests = pd.read_parquet(tmp_path / "review" / "requests" / "online_eval.parquet")
    assert sorted(requests["post_id"]) == [1, 2, 3, 4, 5, 6]
    assert (requests["inclusion_probability"] == 1.0).all()


def test_importance_sample_meets_the_budget_and_hash_arms_split_removals(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    _world(tmp_path)
    from vigil.evaluation.daily import Settings, build_frame, decisions_until, sample, views_of_day

    s = Settings("m-control", "m-cand", mode="hash", budget=3, floor=0.05, salt="s")
    end = pd.Timestamp(f"{DAY}T00:00", tz="UTC") + pd.Timedelta(days=1)
    frame = build_frame(views_of_day(DAY), decisions_until(end.to_pydatetime()), s)
    units = sample(frame, s, DAY)
    assert units["pi"].sum() == pytest.approx(3.0)
    for arm in ("control", "candidate"):
        assert (units.loc[units[f"removed_{arm}"], "arm"] == arm).all()


def test_cli_refuses_a_bad_day_and_missing_models_in_one_sentence(tmp_path):
    env = {**os.environ, "VIGIL_HOME": str(tmp_path)}
    vigil = str(Path(sys.executable).parent / "vigil")
    bad = subprocess.run(
        [vigil, "online-eval", "run", "--day", "5/10", "--control", "a", "--candidate", "b"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "is not YYYY-MM-DD" in bad.stderr
    assert "Traceback" not in bad.stderr
    _world(tmp_path)
    none = subprocess.run(
        [vigil, "online-eval", "run", "--day", DAY, "--control", "x", "--candidate", "y"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert none.returncode == 2 and "has no decisions of x or y" in none.stderr


def test_posts_decided_on_earlier_days_without_views_today_are_not_units(tmp_path, monkeypatch):
    # post 7 was decided the day before and nobody saw it on DAY: not a unit of DAY (its views
    # of the day are none); post 3, decided on DAY before anyone saw it, is one.
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    _world(tmp_path)
    earlier = tmp_path / "decisions" / "dt=2026-10-04"
    earlier.mkdir(parents=True)
    (earlier / "decisions-1.jsonl").write_text(
        json.dumps(
            {
                "post_id": 7,
                "decided_at": "2026-10-04T12:00:00+00:00",
                "model_id": "m-control",
                "probability": 0.5,
                "decision": "allow",
                "trigger": "request",
            }
        )
        + "\n"
    )
    from vigil.evaluation.daily import Settings, build_frame, decisions_until, views_of_day

    start = pd.Timestamp(f"{DAY}T00:00", tz="UTC")
    decisions = decisions_until((start + pd.Timedelta(days=1)).to_pydatetime())
    s = Settings("m-control", "m-cand")
    frame = build_frame(views_of_day(DAY), decisions, s, since=start.to_pydatetime())
    assert sorted(frame["post_id"]) == [1, 2, 3, 4, 5, 6]
    assert sorted(build_frame(views_of_day(DAY), decisions, s)["post_id"]) == [1, 2, 3, 4, 5, 6, 7]


def test_posts_below_the_cascade_threshold_rank_by_the_students_score(tmp_path, monkeypatch):
    # the cascade logs probability 0 below tau; the student's score is logged for every post:
    # post 2 (not routed, student 0.07) and post 5 (not routed, student 0.004) rank by it, post 4
    # (routed) keeps its calibrated probability 0.2; the candidate's rows carry no student score
    # (an older log) and keep their probability.
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    _world(tmp_path)
    log = tmp_path / "decisions" / f"dt={DAY}" / "decisions-2.jsonl"
    rows = [(2, 0.07, False, 0.0), (5, 0.004, False, 0.0), (4, 0.6, True, 0.2)]
    log.write_text(
        "".join(
            json.dumps(
                {
                    "post_id": p,
                    "decided_at": f"{DAY}T20:00:00+00:00",
                    "model_id": "m-control",
                    "student": student,
                    "routed_to_heavy": routed,
                    "probability": prob,
                    "decision": "allow",
                    "trigger": "views_16",
                }
            )
            + "\n"
            for p, student, routed, prob in rows
        )
    )
    from vigil.evaluation.daily import Settings, build_frame, decisions_until, views_of_day

    end = pd.Timestamp(f"{DAY}T00:00", tz="UTC") + pd.Timedelta(days=1)
    frame = build_frame(
        views_of_day(DAY), decisions_until(end.to_pydatetime()), Settings("m-control", "m-cand")
    ).set_index("post_id")
    assert frame["score_control"].to_dict() == {1: 0.9, 2: 0.07, 3: 0.95, 4: 0.2, 5: 0.004, 6: 0.0}
    assert frame["score_candidate"].to_dict() == {1: 0.95, 2: 0.0, 3: 0.3, 4: 0.85, 5: 0.02, 6: 0.0}
