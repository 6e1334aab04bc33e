"""Triggered vs fixed re-scoring (sim.rescore_replay): hand-made timelines with hand-computed
views prevented for both schedules, the heavy-model budget, and a small simulated world."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from sim import rescore_replay as rr
from vigil.stream.triggers import Triggers

T0 = pd.Timestamp("2026-10-01 00:00", tz="UTC")
OFFSETS = (0.0, 1.0, 6.0, 24.0)


def minute(m: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=m)


def frame(rows: list[tuple[int, float, str]]) -> pd.DataFrame:
    ev = pd.DataFrame(rows, columns=["post_id", "minute", "action"])
    ev["ts"] = [minute(m) for m in ev["minute"]]
    ev["ts_ms"] = (ev["ts"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    ev["text"] = None
    return ev.drop(columns=["minute"])


def hand_made():
    """Post 1 (harmful): a view each minute 1..20, a report at 30, a view each minute 31..110
    (100 views). Post 2 (benign): a view each minute 1..40. Post 3 (harmful): views 1..16, a report
    at 20, views 21..70 (66 views). All created at 00:00."""
    rows = [(1, m, "view") for m in range(1, 21)] + [(1, 30, "report")]
    rows += [(1, m, "view") for m in range(31, 111)]
    rows += [(2, m, "view") for m in range(1, 41)]
    rows += [(3, m, "view") for m in range(1, 17)] + [(3, 20, "report")]
    rows += [(3, m, "view") for m in range(21, 71)]
    posts = pd.DataFrame({"post_id": [1, 2, 3], "created_at": [T0, T0, T0]})
    harmful = pd.Series({1: True, 2: False, 3: True})
    return posts, frame(rows), harmful


def rr_lines(files) -> list[dict]:
    """The raw files' JSON lines; the simulator writes some broken ones on purpose: skipped."""
    rows = []
    for path in files:
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows


def report_scorer(events: pd.DataFrame):
    """A stand-in cascade on counters as of the moment: a post with a report or a negative reply
    by then scores 0.9 (student and heavy), else 0.1."""
    flags = events[(events["action"] == "report") | events.get("negative", False)]
    first = flags.groupby("post_id")["ts"].min()

    def score(moments: pd.DataFrame) -> pd.DataFrame:
        out = moments.copy()
        flagged_at = out["post_id"].map(first)
        hit = flagged_at.notna() & (flagged_at <= out["scored_at"])
        out["student"] = out["heavy"] = hit.map({True: 0.9, False: 0.1})
        out["day"] = out["scored_at"].dt.strftime("%Y-%m-%d")
        return out

    return score


def test_hand_made_timeline_both_schedules():
    posts, events, harmful = hand_made()
    got = rr.compare(
        posts, events, harmful, report_scorer(events), 0.5, 0.8, OFFSETS, Triggers(), None
    )
    fixed, triggered = got["fixed"], got["triggered"]
    # fixed: creation (no report: 0.1), +1 h (reports by then: removed at 01:00); +6 h and +24 h
    # fall after the data ends (01:50). Post 1: views 61..110 = 50 after 01:00; post 3: 61..70 = 10.
    assert fixed["harmful_views_total"] == 100 + 66
    assert fixed["harmful_views_prevented"] == 50 + 10
    # triggered: post 1: views_16 at 16 (0.1), first_report at 30 (14 min after: sent now) ->
    # removed at 30, views 31..110 = 80. Post 3: views_16 at 16, first_report at 20 merged
    # (debounce 10 min) and due at 26, sent by post 3's view at 26 -> removed at 26: 27..70 = 44.
    assert triggered["harmful_views_prevented"] == 80 + 44
    assert triggered["harmful_views_prevented_share"] == pytest.approx(124 / 166)
    assert fixed["harmful_views_prevented_share"] == pytest.approx(60 / 166)
    assert triggered["prevented_share_by_day"] == {"2026-10-01": round(124 / 166, 4)}
    # heavy calls: only moments with a report by then route (student 0.9 >= tau 0.5): one per
    # harmful post in both schedules, and the removed posts are not scored again.
    assert fixed["heavy_calls"] == triggered["heavy_calls"] == 2
    assert fixed["benign_posts_removed"] == triggered["benign_posts_removed"] == 0
    assert got["triggers_by_reason"] == {"creation": 3, "views": 8, "first_report": 2}


