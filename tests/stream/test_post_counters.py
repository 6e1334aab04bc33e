"""`vigil stream --post-counters`: exact per-post counters, checkpointed and in the online store.

Expected values are worked out by hand below (counts, ages, the platform prior by age bucket and
the Bayesian ratios of post_behavior.sql), or by a brute force over the generator's events.
"""

from __future__ import annotations

import http.server
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from test_stream_rescore import NEGATIVE
from test_stream_rescore import write_world as write_busy_world

from vigil.errors import UserError
from vigil.stream.post_counters import HOUR_MS, PostCounters, _bucket_ms, age_bucket, features_at
from vigil.stream.processor import RunOptions, process

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 9, 1, 10, tzinfo=UTC)
HOUR = 3_600_000


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


# (minutes after T0, user, action, post, text): post 1 by user 7 at T0, post 2 by user 8 at +3 h
TIMELINE = [
    (0, 7, "post", 1, "first"),
    (10, 2, "view", 1, None),
    (20, 3, "view", 1, None),
    (30, 2, "report", 1, None),
    (40, 3, "reply", 1, "ew, gross"),
    (50, 4, "like", 1, None),
    (120, 5, "share", 1, None),
    (120, 6, "dislike", 1, None),
    (180, 8, "post", 2, "second"),
    (190, 2, "view", 2, None),
    (200, 3, "view", 2, None),
    (210, 4, "reply", 2, "nice"),
]


def write_timeline(raw: Path) -> None:
    by_file: dict[Path, list[str]] = {}
    for i, (minute, user, action, post, text) in enumerate(TIMELINE):
        ts = T0 + timedelta(minutes=minute)
        ev = {"event_id": f"t{i}", "event_ts": _ts(ts), "user_id": user, "action": action}
        ev["post_id"] = post
        if action != "post":
            ev["target_user_id"] = 7 if post == 1 else 8
        if text is not None:
            ev["text"] = text
        f = raw / "events" / f"dt={ts.date()}" / f"hour={ts.hour:02d}.jsonl"
        by_file.setdefault(f, []).append(json.dumps(ev))
    for f, lines in by_file.items():
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("".join(x + "\n" for x in lines))


# By hand, at the last event (T0 + 3.5 h). Reactions by the age bucket of their post at the time
# (floor(log2(age_h + 1))): bucket 0 (< 1 h): 4 views, 2 negative (the report, the "ew, gross"
# reply), 1 report; bucket 1 (1-3 h): the share and the dislike (1 share, 1 negative).
# Post 1, age 3.5 h -> bucket 2: prior over buckets 0-2 = 4 views, 3 negative, 1 report, 1 share.
POST_1 = {
    "post_age_hours": 3.5,
    "views": 2,
    "likes": 1,
    "shares": 1,
    "replies": 1,
    "dislikes": 1,
    "reports": 1,
    "blocks": 0,
    "negative_replies": 1,
    # (x + 100 p) / (views + 100)
    "negative_reactions_per_view": (3 + 100 * 3 / 4) / 102,
    "reports_per_view": (1 + 100 * 1 / 4) / 102,
    "shares_per_view": (1 + 100 * 1 / 4) / 102,
}
# Post 2, age 0.5 h -> bucket 0: prior = 4 views, 2 negative, 1 report, 0 shares.
POST_2 = {
    "post_age_hours": 0.5,
    "views": 2,
    "likes": 0,
    "shares": 0,
    "replies": 1,
    "dislikes": 0,
    "reports": 0,
    "blocks": 0,
    "negative_replies": 0,
    "negative_reactions_per_view": (0 + 100 * 2 / 4) / 102,
    "reports_per_view": (0 + 100 * 1 / 4) / 102,
    "shares_per_view": 0.0,
}


def _feed(counters: PostCounters):
    from vigil.stream.rescore import is_negative_reply

    for minute, user, action, post, text in TIMELINE:
        ts = _ms(T0 + timedelta(minutes=minute))
        if action == "post":
            counters.created(post, ts, user)
        else:
            yield post, action, ts, action == "reply" and is_negative_reply(text)


def test_age_buckets_by_hand():
    assert [age_bucket(h) for h in (-1, 0, 0.99, 1, 2.99, 3, 7, 254.9, 255, 10_000)] == [
        0,
        0,
        0,
        1,
        1,
        2,
        3,
        7,
        8,
        8,
    ]


def test_integer_buckets_equal_the_log2_definition_at_every_boundary():
    ages = [-5, 0, 1, HOUR_MS - 1, HOUR_MS, 3 * HOUR_MS - 1, 3 * HOUR_MS, 10**10]
    ages += [(2**b - 1) * HOUR_MS + d for b in range(1, 11) for d in (-1, 0, 1)]
    for ms in ages:
        assert _bucket_ms(ms) == age_bucket(ms / HOUR_MS), ms


