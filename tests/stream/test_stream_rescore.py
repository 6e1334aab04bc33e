"""`vigil stream --triggers/--rescore`: re-score requests from applied events.

The expected requests come from a brute force written here, from the generator's own event list
(not from vigil's parsers or vigil.stream.triggers): count each post's reports, views and
negative replies in event order, apply the rule (first report and each doubling; views 16, 32,
64, ...; negative replies 3, 10, 30) and the 10-minute debounce by hand.
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
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest

from vigil.errors import UserError
from vigil.stream.processor import RunOptions, process
from vigil.stream.rescore import DISGUST_PATTERN

REPO = Path(__file__).resolve().parents[2]
DEBOUNCE_MS = 10 * 60_000
NEGATIVE = ("ew, gross", "Disgusting.", "so vile", "yuck!")
PLAIN = ("a reply", "grossly unfair? no: great", "news")  # "grossly" is no whole-word match


def _ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def write_world(raw: Path, *, posts: int = 12, events: int = 3000, seed: int = 5) -> list[dict]:
    """Hour files of events on a few posts, in event-time order, with repeated lines (the
    at-least-once pipeline) and bad lines; returns the unique events in order (the truth)."""
    rng = random.Random(seed)
    t = datetime(2026, 9, 1, tzinfo=UTC)
    truth = []
    for p in range(1, posts + 1):
        truth.append(
            {
                "event_id": f"p{p}",
                "ts": t,
                "user_id": p,
                "action": "post",
                "post_id": p,
                "text": "hi",
            }
        )
        t += timedelta(seconds=1)
    for i in range(events):
        t += timedelta(milliseconds=rng.randrange(1, 20_000))
        action = rng.choices(["view", "report", "reply", "like", "login"], [60, 8, 12, 15, 5])[0]
        ev = {"event_id": f"e{i}", "ts": t, "user_id": rng.randint(1, 50), "action": action}
        if action != "login":
            ev["post_id"] = rng.choice(range(1, posts + 1))
            ev["target_user_id"] = ev["post_id"]
        if action == "reply":
            ev["text"] = rng.choice(NEGATIVE if rng.random() < 0.4 else PLAIN)
        if action == "login":
            ev["country"] = "US"
        truth.append(ev)
    by_file: dict[Path, list[str]] = {}
    for ev in truth:
        line = json.dumps({k: (_ts(v) if k == "ts" else v) for k, v in ev.items()})
        line = line.replace('"ts"', '"event_ts"')
        f = raw / "events" / f"dt={ev['ts'].date()}" / f"hour={ev['ts'].hour:02d}.jsonl"
        lines = by_file.setdefault(f, [])
        lines.append(line)
        if rng.random() < 0.03:
            lines.append(line)  # a repeat: a duplicate, applied once
        if rng.random() < 0.005:
            lines.append('{"event_id": "bad", "action": "view"}')
    for f, lines in by_file.items():
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("".join(x + "\n" for x in lines))
    return truth


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def brute_force(truth: list[dict]) -> list[tuple[int, int, str]]:
    """(post_id, at_ms, trigger) of every request, worked out from the events one by one."""
    counts: dict[tuple[int, str], int] = Counter()
    last: dict[int, int] = {}  # post -> event time of its last request
    pending: dict[int, list[str]] = {}
    out = []
    for ev in truth:
        pid, ts = ev.get("post_id"), _ms(ev["ts"])
        if pid is None or ev["action"] == "post":
            continue
        if pending.get(pid) and ts >= last[pid] + DEBOUNCE_MS:  # the window ended: send merged
            last[pid] += DEBOUNCE_MS
            out.append((pid, last[pid], "+".join(pending.pop(pid))))
        reason = None
        if ev["action"] == "report":
            counts[pid, "report"] += 1
            n = counts[pid, "report"]
            if n & (n - 1) == 0:  # 1, 2, 4, 8, ...
                reason = "first_report" if n == 1 else f"reports_{n}"
        elif ev["action"] == "view":
            counts[pid, "view"] += 1
            n = counts[pid, "view"]
            if n >= 16 and n & (n - 1) == 0:
                reason = f"views_{n}"
        elif ev["action"] == "reply" and ev["text"] in NEGATIVE:
            counts[pid, "neg"] += 1
            n = counts[pid, "neg"]
            if n in (3, 10, 30):
                reason = f"negative_replies_{n}"
        if reason is None:
            continue
        if pid not in last or ts - last[pid] >= DEBOUNCE_MS:
            last[pid] = ts
            out.append((pid, ts, reason))
        else:
            pending.setdefault(pid, []).append(reason)
    watermark = _ms(truth[-1]["ts"])
    for pid, reasons in pending.items():  # merged requests due by the last event
        if reasons and last[pid] + DEBOUNCE_MS <= watermark:
            out.append((pid, last[pid] + DEBOUNCE_MS, "+".join(reasons)))
    return sorted(out)


def _requests(path: Path) -> list[tuple[int, int, str]]:
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    return [(r["post_id"], r["at_ms"], r["trigger"]) for r in rows]


def _outbox(state: Path) -> int:
    con = sqlite3.connect(state)
    try:
        return con.execute("select count(*) from rescore_outbox").fetchone()[0]
    finally:
        con.close()


def _run(raw: Path, state: Path, **kw) -> dict:
    opts = RunOptions(source="files", raw_dir=raw, state_path=state, once=True, push=False, **kw)
    return process(opts)


def test_disgust_pattern_is_dbts():
    macros = (REPO / "dbt" / "macros" / "vars.sql").read_text()
    m = re.search(r"macro disgust_pattern\(\) -%\}\n(.*?)\n\{%- endmacro", macros, re.DOTALL)
    assert m is not None and m.group(1) == DISGUST_PATTERN


def test_replay_requests_equal_brute_force(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    raw = tmp_path / "raw"
    truth = write_world(raw)
    expected = brute_force(truth)
    reasons = Counter(t.split("_")[0] for _, _, trig in expected for t in trig.split("+"))
    assert reasons["first"] and reasons["reports"] and reasons["views"] and reasons["negative"]
    event_ms = {_ms(ev["ts"]) for ev in truth}
    assert any(at not in event_ms for _, at, _ in expected)  # sent at a debounce window's end
    out = tmp_path / "rescore.jsonl"
    result = _run(raw, tmp_path / "s.sqlite", triggers_file=out, checkpoint_events=211)
    assert result["counters"]["applied"] == len(truth)
    assert result["counters"]["duplicates"] > 0
    assert sorted(_requests(out)) == expected
    assert result["rescore"]["requests"] == len(expected)
    assert _outbox(tmp_path / "s.sqlite") == 0
    # without triggers, nothing is written and the state has no trigger tables
    plain = _run(raw, tmp_path / "plain.sqlite")
    assert "rescore" not in plain and plain["counters"] == result["counters"]


def test_in_two_runs_the_counters_carry_over(tmp_path, monkeypatch):
    """A run over the first half of the files, then one over all: same requests as one run."""
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    src = tmp_path / "src"
    truth = write_world(src, seed=9, events=1500)
    files = sorted(src.glob("events/dt=*/hour=*.jsonl"))
    part = tmp_path / "part"
    for f in files[: len(files) // 2]:
        (part / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
        (part / f.relative_to(src)).write_bytes(f.read_bytes())
    out = tmp_path / "rescore.jsonl"
    _run(part, tmp_path / "s.sqlite", triggers_file=out)
    for f in files[len(files) // 2 :]:
        (part / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
        (part / f.relative_to(src)).write_bytes(f.read_bytes())
    _run(part, tmp_path / "s.sqlite", triggers_file=out)
    assert sorted(_requests(out)) == brute_force(truth)


class _Service(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[list] = []
    fail_first = 0

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if _Service.fail_first > 0:
            _Service.fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        _Service.bodies.append((self.path, self.headers.get("Authorization"), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def test_failing_service_loses_nothing_and_a_later_run_delivers(tmp_path, monkeypatch):
    """Nothing listens: the stream finishes, requests stay in the outbox; the next run sends
    them (to a service that answers 503 once, then 200) with the token."""
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    monkeypatch.setenv("VIGIL_SERVE_TOKEN", "s3cret")
    raw = tmp_path / "raw"
    truth = write_world(raw, seed=3, events=1200)
    expected = brute_force(truth)
    state = tmp_path / "s.sqlite"
    down = _run(raw, state, rescore_url="http://127.0.0.1:9")  # the discard port: refused
    assert down["counters"]["applied"] == len(truth)
    assert down["rescore"]["delivered"] == 0 and down["rescore"]["failed"] > 0
    assert _outbox(state) == len(expected)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Service)
    _Service.bodies, _Service.fail_first = [], 1
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        up = _run(raw, state, rescore_url=url)
    finally:
        server.shutdown()
        server.server_close()
    assert up["read"] == 0  # no new events: only the outbox was sent
    assert up["rescore"]["delivered"] == len(expected) and _outbox(state) == 0
    assert {(p, a) for p, a, _ in _Service.bodies} == {("/v1/score", "Bearer s3cret")}
    got = sorted((b["post_id"], b["trigger"]) for _, _, b in _Service.bodies)
    assert got == sorted((p, trig) for p, _, trig in expected)


def test_triggers_refuse_several_redis_consumers(tmp_path):
    opts = RunOptions(source="redis", consumers=2, partitions=4, triggers_file=tmp_path / "r.jsonl")
    with pytest.raises(UserError, match="--consumers 1"):
        process(opts)


def _vigil_stream(home: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ, VIGIL_HOME=str(home))
    return subprocess.Popen(
        [sys.executable, "-m", "vigil.cli", "stream", *args],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _trigger_state(db: Path) -> list:
    con = sqlite3.connect(db)
    try:
        return con.execute("select * from trigger_post order by post_id").fetchall()
    finally:
        con.close()


@pytest.mark.slow
def test_kill9_repeats_requests_but_never_loses_one(tmp_path):
    raw = tmp_path / "raw"
    truth = write_world(raw, posts=40, events=60_000, seed=21)
    # `vigil stream --triggers` sends creation requests by default (and keeps post counters)
    creations = [
        (ev["post_id"], _ms(ev["ts"]), "creation") for ev in truth if ev["action"] == "post"
    ]
    expected = sorted(brute_force(truth) + creations)
    common = ["--raw", str(raw), "--once", "--no-push", "--checkpoint-events", "700"]
    common += ["--checkpoint-seconds", "0.05"]
    ref_out = tmp_path / "ref.jsonl"
    t = time.time()
    ref = _vigil_stream(
        tmp_path, *common, "--state", str(tmp_path / "ref.sqlite"), "--triggers", str(ref_out)
    )
    assert ref.wait(timeout=300) == 0, ref.stderr.read().decode()[-2000:]
    uninterrupted = time.time() - t
    assert sorted(_requests(ref_out)) == expected

    out = tmp_path / "crash.jsonl"
    rng = random.Random(2026)
    kills = 0
    for _attempt in range(5):
        proc = _vigil_stream(
            tmp_path, *common, "--state", str(tmp_path / "crash.sqlite"), "--triggers", str(out)
        )
        time.sleep(rng.uniform(0.2, 0.7) * uninterrupted)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
    assert kills >= 2, f"the run finished before it could be killed ({uninterrupted:.1f} s)"
    final = _vigil_stream(
        tmp_path, *common, "--state", str(tmp_path / "crash.sqlite"), "--triggers", str(out)
    )
    assert final.wait(timeout=300) == 0, final.stderr.read().decode()[-2000:]
    got = _requests(out)
    assert sorted(set(got)) == expected  # every request at least once
    assert _trigger_state(tmp_path / "crash.sqlite") == _trigger_state(tmp_path / "ref.sqlite")
    assert _outbox(tmp_path / "crash.sqlite") == 0
