"""The account review queue's order computed by hand, and verdicts read back as labels."""

import json
import math

import pandas as pd
import pytest

from vigil.accounts import queue

CUT = pd.Timestamp("2026-10-08T00:00:00Z")


def _ev(user, action, days_before_cut, target=None):
    return {
        "user_id": user,
        "action": action,
        "event_ts": CUT - pd.Timedelta(days=days_before_cut),
        "text": None,
        "post_id": 1,
        "target_user_id": target,
    }


def events() -> pd.DataFrame:
    rows = []
    # views within the last 7 days: author 10 -> 100, 20 -> 40, 30 -> 10, 40 -> 500
    for author, n in ((10, 100), (20, 40), (30, 10), (40, 500)):
        rows += [_ev(99, "view", 1, author) for _ in range(n)]
    # views older than 7 days do not count: 1,000 for author 30
    rows += [_ev(99, "view", 8, 30) for _ in range(1000)]
    # views after the cut do not count either
    rows += [_ev(99, "view", -1, 20) for _ in range(1000)]
    # reports: 40 has 9, 30 has 2
    rows += [_ev(98, "report", 2, 40) for _ in range(9)] + [_ev(98, "report", 2, 30)] * 2
    return pd.DataFrame(rows)


def test_queue_order_by_hand():
    bots = pd.DataFrame({"user_id": [10, 20], "bot_score": [0.5, 0.9]})
    matches = pd.DataFrame({"user_id": [30], "candidate_id": [7], "rank": [1], "score": [1.8]})
    cl = pd.DataFrame({"user_id": [20, 30], "cluster_id": [1, 1]})
    q = queue.build_queue(events(), CUT, bots, matches, cl).set_index("user_id")
    # 10: p = 0.5, reach 100 -> 50
    # 20: p = 1 - 0.1 * 0.1 = 0.99, reach 40 -> 39.6
    # 30: p_evader = logistic(0) = 0.5, cluster 0.9: p = 1 - 0.5 * 0.1 = 0.95, reach 10 -> 9.5
    # 40: p = 0 -> left out although it has the most reports and views
    assert list(q.index) == [10, 20, 30]
    assert q.loc[10, "expected_harm"] == pytest.approx(50.0)
    assert q.loc[20, "expected_harm"] == pytest.approx(39.6)
    assert q.loc[30, "p_evader"] == pytest.approx(0.5)
    assert q.loc[30, "expected_harm"] == pytest.approx(9.5)
    assert q.loc[30, "reports"] == 2 and q.loc[30, "evasion_candidate"] == 7
    assert list(q["position"]) == [1, 2, 3]
    baseline = queue.report_queue(events(), CUT)
    assert list(baseline["user_id"]) == [40, 30]
    # an account already suspended leaves both queues; positions stay 1, 2, ...
    q2 = queue.build_queue(events(), CUT, bots, matches, cl, suspended={10})
    assert list(q2["user_id"]) == [20, 30] and list(q2["position"]) == [1, 2]
    more = pd.Series({30: 10})  # reports known elsewhere (reported-and-labeled posts)
    b2 = queue.report_queue(events(), CUT, more, suspended={40})
    assert list(b2["user_id"]) == [30] and b2["reports"].iloc[0] == 12


def test_p_evader_is_a_logistic_around_the_threshold():
    cfg = queue.QueueConfig()
    got = queue.p_evader(pd.Series([cfg.evasion_midpoint + 0.5]), cfg).iloc[0]
    assert got == pytest.approx(1 / (1 + math.exp(-cfg.evasion_slope * 0.5)))


def test_verdicts_leave_the_queue_and_come_back_as_labels(tmp_path):
    path = tmp_path / "verdicts.jsonl"
    t = pd.Timestamp("2026-10-09T10:00:00Z").to_pydatetime()
    queue.record_verdict(10, True, "bot", "ana", t, path)
    queue.record_verdict(20, True, "campaign", "ana", t, path)
    queue.record_verdict(20, False, "appeal granted", "bo", t + pd.Timedelta(hours=1), path)
    with path.open("a") as fh:
        fh.write("not json\n")
        fh.write(json.dumps({"user_id": "x", "is_violating": True, "reviewed_at": "2026"}) + "\n")
    verdicts, rejected = queue.read_verdicts(path)
    assert [r["line"] for r in rejected] == [4, 5]
    assert rejected[1]["reason"] == "user_id is not an integer"
    labels = queue.verdict_labels(path).set_index("user_id")
    assert labels.loc[10, "is_violating"] and not labels.loc[20, "is_violating"]
    bots = pd.DataFrame({"user_id": [10, 20], "bot_score": [0.5, 0.9]})
    q = queue.build_queue(events(), CUT, bots, verdicts=verdicts)
    assert q.empty


def test_verdicts_join_the_training_positives(tmp_path):
    path = tmp_path / "verdicts.jsonl"
    t = pd.Timestamp("2026-10-09T10:00:00Z").to_pydatetime()
    queue.record_verdict(10, True, "bot", "ana", t, path)  # a new positive
    queue.record_verdict(11, True, "harassment", "ana", t, path)  # not a bot reason
    queue.record_verdict(12, False, "bot", "ana", t, path)  # judged legitimate
    queue.record_verdict(13, True, "spam", "ana", t, path)  # already a positive
    known = pd.DataFrame(
        {"user_id": [13], "labeled_at": [pd.Timestamp("2026-10-02T00:00:00Z")], "label": [1]}
    )
    out = queue.with_verdict_positives(known, ("bot", "spam"), path)
    assert sorted(out["user_id"]) == [10, 13]
    assert out.set_index("user_id").loc[10, "labeled_at"] == pd.Timestamp(t)