def test_counters_and_ratios_by_hand():
    counters = PostCounters()
    for event in _feed(counters):
        counters.observe(*event)
    end = _ms(T0 + timedelta(minutes=210))
    assert counters.values(1, end) == pytest.approx(POST_1)
    assert counters.values(2, end) == pytest.approx(POST_2)
    # a post whose creation was never seen: counts only
    counters.observe(99, "view", end)
    unknown = counters.values(99, end)
    assert unknown["views"] == 1 and unknown["post_age_hours"] is None
    assert unknown["reports_per_view"] is None


def test_features_at_moments_count_events_up_to_each_moment():
    counters = PostCounters()
    events = list(_feed(counters))
    at = [_ms(T0 + timedelta(minutes=m)) for m in (210, 30, 5, 29)]
    got = features_at(counters, events, [(1, at[0]), (1, at[1]), (1, at[2]), (1, at[3])])
    assert got[0] == pytest.approx(POST_1)
    # at +30 min the report counts (its own moment), at +29 it does not; at +5 nothing yet
    assert (got[1]["views"], got[1]["reports"]) == (2, 1)
    assert (got[3]["views"], got[3]["reports"]) == (2, 0)
    assert got[2]["views"] == 0 and got[2]["post_age_hours"] == pytest.approx(5 / 60)
    # at +29 min: 2 views, no reaction but views yet in the prior: p = 0 -> 0 / 102
    assert got[3]["reports_per_view"] == 0.0


def _counters_tables(db: Path) -> tuple[list, list]:
    con = sqlite3.connect(db)
    try:
        posts = con.execute("select * from post_counter order by post_id").fetchall()
        platform = con.execute("select * from post_platform order by bucket").fetchall()
    finally:
        con.close()
    return posts, platform