def test_missed_views_by_kind_of_post_by_hand():
    """The triggered schedule's missed harmful views by kind: post 1 removed at 30 misses its 20
    views before, post 3 removed at 26 its 22 (66 - 44); with a removal threshold above every
    heavy score both are routed but never removed (166 missed); with tau above every student
    score neither is routed."""
    posts, events, harmful = hand_made()
    kinds = {}
    for tau, threshold in ((0.5, 0.8), (0.5, 0.95), (0.95, 0.8)):
        got = rr.compare(
            posts, events, harmful, report_scorer(events), tau, threshold, OFFSETS, Triggers(), None
        )
        kinds[tau, threshold] = {
            k: (v["posts"], v["missed_harmful_views"])
            for k, v in got["triggered"]["missed_by_kind"].items()
        }
    assert kinds[0.5, 0.8] == {
        "removed": (2, 42),
        "routed, not removed": (0, 0),
        "never routed": (0, 0),
    }
    assert kinds[0.5, 0.95] == {
        "removed": (0, 0),
        "routed, not removed": (2, 166),
        "never routed": (0, 0),
    }
    assert kinds[0.95, 0.8] == {
        "removed": (0, 0),
        "routed, not removed": (0, 0),
        "never routed": (2, 166),
    }


def test_budget_keeps_the_strongest_and_stops_at_n():
    day1, day2 = "2026-10-01", "2026-10-02"
    scored = pd.DataFrame(
        {
            "post_id": [1, 2, 3, 4, 5, 6],
            "scored_at": [minute(m) for m in (10, 20, 30, 1450, 1460, 1470)],
            "day": [day1, day1, day1, day2, day2, day2],
            "student": [0.6, 0.9, 0.7, 0.65, 0.95, 0.8],
            "heavy": [0.9, 0.9, 0.9, 0.9, 0.9, 0.9],
        }
    )
    free = rr.run_schedule(scored, tau=0.5, threshold=0.8)
    assert free.heavy_calls == {day1: 3, day2: 3}
    capped = rr.run_schedule(scored, tau=0.5, threshold=0.8, budget=2)
    # day 1: no earlier day, threshold tau; the first two candidates use the budget, post 3 not.
    # day 2: threshold = 2nd highest student of day 1's candidates (0.7): post 4 (0.65) skipped.
    assert capped.heavy_calls == {day1: 2, day2: 2}
    assert set(capped.removed_at) == {1, 2, 5, 6}


def test_spare_calls_go_to_rescore_moments_below_tau():
    day1, day2 = "2026-10-01", "2026-10-02"
    rows = [  # (post, minute, student, trigger)
        (1, 10, 0.3, "creation"),
        (2, 20, 0.4, "reports_1"),
        (3, 30, 0.6, "views_16"),
        (4, 40, 0.35, "first_report"),
        (5, 50, 0.1, "views_32"),
        (6, 1450, 0.36, "first_report"),
        (7, 1460, 0.45, "creation"),
        (8, 1470, 0.34, "views_16"),
        (9, 1480, 0.7, "views_16"),
        (10, 1490, 0.5, "views_64"),
        (11, 1500, 0.4, "first_report"),
        (12, 1510, 0.9, "views_16"),
    ]
    scored = pd.DataFrame(rows, columns=["post_id", "minute", "student", "trigger"])
    scored = scored.assign(
        scored_at=[minute(m) for m in scored["minute"]],
        day=[day1 if m < 1440 else day2 for m in scored["minute"]],
        heavy=0.9,
    )
    plain = rr.run_schedule(scored, tau=0.5, threshold=0.8)
    assert plain.heavy_calls == {day1: 1, day2: 3}
    assert set(plain.removed_at) == {3, 9, 10, 12}
    spare = rr.run_schedule(scored, tau=0.5, threshold=0.8, spare=(0.2, 3))
    # day 1: no earlier day, no spare path (posts 2 and 4 are its candidates; 5 is below the
    # floor, 1 a creation). Day 2: 3 - 1 call at tau on day 1 = 2 spare calls: the threshold is
    # the 2nd highest of day 1's candidates, 0.35: post 6 (0.36) is routed and removed, 7 is a
    # creation, 8 (0.34) is below; 9 and 10 at tau make 3 calls, so 11 (0.4) is stopped; 12 is
    # at tau (the spare path never holds back the cascade's own routing)
    assert spare.heavy_calls == {day1: 1, day2: 4}
    assert set(spare.removed_at) == {3, 6, 9, 10, 12}


