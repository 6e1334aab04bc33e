"""sim.rescore_trigger_times on hand-made raw files and a hand-made decision log: which views_N
requests sit at the N-th view by event time, by arrival order, both or neither (issue 22)."""

from __future__ import annotations

import json

from sim.rescore_trigger_times import classify, read_requests, read_views


def _view(event_id: str, post_id: int, ts: str) -> str:
    return json.dumps({"event_id": event_id, "event_ts": ts, "action": "view", "post_id": post_id})


def test_views_requests_by_event_time_and_arrival(tmp_path):
    day = tmp_path / "raw" / "events" / "dt=2026-10-25"
    day.mkdir(parents=True)
    (day / "hour=00.jsonl").write_text(
        "\n".join(
            [
                _view("e1", 1, "2026-10-25T00:01:00.000Z"),
                _view("e2", 1, "2026-10-25T00:02:00.000Z"),
                '{"event_id": "bad", "action": "view", "post_id": 1, "event_ts"',  # corrupt
                _view("e4", 1, "2026-10-25T00:04:00.000Z"),
                _view("e9", 2, "2026-10-25T00:00:30.000Z"),
            ]
        )
        + "\n"
    )
    # hour 01: a late view of post 1 (00:03, after 00:04 in the files) and a duplicate of e2
    (day / "hour=01.jsonl").write_text(
        _view("e3", 1, "2026-10-25T00:03:00.000Z")
        + "\n"
        + _view("e2", 1, "2026-10-25T00:02:00.000Z")
        + "\n"
    )
    # post 1 by event time: 00:01 00:02 00:03 00:04; by arrival: 00:01 00:02 00:04 00:03
    log = tmp_path / "decisions" / "dt=2026-12-07"
    log.mkdir(parents=True)
    rows = [
        (1, "views_2", "2026-10-25T00:02:00+00:00"),  # both orders
        (1, "views_3", "2026-10-25T00:04:00+00:00"),  # arrival only (the late view)
        (1, "views_4", "2026-10-25T00:04:00+00:00"),  # event time only
        (1, "views_2+first_report", "2026-10-25T00:02:00+00:00"),  # merged: not counted
        (1, "shadow", "2026-10-25T00:09:00+00:00"),  # a shadow line: left out
        (2, "first_report", "2026-10-25T00:05:00+00:00"),
        (2, "views_1", "2026-10-25T00:15:00+00:00"),  # neither, 10 min after the previous
        (2, "views_1", "2026-10-25T00:20:00+00:00"),  # neither, 5 min after the previous
    ]
    (log / "decisions-1.jsonl").write_text(
        "".join(
            json.dumps({"post_id": p, "trigger": t, "event_at": at}) + "\n" for p, t, at in rows
        )
    )
    views = read_views(tmp_path / "raw", ["2026-10-25"])
    assert sorted(views["event_id"]) == ["e1", "e2", "e3", "e4", "e9"]
    requests = read_requests(tmp_path / "decisions")
    assert len(requests) == 7
    assert classify(views, requests) == {
        "views_requests": 5,
        "event_time_and_arrival": 1,
        "arrival_only": 1,
        "event_time_only": 1,
        "neither": 2,
        "neither_debounced": 1,
    }
