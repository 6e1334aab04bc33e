"""Re-score requests decided at their event time (issue 22): the stream's ``at_ms`` is the
decision's ``event_at`` and the day of the spare heavy calls; a re-score of a removed post is
answered without scoring it again when the service skips removed posts."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import moderation_world as world
import pytest

from training.online import SpareCalls

D1 = datetime(2026, 10, 25, 13, tzinfo=UTC)
D2 = datetime(2026, 10, 26, 0, 1, tzinfo=UTC)
FROZEN = datetime(2026, 12, 7, 12, tzinfo=UTC)  # the wall clock: one day, never moving


def test_spare_calls_count_the_requests_event_day_not_the_clock():
    """Budget 2, floor 0.5, tau 0.8 (candidates in [0.4, 0.8)). Day 1: one call at tau, three
    candidates, no spare call (first day). Day 2: k = 2 - 1 = 1, threshold = day 1's highest
    candidate 0.7: 0.75 gets one, 0.65 not; a late day-1 request counts on day 2 (0.72 >= 0.7,
    2nd call), then the day's calls are at the budget."""
    spare = SpareCalls(2, 0.5, clock=lambda: FROZEN)
    spare.count(D1)
    assert [spare.take(s, 0.8, D1) for s in (0.7, 0.6, 0.5)] == [False, False, False]
    assert spare.take(0.3, 0.8, D1) is False  # under the floor: not a candidate
    assert spare.take(0.75, 0.8, D2) is True
    assert spare.threshold == 0.7
    assert spare.take(0.65, 0.8, D2) is False
    assert spare.take(0.72, 0.8, D1) is True  # late: the day under way (day 2) counts it
    assert spare.day == D2.date() and spare.calls == 2
    assert spare.take(0.79, 0.8, D2) is False  # the budget is spent
    # without event times every request is the clock's one day: never a spare call
    clock_only = SpareCalls(2, 0.5, clock=lambda: FROZEN)
    clock_only.count()
    assert [clock_only.take(s, 0.8) for s in (0.7, 0.6, 0.75, 0.79)] == [False] * 4


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The small served world; yields (build, create_app, home)."""
    from vigil.moderation.service import build, create_app

    saved = dict(os.environ)
    home = tmp_path_factory.mktemp("serve-event-time")
    env = world.build(home, "sqlite")
    yield build, create_app, home
    world.teardown(env)
    os.environ.clear()
    os.environ.update(saved)


def _log(home: Path) -> list[dict]:
    return [
        json.loads(line)
        for f in (Path(home) / "decisions").glob("dt=*/*.jsonl")
        for line in f.read_text().splitlines()
    ]


def test_event_time_logged_and_removed_posts_skipped(served):
    from fastapi.testclient import TestClient

    build, create_app, home = served
    at_ms = int(D1.timestamp() * 1000) + 123
    parts = build(heavy="always")  # skip_removed: on by default
    assert parts.skip_removed is True
    with TestClient(create_app(parts)) as client:
        stamped = client.post(
            "/v1/score", json={"post_id": 2, "trigger": "views_16", "at_ms": at_ms}
        ).json()
        plain = client.post("/v1/score", json={"post_id": 2, "trigger": "views_32"}).json()
        assert stamped["event_at"] == "2026-10-25T13:00:00.123000+00:00"
        assert plain["event_at"] is None
        rows = {r["trigger"]: r for r in _log(home) if r["post_id"] == 2}
        assert rows["views_16"]["event_at"] == stamped["event_at"]
        assert rows["views_32"]["event_at"] is None
        # the decision's wall-clock time stays the wall clock's (today, not the event's day)
        assert rows["views_16"]["decided_at"][:10] == datetime.now(UTC).date().isoformat()
        first = {
            p: client.post("/v1/score", json={"post_id": p, "trigger": "creation"}).json()
            for p in range(1, world.N_POSTS)
        }
        removed = [p for p, a in first.items() if a["decision"] == "remove"]
        kept = [p for p, a in first.items() if a["decision"] != "remove"]
        assert removed and kept
        n_rows = len(_log(home))
        p = removed[0]
        again = client.post("/v1/score", json={"post_id": p, "trigger": "first_report"}).json()
        assert again["rescored"] is False and again["decision"] == "remove"
        assert again["decided_at"] == first[p]["decided_at"]
        assert len(_log(home)) == n_rows  # no new decision, no model call
        # a creation-time request is scored as always; a kept post's re-score too
        assert "rescored" not in client.post("/v1/score", json={"post_id": p}).json()
        k = client.post("/v1/score", json={"post_id": kept[0], "trigger": "first_report"}).json()
        assert "rescored" not in k and k["routed_to_heavy"] is True
        assert len(_log(home)) == n_rows + 2
    parts.decisions.close()
    # off (`vigil serve --no-skip-removed`): the removed post is scored again
    parts = build(heavy="always", skip_removed=False)
    with TestClient(create_app(parts)) as client:
        again = client.post("/v1/score", json={"post_id": p, "trigger": "first_report"}).json()
        assert "rescored" not in again and again["routed_to_heavy"] is True
    parts.decisions.close()


def test_spare_calls_follow_the_requests_event_time(served):
    """The served world's cascade with tau 0.55 (as the spare-call test of
    test_rescore_serving.py) and a frozen wall clock: re-score requests stamped on day 1 then
    day 2 get spare calls on day 2 (budget 2: the two highest day-1 candidates' level), which
    the clock alone (one day) never gives."""
    from fastapi.testclient import TestClient

    build, create_app, _ = served
    ref_parts = build(heavy="always")
    with TestClient(create_app(ref_parts)) as c:
        ref = {p: c.post("/v1/score", json={"post_id": p}).json() for p in range(1, world.N_POSTS)}
    ref_parts.decisions.close()
    tau = 0.55
    below = sorted((p for p in ref if ref[p]["student"] < tau), key=lambda p: -ref[p]["student"])
    assert len(below) >= 3
    floor = 0.999 * min(ref[p]["student"] for p in below) / tau
    parts = build(heavy="cascade", spare=(2, floor), skip_removed=False)
    parts.model.tau = tau
    parts.model.spare.clock = lambda: FROZEN
    d1, d2 = (int(d.timestamp() * 1000) for d in (D1, D2))
    with TestClient(create_app(parts)) as client:

        def ask(p, at):
            body = {"post_id": p, "trigger": "views_16", "at_ms": at}
            return client.post("/v1/score", json=body).json()

        day1 = [ask(p, d1)["spare"] for p in below]
        day2 = [ask(p, d2)["spare"] for p in below]
    parts.decisions.close()
    assert day1 == [False] * len(below)
    # k = 2 - 0 calls at tau on day 1: the 2nd highest day-1 score; highest first: the first two
    assert day2 == [True, True] + [False] * (len(below) - 2)
