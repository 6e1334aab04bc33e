"""vigil.stream.triggers: re-score requests on reports, views and negative replies, debounced.

Expected requests are worked out by hand from the event lists below.
"""

from __future__ import annotations

from vigil.stream.triggers import RescoreRequest, Triggers

MIN = 60_000


def _run(trig: Triggers, events: list[tuple[int, str, int]]) -> list[RescoreRequest]:
    out = []
    for post_id, action, ts in events:
        out += trig.observe(post_id, action, ts, negative=action == "reply")
    return out


def test_first_report_and_each_doubling_without_debounce():
    trig = Triggers(debounce_ms=0)
    got = _run(trig, [(7, "report", i * MIN) for i in range(9)])
    # reports 1, 2, 4, 8 (the 9th is not a power of two)
    assert got == [
        RescoreRequest(7, 0, ("first_report",)),
        RescoreRequest(7, 1 * MIN, ("reports_2",)),
        RescoreRequest(7, 3 * MIN, ("reports_4",)),
        RescoreRequest(7, 7 * MIN, ("reports_8",)),
    ]


def test_views_cross_powers_of_two_from_the_minimum():
    trig = Triggers(min_views_power=4, debounce_ms=0)
    got = _run(trig, [(3, "view", i) for i in range(70)])
    assert [(r.at_ms, r.trigger) for r in got] == [
        (15, "views_16"),
        (31, "views_32"),
        (63, "views_64"),
    ]


def test_negative_replies_at_the_steps_and_plain_events_do_nothing():
    trig = Triggers(negative_reply_steps=(3, 10), debounce_ms=0)
    events = [(5, "reply", i) for i in range(12)] + [(5, "like", 100), (5, "share", 101)]
    got = _run(trig, events)
    assert [(r.at_ms, r.trigger) for r in got] == [
        (2, "negative_replies_3"),
        (9, "negative_replies_10"),
    ]


def test_debounce_merges_a_burst_into_one_request_at_the_window_end():
    trig = Triggers(debounce_ms=10 * MIN)
    # post 1: reports at 0, 1, 2, 3 min -> first_report now; reports_2 and reports_4 merged
    # and due at 10 min; post 2: one report at 4 min -> sent at once (its own window).
    events = [(1, "report", 0), (1, "report", MIN), (1, "report", 2 * MIN), (1, "report", 3 * MIN)]
    events += [(2, "report", 4 * MIN)]
    got = _run(trig, events)
    assert got == [
        RescoreRequest(1, 0, ("first_report",)),
        RescoreRequest(2, 4 * MIN, ("first_report",)),
    ]
    assert trig.flush(9 * MIN) == []
    assert trig.flush(12 * MIN) == [RescoreRequest(1, 10 * MIN, ("reports_2", "reports_4"))]
    assert trig.flush(30 * MIN) == []
    # the next trigger after the window (8 reports at 25 min) is sent at once
    got = _run(trig, [(1, "report", 25 * MIN + i) for i in range(4)])
    assert got == [RescoreRequest(1, 25 * MIN + 3, ("reports_8",))]
    assert (trig.sent, trig.merged) == (4, 2)
