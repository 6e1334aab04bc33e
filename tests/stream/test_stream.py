"""`vigil stream`: hand-computed cases, agreement with an independent brute force and with the dbt
marts, exactly-once under kill -9, the memory budget, and partitioned Redis consumers.

Raw files are written here per docs/contracts.md section 1 by a small seeded generator that also
returns the ground truth (the unique valid events); expected values are computed from that truth
by a brute force that shares no code with vigil.stream.processor.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from vigil.stream.batch import parse_lines
from vigil.stream.events import _exact, parse_event
from vigil.stream.processor import RunOptions, process
from vigil.stream.replay import replay
from vigil.stream.state import read_features, read_status

REPO = Path(__file__).resolve().parents[2]
ACTIONS_ON_POST = ("reply", "view", "like", "share", "dislike", "report")
COUNTRIES = ("US", "DE", "FR", "BR", "IN")


# ------------------------------------------------------------------------------------------------
# raw-file generator (contract section 1) with ground truth


def _ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _hour_file(raw: Path, dt: datetime) -> Path:
    return raw / "events" / f"dt={dt.date().isoformat()}" / f"hour={dt.hour:02d}.jsonl"


def write_world(
    raw: Path,
    *,
    users: int = 40,
    days: int = 35,
    start: date = date(2026, 9, 1),
    seed: int = 7,
    late_share: float = 0.04,
    dup_share: float = 0.02,
    max_late_hours: int = 30,
) -> list[dict]:
    """Write hour files; return the unique valid events (the truth)."""
    rng = random.Random(seed)
    t0 = datetime(start.year, start.month, start.day, tzinfo=UTC)
    posts: list[tuple[int, int]] = []  # (post_id, author)
    events: list[dict] = []
    next_post = 1
    for d in range(days):
        for uid in range(1, users + 1):
            if rng.random() < 0.45:
                continue
            session = t0 + timedelta(days=d, minutes=rng.randrange(0, 1440 - 30))
            for _ in range(rng.randint(1, 10)):
                ts = session + timedelta(
                    seconds=rng.randrange(0, 1800), milliseconds=rng.randrange(1000)
                )
                if ts >= t0 + timedelta(days=d + 1):
                    ts = t0 + timedelta(days=d + 1) - timedelta(milliseconds=1)
                action = rng.choices(
                    [
                        "login",
                        "post",
                        "view",
                        "like",
                        "share",
                        "dislike",
                        "report",
                        "reply",
                        "block",
                        "mute",
                        "follow",
                        "unfollow",
                    ],
                    weights=[6, 6, 30, 12, 5, 5, 3, 6, 2, 2, 3, 1],
                )[0]
                if action in ACTIONS_ON_POST and not posts:
                    action = "post"
                ev = {
                    "event_id": f"e{len(events):07d}",
                    "event_ts": _ts(ts),
                    "user_id": uid,
                    "action": action,
                    "post_id": None,
                    "target_user_id": None,
                    "text": None,
                    "country": None,
                }
                if action == "post":
                    ev["post_id"] = next_post
                    ev["text"] = f"post {next_post}"
                    posts.append((next_post, uid))
                    next_post += 1
                elif action in ACTIONS_ON_POST:
                    pid, author = rng.choice(posts[-200:])
                    ev["post_id"], ev["target_user_id"] = pid, author
                    if action == "reply":
                        ev["text"] = "a reply"
                elif action == "login":
                    ev["country"] = rng.choice(COUNTRIES[: 1 + uid % 4])
                else:
                    other = rng.randint(1, users)
                    ev["target_user_id"] = other if other != uid else uid % users + 1
                ev["_ts"] = ts
                events.append(ev)
    lines: dict[Path, list[tuple[datetime, str]]] = defaultdict(list)
    for ev in events:
        ts = ev.pop("_ts")
        line = json.dumps(ev)
        arrive = ts
        if rng.random() < late_share:  # delivered up to max_late_hours later
            arrive = ts + timedelta(hours=rng.randint(1, max_late_hours))
        lines[_hour_file(raw, arrive)].append((arrive, line))
        if rng.random() < dup_share:  # the at-least-once pipeline repeats it
            again = arrive + timedelta(hours=rng.randint(0, 15))
            lines[_hour_file(raw, again)].append((again, line))
        ev["_ts"] = ts
    bad = [
        "{not json",
        "",
        json.dumps(
            {
                "event_id": "x1",
                "event_ts": "2026-09-03",
                "user_id": 1,
                "action": "view",
                "post_id": 1,
                "target_user_id": 1,
            }
        ),
        json.dumps(
            {
                "event_id": "x2",
                "event_ts": "2026-09-03T01:00:00.000Z",
                "user_id": 1,
                "action": "teleport",
            }
        ),
        json.dumps(
            {
                "event_id": "x3",
                "event_ts": "2026-09-03T01:00:00.000Z",
                "user_id": 0,
                "action": "login",
                "country": "US",
            }
        ),
        json.dumps([1, 2, 3]),
    ]
    for i, b in enumerate(bad):
        when = t0 + timedelta(days=2 + i, hours=3)
        lines[_hour_file(raw, when)].append((when, b))
    for path, items in lines.items():
        items.sort(key=lambda x: x[0])
        # mild disorder inside an hour file, like a real log shipper
        for i in range(0, len(items) - 1, 7):
            items[i], items[i + 1] = items[i + 1], items[i]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(line + "\n" for _, line in items))
    return events


def brute_force(events: list[dict], last_day: date) -> dict[int, dict[str, int]]:
    """Features for the window ending with last_day, straight from the definitions."""
    end = datetime(last_day.year, last_day.month, last_day.day, tzinfo=UTC) + timedelta(days=1)
    start30, start7, start1 = (
        end - timedelta(days=30),
        end - timedelta(days=7),
        end - timedelta(days=1),
    )
    out: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    minutes, minutes1, active, countries = (
        defaultdict(set),
        defaultdict(set),
        defaultdict(set),
        defaultdict(set),
    )
    received = {
        "report": "reports",
        "dislike": "dislikes",
        "block": "blocks",
        "mute": "mutes",
        "share": "shares",
    }
    for ev in events:
        ts, uid = ev["_ts"], ev["user_id"]
        if ts >= end:
            continue
        if ev["action"] == "post":
            out[uid]["posts_authored_total"] += 1
        if ts < start30:
            continue
        minute = ts.replace(second=0, microsecond=0)
        minutes[uid].add(minute)
        active[uid].add(ts.date())
        if ts >= start1:
            minutes1[uid].add(minute)
        if ev["action"] == "post":
            out[uid]["posts_authored_30d"] += 1
        if ev["action"] == "login":
            countries[uid].add(ev["country"])
        tgt = ev["target_user_id"]
        if ev["action"] in received:
            out[tgt][f"{received[ev['action']]}_received_30d"] += 1
            if ts >= start7:
                out[tgt][f"{received[ev['action']]}_received_7d"] += 1
        if ev["action"] == "view":
            out[tgt]["views_received_30d"] += 1
    for uid in set(minutes) | set(countries):
        out[uid]["uam_30d"] = len(minutes[uid])
        out[uid]["active_days_30d"] = len(active[uid])
        out[uid]["uam_1d"] = len(minutes1[uid])
        out[uid]["login_countries_30d"] = len(countries[uid])
    return {u: dict(v) for u, v in out.items()}


def _nonzero(feats: dict[int, dict[str, int]]) -> dict[int, dict[str, int]]:
    return {u: {k: v for k, v in f.items() if v} for u, f in feats.items() if any(f.values())}


def _run(raw: Path, state: Path, **kw) -> dict:
    return process(
        RunOptions(source="files", raw_dir=raw, state_path=state, once=True, push=False, **kw)
    )


# ------------------------------------------------------------------------------------------------
# hand-computed case


def _write_lines(raw: Path, rel: str, lines: list) -> None:
    p = raw / "events" / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))


def _ev(eid, ts, uid, action, post=None, target=None, text=None, country=None):
    return {
        "event_id": eid,
        "event_ts": ts,
        "user_id": uid,
        "action": action,
        "post_id": post,
        "target_user_id": target,
        "text": text,
        "country": country,
    }


def test_hand_computed_uam_tallies_and_counters(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    raw = tmp_path / "raw"
    _write_lines(
        raw,
        "dt=2026-09-20/hour=08.jsonl",
        [
            _ev(
                "a", "2026-09-20T08:00:00.000Z", 3, "block", target=2
            ),  # 13 days before Oct 2: 30d only
        ],
    )
    _write_lines(
        raw,
        "dt=2026-10-01/hour=10.jsonl",
        [
            _ev("b", "2026-10-01T10:00:05.000Z", 2, "post", post=7, text="hi"),
            _ev("c", "2026-10-01T10:00:50.000Z", 1, "report", post=7, target=2),
            _ev("c", "2026-10-01T10:00:50.000Z", 1, "report", post=7, target=2),  # duplicate
            _ev("d", "2026-10-01T10:01:00.000Z", 1, "login", country="DE"),
            "{broken",
            _ev("e", "2026-10-01T10:00:59.999Z", 1, "view", post=7, target=2),  # same minute as c
        ],
    )
    _write_lines(
        raw,
        "dt=2026-10-02/hour=23.jsonl",
        [
            _ev("f", "2026-10-02T23:59:59.999Z", 1, "dislike", post=7, target=2),
            _ev("g", "2026-10-02T23:00:00.000Z", 1, "login", country="FR"),
            _ev("h", "2026-10-01T01:00:00.000Z", 4, "view", post=7, target=2),  # 47h late: applied
            _ev(
                "i", "2026-09-29T12:00:00.000Z", 4, "view", post=7, target=2
            ),  # > 48h late: counted
        ],
    )
    result = _run(raw, tmp_path / "s.sqlite")
    assert result["counters"] == {
        "read": 11,
        "applied": 8,
        "bad": 1,
        "duplicates": 1,
        "too_late": 1,
    }
    assert result["bad_reasons"] == {"not JSON": 1}
    got = read_features(tmp_path / "s.sqlite", date(2026, 10, 2))
    # user 1: minutes 10:00 (c, e), 10:01 (d) on Oct 1; 23:59 and 23:00 on Oct 2
    assert got[1]["uam_30d"] == 4 and got[1]["active_days_30d"] == 2 and got[1]["uam_1d"] == 2
    assert got[1]["login_countries_30d"] == 2
    # user 2: one post; received report c, dislike f, block a (Sep 20: 30d, not 7d), views e, h
    assert got[2]["uam_30d"] == 1 and got[2]["posts_authored_30d"] == 1
    assert got[2]["posts_authored_total"] == 1
    assert (got[2]["reports_received_7d"], got[2]["dislikes_received_7d"]) == (1, 1)
    assert (got[2]["blocks_received_7d"], got[2]["blocks_received_30d"]) == (0, 1)
    assert got[2]["views_received_30d"] == 2
    assert got[3]["uam_30d"] == 1 and got[3]["active_days_30d"] == 1  # the block on Sep 20
    assert got[4]["uam_30d"] == 1  # only the 47h-late view counts
    # the window ending Oct 1 no longer includes the Oct 2 events
    assert read_features(tmp_path / "s.sqlite", date(2026, 10, 1))[1]["uam_30d"] == 2


# ------------------------------------------------------------------------------------------------
# agreement with an independent brute force (late, out-of-order, duplicate and bad lines; the
# window slides past the first days, so expiry is exercised)


def test_stream_equals_brute_force(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    raw = tmp_path / "raw"
    truth = write_world(raw, users=40, days=35, seed=11)
    result = _run(raw, tmp_path / "s.sqlite", checkpoint_events=997)
    assert result["counters"]["too_late"] == 0
    assert result["counters"]["bad"] == 6
    assert result["counters"]["applied"] == len(truth)
    last_day = max(ev["_ts"] for ev in truth).date()
    expected = _nonzero(brute_force(truth, last_day))
    got = _nonzero(read_features(tmp_path / "s.sqlite", last_day))
    assert got == expected
    # expired days are gone from the checkpoint: nothing older than the 30-day window remains
    con = sqlite3.connect(tmp_path / "s.sqlite")
    oldest = con.execute("select min(day) from user_day").fetchone()[0]
    con.close()
    assert date(1970, 1, 1) + timedelta(days=oldest) >= last_day - timedelta(days=29)


def test_tailing_growing_files_and_restart(tmp_path, monkeypatch):
    """Lines appended in pieces (even mid-line) between runs give the same state as one run."""
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    src = tmp_path / "src"
    truth = write_world(src, users=15, days=6, seed=3)
    full = _run(src, tmp_path / "full.sqlite")
    tail = tmp_path / "tail"
    files = sorted(src.glob("events/dt=*/hour=*.jsonl"))
    rng = random.Random(5)
    for i, f in enumerate(files):
        data = f.read_bytes()
        out = tail / f.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        cut = rng.randrange(len(data))
        with open(out, "ab") as h:
            h.write(data[:cut])
        if i % 5 == 0:  # the processor sees a half-written line; must wait for its end
            process(
                RunOptions(
                    source="files",
                    raw_dir=tail,
                    state_path=tmp_path / "t.sqlite",
                    push=False,
                    max_seconds=0.0,
                    checkpoint_seconds=0.0,
                )
            )
        with open(out, "ab") as h:
            h.write(data[cut:])
    _run(tail, tmp_path / "t.sqlite")
    last_day = max(ev["_ts"] for ev in truth).date()
    assert read_features(tmp_path / "t.sqlite", last_day) == read_features(
        tmp_path / "full.sqlite", last_day
    )
    assert read_status(tmp_path / "t.sqlite")["counters"] == full["counters"]


# ------------------------------------------------------------------------------------------------
# exactly-once: SIGKILL a real `vigil stream` process at seeded random moments, restart, compare


def _dump(db: Path) -> dict:
    con = sqlite3.connect(db)
    try:
        return {
            "user_day": con.execute("select * from user_day order by user_id, day").fetchall(),
            "user_total": con.execute("select * from user_total order by user_id").fetchall(),
            "seen": con.execute("select * from seen order by day, digest").fetchall(),
            "offsets": con.execute("select * from offsets order by source").fetchall(),
            "meta": con.execute(
                "select * from meta where key != 'checked_at' order by key"
            ).fetchall(),
        }
    finally:
        con.close()


def _vigil_stream(home: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ, VIGIL_HOME=str(home))
    return subprocess.Popen(
        [sys.executable, "-m", "vigil.cli", "stream", *args],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_kill9_at_random_points_then_restart_gives_same_state(tmp_path):
    raw = tmp_path / "raw"
    write_world(raw, users=800, days=34, seed=21)
    common = [
        "--raw",
        str(raw),
        "--once",
        "--no-push",
        "--checkpoint-events",
        "1500",
        "--checkpoint-seconds",
        "0.05",
    ]
    ref = _vigil_stream(tmp_path, *common, "--state", str(tmp_path / "ref.sqlite"))
    t = time.time()
    assert ref.wait(timeout=300) == 0, ref.stderr.read().decode()[-2000:]
    uninterrupted = time.time() - t

    rng = random.Random(2026)
    kills = 0
    for _attempt in range(6):
        proc = _vigil_stream(tmp_path, *common, "--state", str(tmp_path / "crash.sqlite"))
        # kill points scale with the machine: a fraction of the uninterrupted run (startup included)
        time.sleep(rng.uniform(0.15, 0.6) * uninterrupted)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
        else:
            assert proc.returncode == 0
    assert kills >= 2, f"the run finished before it could be killed ({uninterrupted:.1f} s)"
    final = _vigil_stream(tmp_path, *common, "--state", str(tmp_path / "crash.sqlite"))
    assert final.wait(timeout=300) == 0, final.stderr.read().decode()[-2000:]
    assert _dump(tmp_path / "crash.sqlite") == _dump(tmp_path / "ref.sqlite")


# ------------------------------------------------------------------------------------------------
# bounded memory: with a tiny budget, records spill to SQLite and the result is unchanged


def test_memory_budget_spills_to_disk_with_same_result(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    raw = tmp_path / "raw"
    truth = write_world(raw, users=60, days=12, seed=5)
    _run(raw, tmp_path / "mem.sqlite")
    spilled = _run(raw, tmp_path / "disk.sqlite", memory_budget_mb=0, checkpoint_events=500)
    assert spilled["users_cached"] < 60
    last_day = max(ev["_ts"] for ev in truth).date()
    assert _dump(tmp_path / "disk.sqlite")["user_day"] == _dump(tmp_path / "mem.sqlite")["user_day"]
    assert read_features(tmp_path / "disk.sqlite", last_day) == read_features(
        tmp_path / "mem.sqlite", last_day
    )


# ------------------------------------------------------------------------------------------------
# the validator's fast path accepts exactly what ingest's validator accepts, with the same values


def test_fast_and_batch_paths_agree_with_ingest_validator(tmp_path):
    raw = tmp_path / "raw"
    write_world(raw, users=10, days=3, seed=9)
    base = [
        json.loads(x)
        for f in sorted(raw.glob("events/*/*.jsonl"))
        for x in f.read_text().splitlines()
        if x.startswith('{"event_id": "e')
    ][:60]
    bad_values = [
        None,
        0,
        -1,
        True,
        1.5,
        "x",
        "",
        "a" * 65,
        "\ud800",
        2**63,
        2**63 - 1,
        [],
        {},
        "2026-09-01T10:00:00Z",
        "2026-09-01T10:00:00.000+02:00",
        "2026-02-30T10:00:00.000Z",
        "2026-09-01T24:00:00.000Z",
        "2026-09-01T10:00:60.000Z",
        "2026-09-01 10:00:00.000Z",
        "2027-01-01T00:00:00.000Z",
        "US",
        "us",
        "USA",
        "login",
        "post",
        "t" * 5001,
        "é",
        "2026-09-01T10:00:00.1234Z",
        "٢٠٢٦-09-01T10:00:00.000Z",
    ]
    variants = []
    rng = random.Random(1)
    for ev in base:
        variants.append(json.dumps(ev))
        for field in ev:
            variants.append(json.dumps({k: v for k, v in ev.items() if k != field}))
            for v in rng.sample(bad_values, 8):
                variants.append(json.dumps({**ev, field: v}, ensure_ascii=rng.random() < 0.5))
    variants += ["", " ", "[]", "null", "{", '{"event_id": "a"}']
    limit = (int(datetime(2026, 9, 2, tzinfo=UTC).timestamp()) + 25 * 3600) * 10**6
    encoded = [v.encode("utf-8", "surrogatepass") for v in variants] + [b"\xff\xfe{}"]
    accepted = 0
    batch = parse_lines(encoded, limit)  # the batch path (msgspec) used by vigil stream
    per_line_limits = parse_lines(encoded, [limit] * len(encoded))
    for i, line in enumerate(encoded):
        fast, exact = parse_event(line, limit), _exact(line, limit)
        assert fast == exact, line
        assert batch[i] == exact, line
        assert per_line_limits[i] == exact, line
        accepted += not isinstance(exact, str)
    assert 60 <= accepted < len(encoded) / 2  # both outcomes are well represented


def test_batch_parser_checks_the_bytes_of_keys_it_does_not_read():
    """msgspec skips unknown keys; ingest decodes the whole line first. Lines whose only fault is
    in an unknown key must be rejected with ingest's reason all the same."""
    base = (
        b'{"event_id": "e1", "event_ts": "2026-09-01T10:00:00.123Z", "user_id": 12, '
        b'"action": "view", "post_id": 5, "target_user_id": 7%s}'
    )
    extras = [
        b', "zz": "\xff\xfe"',
        b', "\xff": 1',
        b', "zz": [1, {"a": "\xed\xa0\x80"}]',
        b', "zz": ' + b"[" * 5000 + b"]" * 5000,
        b', "zz": [1,]',
        b', "zz": NaN',
        b', "zz": 01',
        b', "zz": "\\ud800"',
        b', "event_id": "e2"',
        b', "zz": 123456789012345678901234567890',
        b', "zz": {"a" 1}',
    ]
    lines = [base % x for x in extras]
    limit = 2**62
    got = parse_lines(lines, limit)
    expected = [_exact(line, limit) for line in lines]
    assert got == expected
    # hand-checked: invalid UTF-8 anywhere, too deep, trailing comma -> rejected; NaN and a huge
    # number in an unknown key, a repeated key (the last wins) -> accepted
    assert [g if isinstance(g, str) else g[0] for g in got] == [
        "invalid UTF-8",
        "invalid UTF-8",
        "invalid UTF-8",
        "not JSON",
        "not JSON",
        "e1",
        "not JSON",
        "e1",
        "e2",
        "e1",
        "not JSON",
    ]


