"""Scheduled posts: publication lag under 200/s bursts, and exactly once across SIGKILLs.

For each store (SQLite file, PostgreSQL database): loads a day's backlog (``--day-posts``, default
100k posts spread over the next 24 h), then schedules bursts at 200 posts/s (``--bursts`` bursts
of ``--burst-seconds``, like the top of an hour) on top of a background trickle, runs two
``vigil schedule publish`` processes (no model) and, with ``--kills``, SIGKILLs one of them at
seeded moments (restarting it). Reports publication lag (published_at - scheduled_at) p50 / p99
/ max, how many posts were reclaimed after a kill, and checks every due post is in the raw log
exactly once (counted from the files).

    python -m bench schedule                      # both stores, 3 bursts, no kills
    python -m bench schedule --kills 20           # the issue's 20 kills
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _publisher(db: str, raw: Path, home: Path) -> subprocess.Popen:
    args = [
        sys.executable, "-m", "vigil.cli", "schedule", "--db", db, "publish", "--raw", str(raw),
        "--no-model", "--batch-size", "200", "--lease-seconds", "2", "--poll-seconds", "0.05",
    ]  # fmt: skip
    env = dict(os.environ, VIGIL_HOME=str(home))
    return subprocess.Popen(args, env=env, start_new_session=True, stderr=subprocess.DEVNULL)


def _raw_counts(raw: Path) -> Counter:
    counts: Counter = Counter()
    for path in raw.glob("events/dt=*/hour=*.jsonl"):
        for line in path.read_bytes().splitlines():
            if line.strip():
                counts[json.loads(line)["event_id"]] += 1
    return counts


def _schedule(args, start_ms: int, rng: random.Random) -> list[tuple[int, str, int]]:
    """Burst posts (200/s for burst_seconds, every gap_seconds) and a 2/s background trickle."""
    posts = []
    for b in range(args.bursts):
        at0 = start_ms + int(b * args.gap_seconds * 1000)
        n = int(args.rate * args.burst_seconds)
        posts += [
            (rng.randint(1, 50_000), f"burst {b} post {i}", at0 + i * 1000 // args.rate)
            for i in range(n)
        ]
    span = int(args.bursts * args.gap_seconds * 1000)
    posts += [
        (rng.randint(1, 50_000), f"trickle {i}", start_ms + rng.randrange(span))
        for i in range(span // 500)
    ]
    return posts


def run_one(kind: str, db: str, args, work: Path) -> dict:
    from vigil.schedule.store import now_ms, open_store

    store = open_store(db)
    rng = random.Random(args.seed)
    day0 = now_ms() + 3_600_000  # the day's backlog is not due during the run
    backlog = [
        (rng.randint(1, 50_000), f"later {i}", day0 + rng.randrange(86_400_000))
        for i in range(args.day_posts)
    ]
    for i in range(0, len(backlog), 20_000):
        store.add_many(backlog[i : i + 20_000])
    start = now_ms() + 3_000
    due = _schedule(args, start, rng)
    store.add_many(due)
    raw = work / f"raw-{kind}"
    procs = [_publisher(db, raw, work) for _ in range(2)]
    end = start + int(args.bursts * args.gap_seconds * 1000)
    kill_times = sorted(rng.uniform(0, (end - now_ms()) / 1000) for _ in range(args.kills))
    t0 = time.monotonic()
    try:
        for at in kill_times:
            time.sleep(max(0.0, at - (time.monotonic() - t0)))
            victim = rng.randrange(2)
            os.kill(procs[victim].pid, signal.SIGKILL)
            procs[victim].wait()
            procs[victim] = _publisher(db, raw, work)
        deadline = time.monotonic() + 120
        while store.counts().get("published", 0) < len(due) and time.monotonic() < deadline:
            time.sleep(0.25)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)
    with store.transaction() as tx:
        rows = tx.all(
            "SELECT id, scheduled_at, published_at, attempts FROM scheduled_posts "
            "WHERE status = 'published'"
        )
    lag = np.array([r["published_at"] - r["scheduled_at"] for r in rows], dtype=float)
    first = np.array([r["attempts"] == 1 for r in rows], dtype=bool)
    counts = _raw_counts(raw)
    published = {f"sched-{r['id']}" for r in rows}
    store.close()
    return {
        "store": kind,
        "due posts": len(due),
        "backlog": args.day_posts,
        "published": len(rows),
        "in raw log": len(counts),
        "duplicates": sum(n - 1 for n in counts.values()),
        "missing": len(published - set(counts)),
        "kills": args.kills,
        "reclaimed": sum(1 for r in rows if r["attempts"] > 1),
        "lag p50 ms": float(np.percentile(lag, 50)) if len(lag) else None,
        "lag p99 ms": float(np.percentile(lag, 99)) if len(lag) else None,
        "lag max ms": float(lag.max()) if len(lag) else None,
        "lag p99 ms, posts claimed once": _p99(lag[first]),
        "lag p99 ms, reclaimed posts": _p99(lag[~first]),
    }


def _p99(values) -> float | None:
    return float(np.percentile(values, 99)) if len(values) else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench schedule")
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--day-posts", type=int, default=100_000)
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--burst-seconds", type=float, default=5.0)
    parser.add_argument("--gap-seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=200, help="posts per second in a burst")
    parser.add_argument("--kills", type=int, default=0)
    parser.add_argument("--seed", type=int, default=24)
    args = parser.parse_args(argv or [])
    import psycopg
    from psycopg import sql

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-schedule-") as tmp:
        work = Path(tmp)
        for kind in args.stores.split(","):
            if kind == "sqlite":
                results.append(run_one(kind, f"sqlite:///{work / 'schedule.sqlite3'}", args, work))
                continue
            name = f"vigil_schedule_bench_{secrets.token_hex(3)}"
            try:
                results.append(
                    run_one(kind, f"postgresql://postgres@127.0.0.1:5432/{name}", args, work)
                )
            finally:
                with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                    admin.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(name)
                        )
                    )
    for r in results:
        print(json.dumps(r))
        if r["duplicates"] or r["missing"] or r["published"] != r["due posts"]:
            print(f"bench schedule: {r['store']}: NOT exactly once", file=sys.stderr)
