"""Double review of heavy-weight harmful labels (``--double-review W``, issue 22).

A hand-made sample whose weights views / pi are chosen so that we know which units go back for a
second review, which label wins, and the Horvitz-Thompson total; moderators scripted per review
round; the same through ``vigil online-eval run``'s day (a census day) and its rerun, which must
ask nothing new; the simulated moderators' second opinion errs independently of the first."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim import moderators
from vigil.evaluation import calibration, daily, double_review
from vigil.review import repeat_review_queue, review_round

QUEUE = "online_eval"
R2, R3 = repeat_review_queue(QUEUE, 2), repeat_review_queue(QUEUE, 3)


class Moderators:
    """Answers each queue from a script {queue: {post_id: is_harmful}} and records every call;
    a post missing from the script stays pending."""

    def __init__(self, script: dict):
        self.script = script
        self.calls: list[tuple[str, list[int]]] = []

    def __call__(self, requests: pd.DataFrame, verdicts_dir: Path) -> None:
        queue = str(requests["queue"].iloc[0])
        ids = [int(p) for p in requests["post_id"]]
        self.calls.append((queue, ids))
        said = self.script.get(queue, {})
        lines = [
            json.dumps(
                {
                    "post_id": p,
                    "is_harmful": said[p],
                    "harm_types": ["hate"] if said[p] else [],
                    "reviewer": f"mod-{queue}",
                    "reviewed_at": "2026-10-06T00:00:00+00:00",
                }
            )
            + "\n"
            for p in ids
            if p in said
        ]
        (Path(verdicts_dir) / f"{queue}-{len(self.calls)}.jsonl").write_text("".join(lines))


# Drawn units: post -> (views, pi); weight = views / pi.
DRAWN = {
    11: (2, 0.01),  # weight 200, first harmful, second harmful -> harmful
    12: (30, 0.5),  # weight 60 <= 100: its harmful label is not reviewed again
    13: (5, 0.02),  # weight 250, harmful, second benign, third benign -> benign (overturned)
    14: (1000, 1.0),  # weight 1000, harmful, second benign, third harmful -> harmful
    15: (8, 0.04),  # weight 200 but first benign: never re-reviewed
    16: (0, 1.0),  # removed before anyone saw it: weight 0
    17: (100, 0.5),  # weight 200, harmful, second review pending: the first verdict stands
}
FIRST = {11: True, 12: True, 13: True, 14: True, 15: False, 16: True, 17: True}
SCRIPT = {R2: {11: True, 13: False, 14: False}, R3: {13: False, 14: True}}


def _units() -> pd.DataFrame:
    rows = [
        {"post_id": p, "views": v, "pi": pi, "drawn": True, "q": 0.1}
        for p, (v, pi) in DRAWN.items()
    ]
    rows.append({"post_id": 18, "views": 10000, "pi": 0.5, "drawn": False, "q": 0.001})
    frame = pd.DataFrame(rows)
    frame["score_control"] = frame["score_candidate"] = 0.1
    for arm in ("control", "candidate"):
        frame[f"removed_{arm}"] = frame["post_id"] == 16
        frame[f"prevented_{arm}"] = 0
    return frame


def test_weights_and_eligibility_by_hand():
    units = _units()
    assert double_review.weights(units).tolist() == [200, 60, 250, 1000, 200, 0, 200, 20000]
    got = units["post_id"][double_review.eligible(units, 100)].tolist()
    assert got == [11, 13, 14, 15, 17, 18]
    assert not double_review.eligible(units, None).any()
    assert review_round(QUEUE) == 1 and review_round(R2) == 2 and review_round("a-review12") == 12
    assert review_round("x-review1") == 1


def test_adjudication_and_the_ht_total_by_hand(tmp_path):
    units = _units()
    drawn = units[units["drawn"]]
    mods = Moderators(SCRIPT)
    first = pd.Series(FIRST)
    labels, counts = double_review.adjudicate(drawn, first, 100, tmp_path, QUEUE, mods)
    # second reviews: the harmful labels of weight > 100 (11, 13, 14, 17); third: 13, 14
    assert mods.calls == [(R2, [11, 13, 14, 17]), (R3, [13, 14])]
    assert labels.to_dict() == {
        11: True,
        12: True,
        13: False,
        14: True,
        15: False,
        16: True,
        17: True,
    }
    assert counts == {
        "threshold": 100,
        "removals": "off",
        "eligible_harmful": 4,
        "eligible_removals": 0,
        "second": 3,
        "second_pending": 1,
        "second_disagree": 2,
        "third": 2,
        "third_pending": 0,
        "overturned": 1,
    }
    # distinct requests: their own files, never the first review's
    assert (tmp_path / "rounds" / R2 / "requests" / f"{R2}.parquet").is_file()
    assert not (tmp_path / "verdicts").exists()
    # the label history reads the same majority back
    assert double_review.final_labels(first, tmp_path, QUEUE).to_dict() == labels.to_dict()

    # HT total of harmful views: 200 (11) + 60 (12) + 1000 (14) + 0 (16) + 200 (17) = 1460 of
    # 2 + 30 + 5 + 1000 + 8 + 0 + 100 + 10000 = 11145 views; single review adds 13's 250.
    s = daily.Settings("c", "k", double_review=100)
    got = daily.estimates(units, labels, s)
    assert got["prevalence"]["estimate"] == pytest.approx(1460 / 11145)
    single = daily.estimates(units, first, daily.Settings("c", "k", double_review=None))
    assert single["prevalence"]["estimate"] == pytest.approx(1710 / 11145)

    # With the error rate e = 0.01: a doubly reviewed unit's label is harmful with probability
    # e^2 (2 - e) = 0.000199 if benign, (1 - e)^2 (1 + e) = 0.989901 if harmful; single: 0.01, 0.99
    e = 0.01
    got = daily.estimates(units, labels, daily.Settings("c", "k", label_error=e, double_review=100))
    f2, t2 = 0.000199, 0.989901
    by_hand = (
        200 * (1 - f2) / (t2 - f2)  # 11
        + 60 * (1 - e) / (1 - 2 * e)  # 12 (light)
        + 250 * (0 - f2) / (t2 - f2)  # 13
        + 1000 * (1 - f2) / (t2 - f2)  # 14
        + 200 * (0 - f2) / (t2 - f2)  # 15 (eligible: weight 200)
        + 0  # 16
        + 200 * (1 - f2) / (t2 - f2)  # 17
    )
    assert got["prevalence"]["estimate"] == pytest.approx(by_hand / 11145)
    # its expected variance by hand for the undrawn unit alone (q 0.001, pi 0.5, views 10000, eligible)
    p = f2 + (t2 - f2) * 0.001
    second = (p * (1 - f2) ** 2 + (1 - p) * f2**2) / (t2 - f2) ** 2
    v = calibration.expected_variance([0.5], [10000], [0.001], e, [True])
    assert v == pytest.approx(1 * 10000**2 * second)
    assert calibration.expected_variance([0.5], [10000], [0.001], 0.0, [True]) == pytest.approx(
        10000**2 * 0.001
    )


DAY = "2026-10-05"
VIEWS = {1: 10, 2: 4, 4: 20, 5: 2, 6: 1}  # post 3: removed before anyone saw it


def _world(home: Path) -> None:
    rows = [
        {"action": "view", "post_id": p, "event_ts": pd.Timestamp(f"{DAY}T{h:02d}:30", tz="UTC")}
        for p, n in VIEWS.items()
        for h in range(n)
    ]
    lake = home / "lake" / "events" / f"dt={DAY}"
    lake.mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(lake / "events.parquet")
    log = home / "decisions" / f"dt={DAY}"
    log.mkdir(parents=True)
    decisions = [(3, "m-control", 0.95, "remove"), (1, "m-cand", 0.9, "remove")]
    decisions += [(p, "m-control", 0.05, "allow") for p in (1, 2, 4, 5, 6)]
    (log / "decisions-1.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "post_id": p,
                    "decided_at": f"{DAY}T01:00:00+00:00",
                    "model_id": m,
                    "probability": prob,
                    "decision": d,
                    "trigger": "request",
                }
            )
            + "\n"
            for p, m, prob, d in decisions
        )
    )


def test_a_day_with_double_review_counts_every_label_and_a_rerun_asks_nothing_new(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    _world(tmp_path)
    # first verdicts: 1, 2 (false), 3, 4 and 5 (false) harmful; census (pi = 1): weight = views
    mods = Moderators(
        {
            QUEUE: {1: True, 2: True, 3: True, 4: True, 5: True, 6: False},
            R2: {1: True, 2: False, 4: False},
            R3: {2: False, 4: True},
        }
    )
    monkeypatch.setattr("vigil.review.files.load_answerer", lambda spec=None: mods)
    report = daily.run(DAY, "m-control", "m-cand", budget=100, double_review=3)
    # weight > 3 and harmful: 1 (10), 2 (4), 4 (20); 5 (2) and 3 (0 views) are not re-reviewed
    assert [q for q, _ in mods.calls] == [QUEUE, R2, R3]
    assert mods.calls[1][1] == [1, 2, 4] and mods.calls[2][1] == [2, 4]
    assert report["reviews"]["first"] == 6 and report["reviews"]["labels_used"] == 6 + 3 + 2
    assert report["reviews"]["double_review"]["overturned"] == 1
    # harmful views 10 (1) + 20 (4) + 2 (5, light, kept) of 37; single review: + 4 (2)
    assert report["prevalence"]["estimate"] == pytest.approx(32 / 37)
    assert (
        "Labels used: 11"
        in (tmp_path / "reports" / "online_eval" / f"day={DAY}" / "report.md").read_text()
    )

    requests = sorted((tmp_path / "review").rglob("requests/*.parquet"))
    before = {p: pd.read_parquet(p) for p in requests}
    again = daily.run(DAY, "m-control", "m-cand", budget=100, double_review=3)
    assert len(mods.calls) == 3  # nobody was asked anything new
    assert {p: len(pd.read_parquet(p)) for p in requests} == {p: len(f) for p, f in before.items()}
    assert again["prevalence"] == report["prevalence"]
    assert again["reviews"] == report["reviews"]

    # without the option the same day trusts the first verdicts (and asks nothing new either)
    single = daily.run(
        DAY, "m-control", "m-cand", budget=100, double_review=None, review_removals="off"
    )
    assert single["prevalence"]["estimate"] == pytest.approx(36 / 37)
    assert single["reviews"] == {"first": 6, "labels_used": 6} and len(mods.calls) == 3


def test_the_simulated_second_opinion_errs_independently():
    n = 6000
    truth = pd.DataFrame(
        {
            "post_id": np.arange(1, n + 1),
            "is_harmful": np.arange(n) % 10 == 0,
            "harm_types": [["hate"] if i % 10 == 0 else [] for i in range(n)],
        }
    )
    ids = truth["post_id"]
    wrong = {}
    for queue in (None, QUEUE, R2, R3, "audit-review2"):
        said = moderators.verdicts(truth, ids, accuracy=0.8, queue=queue)
        wrong[queue] = said["is_harmful"].to_numpy() != truth["is_harmful"].to_numpy()
    # a first review keeps the world's labels whatever its queue; repeat reviews draw anew
    assert (wrong[None] == wrong[QUEUE]).all()
    for a, b in ((QUEUE, R2), (QUEUE, R3), (R2, R3), (R2, "audit-review2")):
        both = (wrong[a] & wrong[b]).mean()
        # independent: P(both wrong) = 0.2 x 0.2 = 0.04 (binomial sd 0.0025); a repeat: 0.2
        assert both == pytest.approx(0.04, abs=0.012), (a, b)
    # asking the same repeat queue twice gives the same answers
    again = moderators.verdicts(truth, ids, accuracy=0.8, queue=R2)["is_harmful"].to_numpy()
    assert ((again != truth["is_harmful"].to_numpy()) == wrong[R2]).all()


class ScriptedUniforms:
    """A generator stand-in whose .random(n) returns the next n scripted uniforms."""

    def __init__(self, values):
        self.values = list(values)

    def random(self, n):
        out, self.values = self.values[:n], self.values[n:]
        return np.array(out, dtype=float)


def test_the_harness_double_review_by_hand():
    from sim.online_eval_harness import double_review_labels

    truth = np.array([False, True, False, False, True, False])
    first = np.array([True, True, True, True, False, True])  # 0, 2, 3, 5 wrong
    heavy = np.array([True, True, True, True, True, False])
    # second verdicts for 0, 1, 2, 3 (heavy and harmful): uniform >= 0.9 errs -> 0 right (benign),
    # 1 right (harmful), 2 wrong (harmful), 3 right (benign); third for 0 and 3: 0 wrong, 3 right
    rng = ScriptedUniforms([0.1, 0.2, 0.95, 0.3, 0.99, 0.5])
    labels, counts = double_review_labels(first, truth, heavy, 0.9, rng)
    assert labels.tolist() == [True, True, True, False, False, True]
    assert counts == (4, 2, 1)  # 4 second verdicts, 2 third, 1 overturned (3)
    assert rng.values == []


def test_double_review_is_on_at_30_by_default_and_off_by_word():
    """The default W is 30 (docs/online_eval.md: chosen on simulated seeds 1-3, held out on 4-5);
    ``--double-review off`` trusts single reviews; a bad value is one clear error."""
    from vigil.evaluation.cli import _double_review

    assert daily.Settings("c", "k").double_review == 30.0
    assert _double_review("off") is None and _double_review("100") == 100.0
    for bad in ("abc", "-1"):
        with pytest.raises(argparse.ArgumentTypeError, match="off"):
            _double_review(bad)