# ------------------------------------------------------------------------------------------------
# agreement with the batch path: simulator -> ingest -> dbt marts vs simulator -> vigil stream


@pytest.mark.slow
def test_stream_equals_dbt_marts_exactly(tmp_path, monkeypatch):
    import pandas as pd

    from sim.world import simulate
    from vigil.lake.ingest import ingest
    from vigil.warehouse.dbt import build

    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "home"))
    raw = tmp_path / "raw"
    simulate(raw, users=150, days=33, start=date(2026, 10, 1), seed=3)
    ingest(raw)
    build("all")
    features = tmp_path / "home" / "features"
    ua = pd.read_parquet(features / "user_activity.parquet")
    cc = pd.read_parquet(features / "creator_context.parquet")

    result = _run(raw, tmp_path / "s.sqlite")
    assert result["counters"]["too_late"] == 0  # else the bound, not the logic, would differ
    last_day = pd.Timestamp(ua["event_timestamp"].max()).date() - timedelta(days=1)
    streamed = read_features(tmp_path / "s.sqlite", last_day)
    as_of = pd.Timestamp(last_day + timedelta(days=1), tz="UTC")

    def batch_rows(df, columns):
        rows = df[df["event_timestamp"] == as_of]
        return {int(r.user_id): {c: int(getattr(r, c)) for c in columns} for r in rows.itertuples()}

    ua_cols = ["uam_30d", "active_days_30d", "uam_1d"]
    cc_cols = [c for c in cc.columns if c.endswith(("_7d", "_30d")) and "rate" not in c] + [
        "posts_authored_total"
    ]
    for columns, batch in ((ua_cols, batch_rows(ua, ua_cols)), (cc_cols, batch_rows(cc, cc_cols))):
        assert batch, "the batch mart has no rows for the final day"
        zeros = dict.fromkeys(columns, 0)
        got = {u: {c: streamed.get(u, zeros)[c] for c in columns} for u in batch}
        mismatched = {u: (got[u], batch[u]) for u in batch if got[u] != batch[u]}
        assert not mismatched, (
            f"{len(mismatched)} of {len(batch)} users differ, e.g. {next(iter(mismatched.items()))}"
        )
        # users the stream knows but the mart leaves out have nothing in the window
        extra = {
            u
            for u, f in streamed.items()
            if u not in batch and any(f[c] for c in columns if c != "posts_authored_total")
        }
        assert not extra


