"""Counters in Redis versioned by stream position (vigil.rules.redis_counters): after a crash
the events replayed from the last checkpoint see what they saw the first time, although Redis
already holds the later events of the lost tail (rolled back from the undo records). On the
Redis server at 127.0.0.1:6379 (keys under ``vigil-rules:test:``, deleted after each test)."""

from __future__ import annotations

import random
import uuid

import pytest

from vigil.rules.engine import Engine, context
from vigil.rules.language import load_rules
from vigil.rules.redis_counters import RedisCounters

pytestmark = pytest.mark.redis

S = 1000
MIN = 60 * S

COUNT_RULE = """\
rules:
  - name: link_busy
    version: 1
    when: post
    expr: count("link", "5m") >= 4
    cooldown: 1h
    effects:
      - {do: review, entity: link}
"""

WAVE_RULES = """\
rules:
  - name: link_wave
    version: 1
    when: post
    expr: link is not None and distinct("link", "user", "1m") >= 4
    cooldown: 30s
    effects:
      - {do: label, entity: user, from: link, label: wave, expires: 2m}
  - name: busy
    version: 1
    when: [post, like]
    expr: count("user", "1m") >= 5 and not label("user", "wave")
    cooldown: 20s
    effects:
      - {do: review, entity: user}
"""


@pytest.fixture
def redis_prefix():
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    prefix = f"vigil-rules:test:{uuid.uuid4().hex[:8]}:"
    yield client, prefix
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


def _ruleset(tmp_path, text):
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return load_rules(path)


def _post(i, ts, user, link, action="post"):
    text = f"see https://x.example/{link}" if link is not None else "hi"
    return context((f"e{i}", ts, user, action, None, None, None, text, None))


def _restart(rs, client, prefix, position: int, labels=None, fired=None, defer=True) -> Engine:
    """A new processor on the same Redis keys, resuming at a checkpoint's position and state."""
    counters = RedisCounters(client, prefix, chunk=3, defer_prune=defer, flush_events=5)
    counters.position = counters.committed = position
    eng = Engine(rs, counter_factory=counters)
    eng.labels, eng.fired = dict(labels or {}), dict(fired or {})
    return eng


def test_a_replayed_event_counts_only_events_up_to_its_position(tmp_path, redis_prefix):
    """Five posts of one link 200 ms apart (one bucket of the 5-minute window), threshold 4:
    from the definition the rule fires at the 4th post. A run checkpoints after the 2nd post,
    applies all five, writes them to Redis (inside its next checkpoint) and dies before that
    checkpoint commits. Resuming at the checkpoint's position (Redis rolled back to it), the
    replay fires at the 4th post, as the uninterrupted run; resuming on what Redis holds
    without rolling back (the lost tail counted once more) it fires at the 3rd: earlier than
    the definition says."""
    client, prefix = redis_prefix
    rs = _ruleset(tmp_path, COUNT_RULE)
    events = [_post(i, 1_000 * S + 200 * i, 10 + i, "a") for i in range(5)]
    # from the definition: posts with the link at or before event i within its window (5 min)
    first = next(i for i in range(5) if sum(e[8] == events[i][8] for e in events[: i + 1]) >= 4)
    assert first == 3

    def fired_at(eng, evs):
        eng.process_all(evs)
        return [e["event_id"] for e in eng.take_effects()]

    uninterrupted = _restart(rs, client, prefix + "u:", 0)
    assert fired_at(uninterrupted, events) == ["e3"]

    crashed = _restart(rs, client, prefix, 0)
    crashed.process_all(events[:2])  # checkpoint here: position 2, no effects yet
    crashed.counter_factory.committed = 2
    crashed.process_all(events[2:])  # the lost tail: in Redis, its effects never committed
    crashed.counter_factory.flush()
    assert crashed.take_effects()[0]["event_id"] == "e3"
    no_rollback = _restart(rs, client, prefix, 5)  # as if the tail had been committed
    assert fired_at(no_rollback, events[2:]) == ["e2"]
    assert fired_at(_restart(rs, client, prefix, 2), events[2:]) == ["e3"]


def _events(seed: int, n: int) -> list[tuple]:
    """Posts of 5 links by 12 users and likes, ~2 s apart (a lost tail of 40 events spans more
    than a window), 10% late by up to 50 s (less than the 1-minute windows)."""
    rng = random.Random(seed)
    out, t = [], 0
    for i in range(n):
        t += rng.randrange(0, 4 * S)
        ts = t - rng.randrange(0, 50 * S) if rng.random() < 0.1 else t
        user = rng.randrange(1, 13)
        if rng.random() < 0.7:
            out.append(_post(i, ts, user, rng.randrange(5)))
        else:
            out.append(_post(i, ts, user, None, action="like"))
    return out


