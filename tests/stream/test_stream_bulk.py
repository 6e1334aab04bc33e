"""The stream's bulk path (vigil.stream.apply.apply_bulk) against the per-event reference.

The same hostile lines (duplicates inside and across batches, copies of one id with other times
straddling the lateness bound, late and too-late events, day roll-overs, bad lines, long and
non-ASCII ids, users acting on themselves) go through ``StreamState.apply_lines`` (bulk) and
through the reference loop one event at a time (``StreamState.apply_event``, which never takes
the bulk path); the whole state must be equal: records, totals, counters, watermark, seen ids,
dirty sets, arrival runs, the events handed to the hooks, and the checkpoint's tables.
"""

from __future__ import annotations

import json
import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from vigil.stream.batch import parse_lines
from vigil.stream.events import NO_LIMIT_US
from vigil.stream.features import COUNTRIES
from vigil.stream.seen import as_bytes, digest, digest_of, digests_of
from vigil.stream.state import StreamState

ON_POST = ("view", "like", "share", "dislike", "report", "reply")
T0 = datetime(2026, 9, 1, tzinfo=UTC)


def _ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _event_id(rng: random.Random, k: int) -> str:
    kind = rng.random()
    if kind < 0.08:
        return f"a-much-longer-event-id-{k:09d}"  # > 15 bytes: a BLAKE2b digest
    if kind < 0.12:
        return f"é{k}"  # not ASCII: the per-id path
    return f"e{k:07d}"


def hostile_lines(seed: int, n: int = 6000, retimed: bool = True) -> list[bytes]:
    """Lines in arrival order; time mostly moves forward over ~5 days, with disorder."""
    rng = random.Random(seed)
    out: list[bytes] = []
    sent: list[dict] = []
    clock = T0
    for k in range(n):
        clock += timedelta(milliseconds=rng.randrange(0, 140_000))
        r = rng.random()
        if sent and r < 0.06:  # the same event again (at-least-once delivery)
            out.append(json.dumps(rng.choice(sent[-300:])).encode())
            continue
        if retimed and sent and r < 0.09:  # the same id, another time: maybe (too) late
            ev = dict(rng.choice(sent[-300:]))
            t = datetime.fromisoformat(ev["event_ts"])
            ev["event_ts"] = _ts(t + timedelta(minutes=rng.randrange(-300, 300)))
            out.append(json.dumps(ev).encode())
            continue
        if r < 0.1:
            out.append(rng.choice([b"{broken", b"", b"[1, 2]", b'{"event_id": "x"}']))
            continue
        ts = clock - timedelta(minutes=rng.choice([0, 0, 0, 0, 5, 90, 170, 400]))
        uid = rng.randint(1, 30)
        action = rng.choice(
            [
                "login",
                "post",
                "view",
                "view",
                "share",
                "dislike",
                "report",
                "block",
                "mute",
                "like",
                "reply",
                "follow",
            ]
        )
        ev = {"event_id": _event_id(rng, k), "event_ts": _ts(ts), "user_id": uid, "action": action}
        if action == "post":
            ev.update(post_id=k + 1, text="hi")
        elif action in ON_POST:
            ev.update(post_id=rng.randint(1, k + 1), target_user_id=rng.randint(1, 30))
            if action == "reply":
                ev["text"] = "a reply"
        elif action == "login":
            ev["country"] = rng.choice(["US", "DE", "FR", "BR"])
        else:
            ev["target_user_id"] = rng.choice([uid, rng.randint(1, 30)])  # self too
        sent.append(ev)
        out.append(json.dumps(ev).encode())
    return out


def _snapshot(state: StreamState) -> dict:
    users = {
        uid: (
            u.posts_total,
            {
                day: (
                    *rec[:COUNTRIES],
                    frozenset(
                        rec[COUNTRIES][i : i + 2] for i in range(0, len(rec[COUNTRIES] or ""), 2)
                    ),
                )
                for day, rec in u.days.items()
            },
        )
        for uid, u in state.users.items()
        if u.days or u.posts_total
    }
    seen = {(day, code) for day, arr in state.seen.sorted.items() for code in as_bytes(arr)} | {
        (day, code) for day, codes in state.seen.recent.items() for code in codes
    }
    new_seen = set(state.new_seen)
    for days, codes in state.new_seen_codes:
        new_seen |= set(zip(days.tolist(), as_bytes(codes), strict=True))
    return {
        "users": users,
        "counters": dict(state.counters),
        "watermark": (state.watermark_ms, state.wm_day, state.expired_through),
        "seen": seen,
        "new_seen": new_seen,
        "dirty": (set(state.dirty), set(state.dirty_totals)),
        "arrivals": state.arrivals,
    }