# ------------------------------------------------------------------------------------------------
# production profile: Redis Streams, users partitioned across the consumers of a group


def test_redis_partitioned_consumers_cover_every_user_once(tmp_path, monkeypatch):
    import uuid

    import redis

    from vigil.stream.sources import RedisSource
    from vigil.stream.state import StreamState

    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    client = redis.Redis(host="127.0.0.1", port=6379)
    client.ping()
    key = f"vigil-test-stream:{uuid.uuid4().hex[:8]}"
    raw = tmp_path / "raw"
    truth = write_world(raw, users=30, days=6, seed=4)
    try:
        sent = replay(raw, 0, sink="redis", stream_key=key, partitions=4)
        assert sent["events"] == sum(
            len(f.read_bytes().splitlines()) for f in raw.glob("events/*/*.jsonl")
        )

        def consumer(k: int, state: Path) -> dict:
            return process(
                RunOptions(
                    source="redis",
                    stream_key=key,
                    partitions=4,
                    consumer=k,
                    consumers=2,
                    state_path=state,
                    once=True,
                    push=False,
                )
            )

        # consumer 1 crashes after reading entries it never checkpointed: they stay pending in
        # the group and are read again (exactly once) by its restart
        st = StreamState(tmp_path / "c1.sqlite", owns=None)
        src = RedisSource(key, 4, 1, 2)
        assert src.pump(st, 300) > 0
        st.close()  # no checkpoint, no XACK: as if killed
        consumer(0, tmp_path / "c0.sqlite")
        consumer(1, tmp_path / "c1.sqlite")
        for k in (0, 1):
            pending = sum(
                client.xpending(f"{key}:{p}", "vigil-stream")["pending"] for p in range(k, 4, 2)
            )
            assert pending == 0
    finally:
        client.delete(*[f"{key}:{p}" for p in range(4)])
    last_day = max(ev["_ts"] for ev in truth).date()
    f0 = read_features(tmp_path / "c0.sqlite", last_day)
    f1 = read_features(tmp_path / "c1.sqlite", last_day)
    assert not set(f0) & set(f1)  # each user lives in exactly one consumer
    assert _nonzero({**f0, **f1}) == _nonzero(brute_force(truth, last_day))


