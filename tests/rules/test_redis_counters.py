"""Counters kept in Redis (vigil.rules.redis_counters) against the definition and against the
in-process counters, on the Redis server at 127.0.0.1:6379 (keys under ``vigil-rules:test:``,
deleted after each test): a brute force over random events (some late), the default rules'
verdicts on a replayed stream, idempotent updates and pruning."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import pytest

from vigil.rules.engine import Engine, context
from vigil.rules.language import load_rules
from vigil.rules.redis_counters import RedisCounter, RedisCounters, redis_counter_factory

pytestmark = pytest.mark.redis

S = 1000
MIN = 60 * S
DEFAULT_RULES = Path(__file__).resolve().parents[2] / "vigil" / "rules" / "default_rules.yaml"


@pytest.fixture
def redis_prefix():
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    prefix = f"vigil-rules:test:{uuid.uuid4().hex[:8]}:"
    yield client, prefix
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


def _ev(i, ts, user, action="post", text=None, post=None, target=None, fp=None):
    return context((f"e{i}", ts, user, action, target, None, post, text, fp))


def _engines(tmp_path, text, client, prefix):
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    rs = load_rules(path)
    return Engine(rs), Engine(rs, counter_factory=redis_counter_factory(client, prefix))


def _brute(events, i, window_ms, key, of=None):
    """From the definition: events at or before i (in order) with i's key whose bucket is among
    the 60 ending with i's bucket; their number, or the number of distinct ``of`` values."""
    b = max(1000, window_ms // 60)
    hit = [
        ev
        for ev in events[: i + 1]
        if ev[key] == events[i][key] and events[i][1] // b - 60 < ev[1] // b <= events[i][1] // b
    ]
    return len(hit) if of is None else len({ev[of] for ev in hit})


RULE = """\
rules:
  - name: r
    version: 1
    when: post
    expr: count("user", "7m") + distinct("link", "user", "2h") < 0
    effects:
      - {do: review, entity: user}
"""


def test_redis_counters_equal_a_brute_force_on_random_events_some_late(tmp_path, redis_prefix):
    client, prefix = redis_prefix
    _, remote = _engines(tmp_path, RULE, client, prefix)
    count, distinct = (remote.counters[k] for k in sorted(remote.counters))
    assert isinstance(count, RedisCounter) and count.spec.kind == "count"
    rng = random.Random(5)
    events, t = [], 0
    for i in range(400):
        t += rng.randrange(0, 40 * S)
        ts = t - rng.randrange(0, 7 * MIN) if rng.random() < 0.1 else t  # late, < a window
        link = f"https://l.example/{rng.randrange(6)}"
        events.append(_ev(i, ts, rng.randrange(1, 8), text=f"x {link}"))
    for i, e in enumerate(events):
        remote.process(e)
        assert count.query(e) == _brute(events, i, 7 * MIN, key=2), i
        assert distinct.query(e) == _brute(events, i, 2 * 60 * MIN, key=8, of=2), i
    # members: the users of the last event's link in its window, ints sorted
    last = events[-1]
    want = sorted(
        {ev[2] for ev in events if ev[8] == last[8] and ev[1] // 120_000 > last[1] // 120_000 - 60}
    )
    assert distinct.members(last) == want
    # written to Redis, then pruned two windows after the last event: no key of these counters
    # is left (only the position Redis holds, the undo epoch and the undo hash)
    remote.counter_factory.flush()
    assert len(list(client.scan_iter(match=f"{prefix}*"))) > 10
    remote.prune(events[-1][1] + 5 * 60 * MIN)
    left = {k.decode()[len(prefix) :] for k in client.scan_iter(match=f"{prefix}*")}
    assert left <= {"pos", "epoch", "undo"} and "pos" in left


def test_holding_nothing_reads_every_entity_back_from_redis_exactly(tmp_path, redis_prefix):
    """With ``hold=0`` the processor forgets every entity after each flush (every 7 events, not
    waited for), so each event's entities are read back from Redis: the answers still equal the
    brute force on the random events of the test above (10% late)."""
    client, prefix = redis_prefix
    path = tmp_path / "rules.yaml"
    path.write_text(RULE)
    counters = RedisCounters(client, prefix, flush_events=7, hold=0)
    remote = Engine(load_rules(path), counter_factory=counters)
    count, distinct = (remote.counters[k] for k in sorted(remote.counters))
    rng = random.Random(5)
    events, t = [], 0
    for i in range(400):
        t += rng.randrange(0, 40 * S)
        ts = t - rng.randrange(0, 7 * MIN) if rng.random() < 0.1 else t
        link = f"https://l.example/{rng.randrange(6)}"
        events.append(_ev(i, ts, rng.randrange(1, 8), text=f"x {link}"))
    for i, e in enumerate(events):
        remote.process(e)
        counters.load(remote.plan, [e])  # what a flush forgot, read again
        assert count.query(e) == _brute(events, i, 7 * MIN, key=2), i
        assert distinct.query(e) == _brute(events, i, 2 * 60 * MIN, key=8, of=2), i
    assert counters.reads > 300 and counters.calls >= 400 // 7


def test_a_batch_applied_again_after_a_crash_is_counted_once(tmp_path, redis_prefix):
    """e1 is checkpointed (position 1); e2 and e3 are applied (written to Redis) and the process
    dies before the next checkpoint. A new processor at position 1 applies e2 and e3 again: each
    is counted once (3 posts of user 4 in the window at e3, from the definition)."""
    client, prefix = redis_prefix
    path = tmp_path / "rules.yaml"
    path.write_text(RULE)
    rs = load_rules(path)
    e1, e2, e3 = _ev(1, 10 * S, 4, text="a"), _ev(2, 20 * S, 4, text="b"), _ev(3, 30 * S, 4)
    first = RedisCounters(client, prefix)
    eng = Engine(rs, counter_factory=first)
    eng.process_all([e1])
    first.committed = first.position  # the checkpoint
    eng.process_all([e2, e3])  # lost with the crash
    first.flush()  # inside the next checkpoint: Redis written, then the process dies
    again = RedisCounters(client, prefix)
    again.position = again.committed = 1
    eng = Engine(rs, counter_factory=again)
    eng.process_all([e2, e3])
    count = next(c for c in eng.counters.values() if c.spec.kind == "count")
    assert again.recovered["rolled_back_fields"] > 0
    assert count.query(e3) == 3
    # 7 minutes after e3 (window 7 min, buckets of 7 s): e1-e3 have left the window
    assert count.query(_ev(4, 30 * S + 7 * MIN, 4)) == 0


def test_default_rules_decide_the_same_with_redis_counters(tmp_path, redis_prefix):
    """A replayed stream of a campaign (12 accounts post one link within minutes), a bursty
    poster, a follow-churner and a device shared by 5 accounts, among 40 ordinary accounts."""
    client, prefix = redis_prefix
    rs = load_rules(DEFAULT_RULES)
    local = Engine(rs)
    remote = Engine(rs, counter_factory=redis_counter_factory(client, prefix))
    rng = random.Random(11)
    rows = []  # (ts, user, action, text, post, target, fingerprint)
    for wave in (1, 3, 5):  # the campaign: 12 accounts post one link within 3 minutes, 3 waves
        for u in range(100, 112):
            t = wave * 3600 * S + rng.randrange(0, 3 * MIN)
            rows.append((t, u, "post", "vote https://camp.example/c1", None, None, None))
    for burst in (2, 4):  # the bursty poster: 8 posts 20 s apart
        rows += [
            (burst * 3600 * S + k * 20 * S, 200, "post", "buy now", None, None, None)
            for k in range(8)
        ]
    for k in range(40):  # the follow-churner: 40 follows and unfollows within 40 minutes
        act = "follow" if k % 3 else "unfollow"
        rows.append((30 * MIN + k * MIN, 300, act, None, None, 1 + k % 30, None))
    for u in range(400, 405):  # five accounts log in from one device within the day
        rows.append((u * 7 * MIN, u, "login", None, None, None, "d-shared"))
    for _ in range(1000):  # 40 ordinary accounts: news links and likes over six hours
        t, u = rng.randrange(0, 6 * 3600 * S), rng.randrange(1, 41)
        if rng.random() < 0.5:
            text = f"wow https://news.example/{rng.randrange(30)}"
            rows.append((t, u, "post", text, None, None, None))
        else:
            rows.append((t, u, "like", None, rng.randrange(1, 50), u % 7 + 1, None))
    rows.sort(key=lambda r: (r[0], r[1]))
    events = [
        _ev(i, t, u, action=a, text=x, post=p, target=tg, fp=fp)
        for i, (t, u, a, x, p, tg, fp) in enumerate(rows)
    ]
    for e in events:
        local.process(e)
        remote.process(e)
    want, got = local.take_effects(), remote.take_effects()
    rules_fired = {e["rule"] for e in want}
    # the stream is built to make four of the rules act; both engines decide the same effects
    assert {"coordinated_link", "post_burst", "follow_churn", "shared_device"} <= rules_fired
    assert got == want
    assert local.labels == remote.labels


def test_a_prefix_is_required():
    with pytest.raises(ValueError, match="prefix"):
        redis_counter_factory(object(), "")


def test_redis_holds_the_in_process_buckets_and_a_second_writer_is_refused(tmp_path, redis_prefix):
    """After a flush, each (counter, entity) hash in Redis holds the in-process counter's buckets
    (counts; a distinct count's values as a JSON list), so another process can read them; a
    second processor writing on the same prefix is refused with one error."""
    import json

    from vigil.rules.redis_counters import RedisStateError

    client, prefix = redis_prefix
    local, remote = _engines(tmp_path, RULE, client, prefix)
    rng = random.Random(9)
    events = [
        _ev(i, i * 3 * S, rng.randrange(1, 5), text=f"x https://l.example/{rng.randrange(3)}")
        for i in range(300)
    ]
    local.process_all(events)
    remote.process_all(events)
    remote.counter_factory.flush()
    for key, c in local.counters.items():
        r = remote.counters[key]
        assert c.table, key
        for v, (_, buckets, _) in c.table.items():
            enc = f"i:{v}" if isinstance(v, int) else f"s:{v}"
            got = client.hgetall(r.base + enc)
            if c.distinct:
                got = {int(b): set(json.loads(x)) for b, x in got.items()}
            else:
                got = {int(b): int(x) for b, x in got.items()}
            assert got == buckets, (key, v)
    other = RedisCounters(client, prefix)
    other.position = other.committed = remote.counter_factory.position
    Engine(load_rules(tmp_path / "rules.yaml"), counter_factory=other).process_all(events[:5])
    other.flush()
    remote.process_all(events[:5])
    with pytest.raises(RedisStateError, match="another processor"):
        remote.counter_factory.flush()


@pytest.mark.parametrize("bad", ["0", "ten", "-5"])
def test_a_bad_flush_setting_is_one_error(redis_prefix, monkeypatch, bad):
    from vigil.errors import UserError

    client, prefix = redis_prefix
    monkeypatch.setenv("VIGIL_RULES_REDIS_FLUSH_EVENTS", bad)
    with pytest.raises(UserError, match="VIGIL_RULES_REDIS_FLUSH_EVENTS"):
        RedisCounters(client, prefix)
    monkeypatch.setenv("VIGIL_RULES_REDIS_FLUSH_EVENTS", "250")
    assert RedisCounters(client, prefix).flush_events == 250


def test_values_read_back_after_a_restart_stay_json(tmp_path, redis_prefix):
    """Distinct users per link, one user id a string ("u1", as hand-made events may have) and
    the next an int, in one bucket across a restart (the bucket read back from Redis): the
    bucket in Redis stays a JSON list, which a third processor reads back."""
    import json

    client, prefix = redis_prefix
    path = tmp_path / "rules.yaml"
    path.write_text(RULE)
    rs = load_rules(path)
    e1 = _ev(1, 10 * S, "u1", text="see https://a.example/x")
    e2 = _ev(2, 11 * S, 5, text="see https://a.example/x")
    first = RedisCounters(client, prefix)
    Engine(rs, counter_factory=first).process_all([e1])
    first.committed = first.position
    again = RedisCounters(client, prefix)
    again.position = again.committed = 1
    eng = Engine(rs, counter_factory=again)
    eng.process_all([e2])
    again.committed = again.position
    distinct = next(c for c in eng.counters.values() if c.distinct)
    assert distinct.query(e2) == 2
    (raw,) = client.hgetall(distinct.base + "s:https://a.example/x").values()
    assert sorted(json.loads(raw), key=str) == [5, "u1"]
    third = RedisCounters(client, prefix)
    third.position = third.committed = 2
    eng = Engine(rs, counter_factory=third)
    third.load(eng.plan, [e2])
    assert next(c for c in eng.counters.values() if c.distinct).members(e2) == [5, "u1"]