def _tables(path: Path) -> dict:
    con = sqlite3.connect(path)
    try:
        seen = set(con.execute("select day, digest from seen"))
        for day, blob in con.execute("select day, digests from seen_block"):
            seen |= {(day, c) for c in as_bytes(np.frombuffer(blob, dtype="S16"))}
        return {
            "user_day": con.execute("select * from user_day order by 1, 2").fetchall(),
            "user_total": con.execute("select * from user_total order by 1").fetchall(),
            "seen": seen,
            "meta": con.execute("select * from meta order by key").fetchall(),
        }
    finally:
        con.close()


def _pair(tmp_path: Path, lateness_ms: int, owns) -> tuple[StreamState, StreamState, list, list]:
    hooked: tuple[list, list] = ([], [])
    states = []
    for name, got in zip(("bulk", "ref"), hooked, strict=True):
        s = StreamState(
            tmp_path / f"{name}.sqlite", lateness_ms=lateness_ms, owns=owns, track_push=True
        )
        s.on_applied = got.extend
        states.append(s)
    return states[0], states[1], hooked[0], hooked[1]


def _apply_reference(state: StreamState, lines: list[bytes], arrival: float) -> None:
    """The per-event path: parse, count, then one ``apply_event`` per valid line."""
    state.counters["read"] += len(lines)
    for ev in parse_lines(lines, NO_LIMIT_US):
        if type(ev) is str:
            state.counters["bad"] += 1
            state.bad_reasons[ev] += 1
        else:
            state.apply_event(ev, arrival)


@pytest.mark.parametrize(
    ("seed", "lateness_hours", "partitioned"),
    [(1, 48, False), (2, 3, False), (3, 3, True), (4, 1, False)],
)
def test_bulk_path_equals_per_event_reference(tmp_path, seed, lateness_hours, partitioned):
    lines = hostile_lines(seed)
    owns = (lambda uid: uid % 3 != 0) if partitioned else None
    bulk, ref, got_bulk, got_ref = _pair(tmp_path, lateness_hours * 3_600_000, owns)
    rng = random.Random(seed)
    i = batch_no = 0
    while i < len(lines):
        size = rng.choice([1, 7, 60, 400, 1500])
        chunk = lines[i : i + size]
        bulk.apply_lines(chunk, NO_LIMIT_US, float(batch_no))
        _apply_reference(ref, chunk, float(batch_no))
        assert _snapshot(bulk) == _snapshot(ref), f"after batch {batch_no} (lines {i}..)"
        if batch_no % 5 == 4:
            bulk.checkpoint({"test": str(i)})
            ref.checkpoint({"test": str(i)})
        i += size
        batch_no += 1
    assert got_bulk == got_ref
    c = bulk.counters
    assert c["duplicates"] > 0 and c["bad"] > 0 and c["applied"] > 0
    if lateness_hours < 48:
        assert c["too_late"] > 0
    bulk.checkpoint({"test": "end"})
    ref.checkpoint({"test": "end"})
    bulk.close()
    ref.close()
    assert _tables(tmp_path / "bulk.sqlite") == _tables(tmp_path / "ref.sqlite")
    # a restarted processor reads back the same state from either checkpoint
    again = [
        StreamState(tmp_path / f"{n}.sqlite", lateness_ms=lateness_hours * 3_600_000)
        for n in ("bulk", "ref")
    ]
    assert _snapshot(again[0]) == _snapshot(again[1])
    for s in again:
        s.close()