# ------------------------------------------------------------------------------------------------
# pushes to the Feast online store (real store: sqlite online store under the data root)


@pytest.mark.slow
def test_pushes_reach_the_online_store_and_keep_batch_only_features(tmp_path, monkeypatch):
    import pandas as pd

    from vigil.serving import features
    from vigil.serving.services import MODERATION_V1

    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    monkeypatch.setenv("VIGIL_ONLINE_STORE", "sqlite")
    features.apply()
    # a batch row for user 3 carrying the features only the batch path computes: every
    # creator_context feature the service reads (zero), the batch-only ones with values
    batch = {
        "user_id": [3],
        "event_timestamp": [pd.Timestamp("2026-09-01", tz="UTC")],
        **{c: [0] for c in MODERATION_V1["creator_context"]},
        "account_age_days": [12.5],
        "removals_total": [3],
        "report_rate_bayes": [0.01],
        "dislike_rate_bayes": [0.02],
        "block_rate_bayes": [0.003],
    }
    features.push("creator_context", pd.DataFrame(batch))

    raw = tmp_path / "raw"
    truth = write_world(raw, users=12, days=4, seed=8)
    result = process(
        RunOptions(
            source="files",
            raw_dir=raw,
            state_path=tmp_path / "s.sqlite",
            once=True,
            push=True,
            checkpoint_events=400,
        )
    )
    assert result["rows_pushed"] > 0
    assert result["lag"]["events"] == result["counters"]["applied"]
    assert 0 <= result["lag"]["p50_s"] <= result["lag"]["p99_s"]
    last_day = max(ev["_ts"] for ev in truth).date()
    expected = brute_force(truth, last_day)
    for uid in (1, 3, 7):
        online = features.online_features(user_id=uid)
        exp = expected.get(uid, {})
        assert online["user_activity__uam_30d"] == exp.get("uam_30d", 0)
        assert online["user_activity__active_days_30d"] == exp.get("active_days_30d", 0)
        for name in (
            "reports_received_30d",
            "views_received_30d",
            "posts_authored_total",
            "login_countries_30d",
        ):
            assert online[f"creator_context__{name}"] == exp.get(name, 0), (uid, name)
    online3 = features.online_features(user_id=3)
    assert online3["creator_context__account_age_days"] == 12.5
    assert online3["creator_context__removals_total"] == 3