def _run_with_crashes(rs, client, prefix, events, seed: int, rollback=True) -> list:
    """Batches of 1-12 events (Redis written every 5 events); after each, a checkpoint (prune at
    the horizon, effects taken, position committed: Redis written first) or, one time in four, a
    crash: in the middle of the batches, inside the checkpoint after its prune, or after its
    Redis write. The process resumes from the last checkpoint (its position, labels, cooldowns
    and offset) on the same Redis keys (``rollback=False``: at the position Redis holds, which
    keeps the lost tail). The committed effects, in order."""
    rng = random.Random(seed)
    committed_effects: list[dict] = []
    ckpt = (0, {}, {}, 0)  # position, labels, cooldowns, next event
    eng, i, crashes = _restart(rs, client, prefix, 0), 0, 0
    while i < len(events):
        batch = events[i : i + rng.randrange(1, 13)]
        eng.process_all(batch)
        i += len(batch)
        crash = rng.random() < 0.25
        if not crash or rng.random() < 0.5:
            eng.prune(max(e[1] for e in events[:i]) - 3 * 60 * S)  # lateness 3 min
            if crash and rng.random() < 0.5:
                eng.counter_factory.flush()
        if crash:
            crashes += 1
            # the dead process's last flush, if in flight, reached Redis (Redis is ahead)
            eng.counter_factory.drain()
            position = ckpt[0] if rollback else eng.counter_factory.written
            eng = _restart(rs, client, prefix, position, ckpt[1], ckpt[2])
            i = ckpt[3]
            continue
        committed_effects += eng.take_effects()
        eng.counter_factory.committed = eng.counter_factory.position
        ckpt = (eng.counter_factory.position, dict(eng.labels), dict(eng.fired), i)
    assert crashes >= 10
    return committed_effects


def test_crashes_and_replays_give_the_uninterrupted_runs_effects(tmp_path, redis_prefix):
    """600 random events, crashes at random points: the committed effects equal an uninterrupted
    run's with the in-process counters (the reference), which fires both rules; resuming without
    the positions (the old scheme) gives other effects."""
    client, prefix = redis_prefix
    rs = _ruleset(tmp_path, WAVE_RULES)
    events = _events(3, 600)
    ref = Engine(rs)
    ref.process_all(events)
    want = ref.take_effects()
    assert {e["rule"] for e in want} == {"link_wave", "busy"}
    got = _run_with_crashes(rs, client, prefix, events, seed=7)
    assert got == want
    old = _run_with_crashes(rs, client, prefix + "old:", events, seed=7, rollback=False)
    assert old != want


@pytest.mark.parametrize("defer", [True, False])
def test_the_watermark_prune_waits_for_a_committed_checkpoint(tmp_path, redis_prefix, defer):
    """Link A posted at 0, 10 and 15 s; checkpoint. The next batch posts A at 20 s (the 4th post
    in 5 minutes: the rule fires there, from the definition) and other links for an hour; the
    checkpoint after it prunes at its horizon (the hour's end minus 10 minutes of lateness, where
    A has been idle for far more than two windows) and dies before committing. The replay of A
    at 20 s must still see A's first three posts: it does when the prune runs one checkpoint late
    (the committed horizon), and not when it runs at once."""
    client, prefix = redis_prefix
    rs = _ruleset(tmp_path, COUNT_RULE)
    lateness = 10 * 60 * S
    first = [_post(0, 0, 1, "a"), _post(1, 10 * S, 2, "a"), _post(2, 15 * S, 3, "a")]
    lost = [_post(3, 20 * S, 4, "a")]
    lost += [_post(4 + k, 30 * S + k * MIN, 5, f"b{k}") for k in range(60)]
    eng = _restart(rs, client, prefix, 0, defer=defer)
    eng.process_all(first)
    eng.prune(first[-1][1] - lateness)  # the checkpoint after the first batch: committed
    eng.counter_factory.committed = eng.counter_factory.position
    assert eng.take_effects() == []
    eng.process_all(lost)
    assert [e["event_id"] for e in eng.take_effects()] == ["e3"]  # lost with the crash
    eng.prune(lost[-1][1] - lateness)  # inside the next checkpoint, which never commits
    eng.counter_factory.flush()
    replay = _restart(rs, client, prefix, 3, defer=defer)
    replay.process_all(lost)
    fired = [e["event_id"] for e in replay.take_effects()]
    assert fired == (["e3"] if defer else [])