def test_copies_straddling_the_lateness_bound_take_the_per_event_order(tmp_path):
    """The first copy of an id is too late, a later copy in the same batch is not: only the
    per-event order decides, so the batch must give what one-by-one gives (hand-computed)."""

    def line(eid, ts, uid=1):
        return json.dumps(
            {"event_id": eid, "event_ts": ts, "user_id": uid, "action": "login", "country": "US"}
        ).encode()

    state = StreamState(tmp_path / "s.sqlite", lateness_ms=3_600_000)
    state.apply_lines([line("w", "2026-09-02T10:00:00.000Z")])  # watermark 10:00
    state.apply_lines(
        [
            line("x", "2026-09-02T08:30:00.000Z"),  # too late (before 09:00)
            line("x", "2026-09-02T09:30:00.000Z"),  # same id and day, in time: applied
            line("x", "2026-09-02T09:45:00.000Z"),  # now a duplicate
            line("y", "2026-09-02T11:00:00.000Z", 2),  # moves the watermark to 11:00
            line("z", "2026-09-02T09:59:00.000Z", 2),  # too late now (before 10:00)
        ]
    )
    c = state.counters
    assert (c["applied"], c["too_late"], c["duplicates"]) == (3, 2, 1)
    minutes = state.users[1].days[state.wm_day][0]
    assert minutes == (1 << 600) | (1 << 570)  # 10:00 and 09:30
    state.close()


def test_codes_are_exact_and_old_checkpoints_keep_blake2b(tmp_path):
    ids = ["e1", "e1\x00", "x" * 15, "y" * 16, "é", "a" * 64, "b"]
    for version in (1, 2):
        assert as_bytes(digests_of(ids, version)) == [digest_of(e, version) for e in ids]
    assert len(set(as_bytes(digests_of(ids)))) == len(ids)
    assert digest_of("y" * 16) == digest("y" * 16) and digest_of("e1") != digest("e1")
    # a checkpoint written before codes (seen rows of BLAKE2b digests, no digest_version)
    path = tmp_path / "old.sqlite"
    StreamState(path).close()
    con = sqlite3.connect(path)
    con.execute("insert into seen values (?, ?)", (20698, digest("e1")))  # 2026-09-02
    con.execute("insert into meta values ('watermark_ms', ?)", (str(20698 * 86_400_000),))
    con.execute("insert into meta values ('counters', '{}'), ('bad_reasons', '{}')")
    con.commit()
    con.close()
    state = StreamState(path)
    assert state.digest_version == 1
    state.apply_lines(
        [
            json.dumps(
                {
                    "event_id": "e1",
                    "event_ts": "2026-09-02T01:00:00.000Z",
                    "user_id": 1,
                    "action": "login",
                    "country": "US",
                }
            ).encode()
        ]
    )
    assert state.counters["duplicates"] == 1 and state.counters["applied"] == 0
    state.close()


@pytest.mark.redis
def test_one_redis_consumer_reads_each_line_once_and_equals_the_files(tmp_path, monkeypatch):
    """Replayed into 4 partitions, a line that touches two users travels to both; the consumer
    that owns every partition skips the copies: it reads each line once and ends with the state
    the file source gives (the lines carry no id with two times, so the order cannot matter)."""
    import uuid

    import redis

    from vigil.stream.processor import RunOptions, process
    from vigil.stream.replay import replay

    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    lines = hostile_lines(5, n=3000, retimed=False)
    hour = tmp_path / "raw" / "events" / "dt=2026-09-30" / "hour=23.jsonl"
    hour.parent.mkdir(parents=True)
    hour.write_bytes(b"".join(line + b"\n" for line in lines))
    files = process(
        RunOptions(
            source="files",
            raw_dir=tmp_path / "raw",
            state_path=tmp_path / "f.sqlite",
            once=True,
            push=False,
        )
    )
    client = redis.Redis(host="127.0.0.1", port=6379)
    key = f"vigil-test-stream-bulk:{uuid.uuid4().hex[:8]}"
    try:
        replay(tmp_path / "raw", 0, sink="redis", stream_key=key, partitions=4, batch=97)
        copies = sum(
            1
            for p in range(4)
            for _, fields in client.xrange(f"{key}:{p}")
            for _ in (fields[b"copies"].split(b"\n") if b"copies" in fields else [])
        )
        got = process(
            RunOptions(
                source="redis",
                stream_key=key,
                partitions=4,
                state_path=tmp_path / "r.sqlite",
                once=True,
                push=False,
            )
        )
    finally:
        client.delete(*[f"{key}:{p}" for p in range(4)])
        client.close()
    assert copies > 0
    assert got["counters"] == files["counters"]
    assert got["counters"]["read"] == len(lines)
    r, f = _tables(tmp_path / "r.sqlite"), _tables(tmp_path / "f.sqlite")
    assert (r["user_day"], r["user_total"], r["seen"]) == (
        f["user_day"],
        f["user_total"],
        f["seen"],
    )
