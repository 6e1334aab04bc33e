"""`vigil simulate-schedule`: a small world's scheduled posts reach its raw log once each, at
their scheduled millisecond, valid for ingest, with each habit's shape (people's local mornings,
bots' exact cadences, campaigns on the hour), recomputed here from the files."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from datetime import datetime

import pytest

from sim.params import COUNTRIES
from sim.scheduling import plan, publish
from sim.world import simulate
from vigil.errors import UserError
from vigil.stream.events import file_limit_us, parse_event


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    raw = tmp_path_factory.mktemp("world")
    simulate(raw, users=2000, days=2, seed=11)
    posts = plan(raw, seed=5, share=0.05)
    totals = publish(raw, posts)
    return raw, posts, totals


def test_each_scheduled_post_is_in_the_raw_log_once_at_its_time(world):
    raw, posts, totals = world
    assert totals["written"] == len(posts) > 0 and totals.get("late", 0) == 0
    found = defaultdict(list)
    for path in sorted(raw.glob("events/dt=*/hour=*.jsonl")):
        rel = path.relative_to(raw).as_posix()
        for line in path.read_bytes().splitlines():
            if b'"sched-' in line:
                event = json.loads(line)
                assert isinstance(parse_event(line, file_limit_us(rel)), tuple), line
                assert rel.endswith(f"hour={event['event_ts'][11:13]}.jsonl")
                found[event["event_id"]].append(event)
    truth = [json.loads(x) for x in (raw / "_truth" / "scheduled.jsonl").read_text().splitlines()]
    assert len(truth) == len(posts) == len(found)
    for t in truth:
        (event,) = found[f"sched-{t['schedule_id']}"]
        assert (event["user_id"], event["text"], _ms(event["event_ts"])) == (
            t["user_id"],
            t["text"],
            t["scheduled_at"],
        )


def test_habits_have_their_shapes(world):
    raw, posts, _ = world
    kinds = {}
    for line in (raw / "_truth" / "users.jsonl").read_text().splitlines():
        u = json.loads(line)
        kinds[u["user_id"]] = u["kind"]
    home = {}
    for line in (raw / "users.jsonl").read_text().splitlines():
        u = json.loads(line)
        home[u["user_id"]] = u["home_country"]
    offset = {c: o for c, _, o in COUNTRIES}
    by_user = defaultdict(list)
    for p in posts:
        by_user[(p["habit"], p["user_id"])].append(p["scheduled_at"])
    habits = {h for h, _ in by_user}
    assert habits == {"person", "bot", "campaign"}
    for (habit, uid), times in by_user.items():
        times.sort()
        if habit == "person":
            assert kinds[uid] == "ordinary"
            for t in times:
                local_hour = (t // 3_600_000 + offset.get(home[uid], 0)) % 24
                assert 7 <= local_hour <= 9, (uid, t)
        else:
            assert kinds[uid] == "spam_bot"
            assert all(t % 60_000 == 0 for t in times)  # second 0, millisecond 0
            gaps = {b - a for a, b in itertools.pairwise(times)}
            if habit == "bot":
                assert len(gaps) <= 1 and all(g % 3_600_000 == 0 for g in gaps)
            else:
                assert all(t % 3_600_000 == 0 for t in times)  # on the hour


def test_same_seed_same_plan_and_a_world_is_scheduled_once(world):
    raw, posts, _ = world
    assert plan(raw, seed=5, share=0.05) == posts
    with pytest.raises(UserError, match="already has scheduled posts"):
        publish(raw, posts)
