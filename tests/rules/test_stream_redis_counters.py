"""`vigil stream --rules FILE --rules-counters redis`: the rules' counters in Redis, the offsets,
labels, cooldowns and effects in the SQLite checkpoint. The effects equal the in-process
counters' run; kill -9 and restart give an effects log byte-identical to an uninterrupted run's
(Redis is rolled back to the checkpoint's stream position before the events are replayed).
On the Redis server at 127.0.0.1:6379, keys under ``vigil-rules:test:`` (deleted after)."""

from __future__ import annotations

import contextlib
import random
import signal
import sqlite3
import time
import uuid

import pytest

from tests.rules.test_stream_rules import HEAVY_VIEWER, _rules, _run, _vigil_stream
from tests.stream.test_stream_rescore import write_world
from vigil.rules.language import RuleError
from vigil.rules.redis_counters import RedisCounters
from vigil.stream.rules import RulesFeed
from vigil.stream.state import StreamState

pytestmark = pytest.mark.redis

# fires each time a post's views in the day reach a multiple of 25: a view replayed after a
# crash that counted the lost tail's views of its post again (the same 24-minute bucket) would
# fire at another view
VIEW_MARKS = """\
  - name: view_marks
    version: 1
    when: view
    expr: count("post", "1d") % 25 == 0
    cooldown: 1s
    effects:
      - {do: review, entity: post}
"""


def _client():
    import redis

    return redis.Redis(host="127.0.0.1", port=6379)


def _lines(path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


@pytest.fixture
def prefix():
    client = _client()
    name = f"vigil-rules:test:{uuid.uuid4().hex[:8]}:"
    yield name
    keys = list(client.scan_iter(match=f"{name}*", count=1000))
    if keys:
        client.delete(*keys)


def _tables(db) -> dict:
    with contextlib.closing(sqlite3.connect(db)) as con:
        return {
            t: con.execute(f"select * from {t} order by 1, 2, 3").fetchall()
            for t in ("rules_label", "rules_fired")
        }


def test_redis_counters_in_the_stream_equal_the_in_process_ones(tmp_path, prefix, caplog):
    raw = tmp_path / "raw"
    write_world(raw, posts=30, events=4000, seed=8)
    rules = _rules(tmp_path / "rules.yaml")
    rules.write_text(rules.read_text() + HEAVY_VIEWER)
    _run(raw, tmp_path / "mem.sqlite", rules, checkpoint_events=300)
    # a first run dies before its first checkpoint: its counts are in Redis, no position committed
    state = StreamState(tmp_path / "red.sqlite")
    feed = RulesFeed(
        state.con,
        rules,
        tmp_path / "x.jsonl",
        counters=RedisCounters(_client(), prefix, flush_events=500),
    )
    feed.attach(state)
    state.apply_lines([x for f in sorted(raw.glob("events/*/*.jsonl")) for x in _lines(f)])
    counters = feed.engine.counter_factory
    assert counters.position > 1000 and counters.written > 1000 and feed.engine.take_effects()
    state.close()
    counters.drain()  # its last flush reached Redis before it died
    with caplog.at_level("INFO", logger="vigil.rules.redis_counters"):
        _run(
            raw,
            tmp_path / "red.sqlite",
            rules,
            checkpoint_events=300,
            rules_counters="redis",
            rules_redis_prefix=prefix,
        )
    # Redis held the killed run's events: rolled back to position 0 before the run
    assert "rolled back from stream position" in caplog.text
    want = (tmp_path / "mem.effects.jsonl").read_text()
    assert want.count("\n") > 50
    assert all(f'"rule": "{r}"' in want for r in ("reported", "busy_replier", "heavy_viewer"))
    assert (tmp_path / "red.effects.jsonl").read_text() == want
    assert _tables(tmp_path / "red.sqlite") == _tables(tmp_path / "mem.sqlite")
    # the checkpoint holds no counters; a run on it with in-process counters is refused, and a
    # fresh state on keys already there too (the killed run's state was not fresh: its own keys)
    with contextlib.closing(sqlite3.connect(tmp_path / "red.sqlite")) as con:
        assert con.execute("select count(*) from rules_counter").fetchone() == (0,)
    with pytest.raises(RuleError, match="--rules-counters"):
        _run(raw, tmp_path / "red.sqlite", rules)
    with pytest.raises(RuleError, match="already holds keys"):
        _run(raw, tmp_path / "new.sqlite", rules, rules_counters="redis", rules_redis_prefix=prefix)


@pytest.mark.slow
def test_kill9_with_redis_counters_is_exactly_once(tmp_path, prefix, monkeypatch):
    # Redis written every 40 events, checkpoints every 300: a kill while the rules evaluate
    # finds Redis ahead of the checkpoint, and the restart rolls it back first (with this test's
    # timing most kills land in the interpreter's start; a throwaway script killing a run at
    # 2.0 s found Redis at position 6,030, the checkpoint at 5,736, and its restart rolled back)
    monkeypatch.setenv("VIGIL_RULES_REDIS_FLUSH_EVENTS", "40")
    raw = tmp_path / "raw"
    write_world(raw, posts=30, events=6000, seed=21)
    rules = _rules(tmp_path / "rules.yaml")
    rules.write_text(rules.read_text() + HEAVY_VIEWER + VIEW_MARKS)
    common = ["--raw", str(raw), "--once", "--no-push", "--rules", str(rules)]
    common += ["--checkpoint-events", "300", "--checkpoint-seconds", "0.05"]
    common += ["--rules-counters", "redis"]
    t = time.time()
    ref = _vigil_stream(
        tmp_path, *common, "--state", str(tmp_path / "ref.sqlite"), "--rules-redis-prefix", prefix
    )
    assert ref.wait(timeout=300) == 0, ref.stderr.read().decode()[-2000:]
    uninterrupted = time.time() - t
    crash = [*common, "--state", str(tmp_path / "crash.sqlite")]
    crash += ["--rules-redis-prefix", prefix + "crash:"]
    rng = random.Random(2026)
    kills = 0
    for _attempt in range(5):
        proc = _vigil_stream(tmp_path, *crash)
        time.sleep(rng.uniform(0.3, 0.7) * uninterrupted)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
    assert kills >= 2, f"the run finished before it could be killed ({uninterrupted:.1f} s)"
    final = _vigil_stream(tmp_path, *crash)
    assert final.wait(timeout=300) == 0, final.stderr.read().decode()[-2000:]
    ref_log = (tmp_path / "ref.effects.jsonl").read_text()
    assert ref_log.count("\n") > 50
    assert (tmp_path / "crash.effects.jsonl").read_text() == ref_log  # exactly once
    assert _tables(tmp_path / "crash.sqlite") == _tables(tmp_path / "ref.sqlite")
    # and the same as the in-process counters decide
    _run(raw, tmp_path / "mem.sqlite", rules, checkpoint_events=300)
    assert (tmp_path / "mem.effects.jsonl").read_text() == ref_log