def _pending(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        return con.execute("select count(*) from post_push_pending").fetchone()[0]
    finally:
        con.close()


@pytest.fixture(params=["sqlite", "redis"])
def feast_store(request, tmp_path, monkeypatch):
    """A fresh data root and Feast project, applied, on the SQLite file or the local Redis."""
    if request.param == "redis":
        import redis

        try:
            redis.Redis(host="127.0.0.1", port=6379).ping()
        except redis.exceptions.ConnectionError:
            pytest.skip("no Redis server at 127.0.0.1:6379")
    from vigil.serving import features

    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    monkeypatch.setenv("VIGIL_ONLINE_STORE", request.param)
    monkeypatch.setenv("VIGIL_REDIS_URL", "127.0.0.1:6379")
    monkeypatch.setenv("VIGIL_FEAST_PROJECT", f"vigil_test_{uuid.uuid4().hex[:10]}")
    features.apply()
    yield request.param
    features.store().teardown()


@pytest.mark.feast
def test_stream_writes_exact_counters_the_service_reads(tmp_path, feast_store):
    from vigil.serving.online import OnlineReader

    raw = tmp_path / "raw"
    write_timeline(raw)
    result = process(
        RunOptions(
            source="files",
            raw_dir=raw,
            state_path=tmp_path / "s.sqlite",
            once=True,
            push=True,
            post_counters=True,
        )
    )
    assert result["post_counters"] == {"posts": 2, "rows_pushed": 2}
    reader = OnlineReader("moderation_v1")  # the scoring service's read
    for post_id, author, expected in ((1, 7, POST_1), (2, 8, POST_2)):
        got = reader.read(post_id=post_id)
        assert got["user_id"] == author  # the author the stream saw create the post
        served = {k.split("__")[1]: v for k, v in got.items() if k.startswith("post_behavior__")}
        assert served == pytest.approx(expected)
    assert _counters_tables(tmp_path / "s.sqlite")[0] == [
        (1, 2, 1, 1, 1, 1, 1, 0, 1, _ms(T0), 7),
        (2, 2, 0, 0, 1, 0, 0, 0, 0, _ms(T0 + timedelta(hours=3)), 8),
    ]
    assert _pending(tmp_path / "s.sqlite") == 0  # both written, none left to write again


def _brute_counts(truth: list[dict]) -> list[tuple]:
    """post_counter rows worked out from the generator's unique events."""
    rows: dict[int, list] = {}
    index = {"view": 0, "like": 1, "share": 2, "reply": 3, "dislike": 4, "report": 5, "block": 6}
    for ev in truth:
        pid = ev.get("post_id")
        if pid is None:
            continue
        rec = rows.setdefault(pid, [0] * 8 + [None, None])
        if ev["action"] == "post":
            rec[8], rec[9] = _ms(ev["ts"]), ev["user_id"]
        elif ev["action"] in index:
            rec[index[ev["action"]]] += 1
            if ev["action"] == "reply" and ev["text"] in NEGATIVE:
                rec[7] += 1
    return [(pid, *rec) for pid, rec in sorted(rows.items())]


def test_two_runs_equal_one_and_the_counts_equal_a_brute_force(tmp_path):
    raw = tmp_path / "raw"
    truth = write_busy_world(raw, posts=8, events=2500, seed=3)
    files = sorted((raw / "events").rglob("*.jsonl"))
    opts = {"source": "files", "once": True, "push": False, "post_counters": True}
    process(RunOptions(raw_dir=raw, state_path=tmp_path / "one.sqlite", **opts))
    # the second run resumes from the first's checkpoint with the rest of the files
    split = tmp_path / "split"
    for f in files[: len(files) // 2]:
        dest = split / f.relative_to(raw)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(f.read_bytes())
    process(RunOptions(raw_dir=split, state_path=tmp_path / "two.sqlite", **opts))
    for f in files[len(files) // 2 :]:
        dest = split / f.relative_to(raw)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(f.read_bytes())
    process(RunOptions(raw_dir=split, state_path=tmp_path / "two.sqlite", **opts))
    one = _counters_tables(tmp_path / "one.sqlite")
    assert one == _counters_tables(tmp_path / "two.sqlite")
    assert _pending(tmp_path / "one.sqlite") == 0  # --no-push keeps no list of posts to write
    assert one[0] == _brute_counts(truth)


def test_post_counters_refuse_several_redis_consumers(tmp_path):
    with pytest.raises(UserError, match="one processor"):
        process(
            RunOptions(
                source="redis",
                state_path=tmp_path / "s.sqlite",
                consumers=2,
                push=False,
                post_counters=True,
            )
        )


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
def test_kill9_then_restart_gives_the_same_post_counters(tmp_path):
    raw = tmp_path / "raw"
    truth = write_busy_world(raw, posts=40, events=40_000, seed=22)
    common = ["--raw", str(raw), "--once", "--no-push", "--post-counters"]
    common += ["--checkpoint-events", "700", "--checkpoint-seconds", "0.05"]
    t = time.time()
    ref = _vigil_stream(tmp_path, *common, "--state", str(tmp_path / "ref.sqlite"))
    assert ref.wait(timeout=300) == 0, ref.stderr.read().decode()[-2000:]
    uninterrupted = time.time() - t
    rng = random.Random(2027)
    kills = 0
    for _attempt in range(5):
        proc = _vigil_stream(tmp_path, *common, "--state", str(tmp_path / "crash.sqlite"))
        time.sleep(rng.uniform(0.2, 0.7) * uninterrupted)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
    assert kills >= 2, f"the run finished before it could be killed ({uninterrupted:.1f} s)"
    final = _vigil_stream(tmp_path, *common, "--state", str(tmp_path / "crash.sqlite"))
    assert final.wait(timeout=300) == 0, final.stderr.read().decode()[-2000:]
    ref_tables = _counters_tables(tmp_path / "ref.sqlite")
    assert _counters_tables(tmp_path / "crash.sqlite") == ref_tables
    assert ref_tables[0] == _brute_counts(truth)


class _Scorer(http.server.BaseHTTPRequestHandler):
    """A stand-in scoring service: on each re-score it reads the post's online features through
    the service's own reader (built by the test) and records them."""

    reader: ClassVar = None
    seen: ClassVar[list] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        got = _Scorer.reader.read(post_id=body["post_id"])
        _Scorer.seen.append((body["trigger"], got["post_behavior__views"]))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.mark.feast
def test_a_rescore_reads_the_counters_of_the_events_that_triggered_it(tmp_path, feast_store):
    """Counters are written before the checkpoint's requests are delivered: a views_N re-score
    reads at least N views (never an older value), with many small checkpoints."""
    from vigil.serving.online import OnlineReader

    raw = tmp_path / "raw"
    write_busy_world(raw, posts=3, events=1200, seed=9)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Scorer)
    _Scorer.seen = []
    _Scorer.reader = OnlineReader("moderation_v1")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        process(
            RunOptions(
                source="files",
                raw_dir=raw,
                state_path=tmp_path / "s.sqlite",
                once=True,
                push=True,
                post_counters=True,
                checkpoint_events=50,
                rescore_url=f"http://127.0.0.1:{server.server_address[1]}",
            )
        )
    finally:
        server.shutdown()
    views = [
        (int(m.group(1)), served)
        for trigger, served in _Scorer.seen
        for m in [re.search(r"views_(\d+)", trigger)]
        if m
    ]
    assert len(views) >= 6  # 3 posts x views 16, 32, ...
    assert all(served >= n for n, served in views), views