@pytest.mark.slow
def test_small_simulated_world_triggered_beats_fixed(tmp_path, monkeypatch):
    """A small simulated world's events, ingested into the lake, through the real trigger logic,
    with the stand-in scorer: triggered prevents at least as many harmful views as fixed, with no
    more heavy calls a day once the budget is the fixed schedule's."""
    from sim import truth
    from sim.world import simulate
    from vigil import config
    from vigil.lake.ingest import ingest
    from vigil.stream.rescore import is_negative_reply

    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    raw = config.paths().raw
    simulate(raw, users=1500, days=5, seed=5, progress=False)
    ingest(raw)
    t = truth.posts(raw)
    posts = t[["post_id", "created_at"]].assign(
        created_at=pd.to_datetime(t["created_at"], utc=True)
    )
    events = rr.read_events(sorted(t["day"].unique()))
    events["negative"] = [
        a == "reply" and is_negative_reply(x) for a, x in zip(events["action"], events["text"])
    ]
    harmful = t.set_index("post_id")["is_harmful"]
    assert harmful.sum() > 0 and len(events) > 1000
    got = rr.compare(
        posts, events, harmful, report_scorer(events), 0.5, 0.8, OFFSETS, Triggers(), "fixed"
    )
    fixed, trig = got["fixed"], got["triggered_final"]
    views = events[events["action"] == "view"]
    assert fixed["harmful_views_total"] == int(views["post_id"].map(harmful).fillna(False).sum())
    assert trig["harmful_views_prevented"] >= fixed["harmful_views_prevented"] > 0
    assert trig["heavy_calls_per_day"] <= fixed["heavy_calls_per_day"]


def test_exact_counters_by_hand():
    """Features as of each moment from the events up to it, through the stream's own
    vigil.stream.post_counters (the prior: platform rates by the post's age bucket)."""
    ev = frame([(1, 1, "view"), (1, 2, "view"), (1, 2, "report"), (1, 3, "view"), (1, 3, "reply")])
    ev["negative"] = [False, False, False, False, True]
    cols = ["post_behavior__views", "post_behavior__reports", "post_behavior__replies"]
    cols += ["post_behavior__negative_replies", "post_behavior__reports_per_view"]
    cols += ["post_behavior__post_age_hours", "post_behavior__negative_reactions_per_view"]
    moments = pd.DataFrame(
        {
            "post_id": [1, 1],
            "created_at": [T0, T0],
            "scored_at": [minute(2.5), minute(3)],
            **{c: [float("nan")] * 2 for c in cols},  # the hourly snapshot: replaced
        }
    )
    created = {1: int(T0.value // 1_000_000)}
    got = rr.exact_counters(moments, ev, cols, created)
    assert list(got["post_behavior__views"]) == [2, 3]
    assert list(got["post_behavior__reports"]) == [1, 1]
    assert list(got["post_behavior__replies"]) == [0, 1]
    assert list(got["post_behavior__negative_replies"]) == [0, 1]
    assert got["post_behavior__post_age_hours"].tolist() == pytest.approx([2.5 / 60, 3 / 60])
    # every reaction in the first hour (bucket 0): at 2.5 min the platform has 2 views, 1 report
    # (p = 1/2): (1 + 100/2) / (2 + 100); at 3 min 3 views, 1 report, 1 negative reply:
    # reports (1 + 100/3) / 103, negative reactions (2 + 100 x 2/3) / 103
    assert got["post_behavior__reports_per_view"].tolist() == pytest.approx(
        [51 / 102, (1 + 100 / 3) / 103]
    )
    assert got["post_behavior__negative_reactions_per_view"].tolist() == pytest.approx(
        [51 / 102, (2 + 200 / 3) / 103]
    )
