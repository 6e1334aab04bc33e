"""Stream processor: throughput on one core, push lag, memory per million users.

One run, side by side:

- Throughput (events/s, the process pinned to one CPU) over simulated raw logs, against baselines
  on the same lines: the floor (read + ``json.loads``, nothing else: no UAM computation can be
  cheaper in Python), ingest's exact per-line validator, and the stream's validator alone.
  ``vigil stream`` includes validation, dedupe, state updates and SQLite checkpoints every 1 s.
- Lag: ``vigil stream --replay`` feeds Redis Streams at ``--rate`` events/s while the processor
  (production profile: Redis source, Feast push to the SQLite online store, checkpoint every
  ``--checkpoint-seconds``) runs; lag = push completed - XADD time of each event.
- Memory: the per-user state of the simulated month is measured (RSS and deep size), then cloned
  to ``--clone-users`` users (default 100k) with their real day-record mix, measured again, and
  extrapolated to 1M users. Checkpoint bytes per user (SQLite) are reported too.

    python -m bench stream [--users 3000] [--days 30] [--rate 1000 10000]
                           [--checkpoint-seconds 0.5 0.25] [--lag-seconds 20]

- Redis end to end: the same lines XADDed (batched entries, 8 partitions; not timed), then one
  consumer reads them all until idle, no push.
- End to end (files and Redis) runs ``--e2e-rounds`` times (default 3), each round with the floor
  (read the hour files + ``json.loads``) on all the same lines; the best round of each is shown.
- Seen ids: the ids of the lateness horizon as sets of str per day vs digest arrays per day.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

from bench.stream_report import print_report

log = logging.getLogger(__name__)


def _lines(raw: Path, limit: int) -> list[tuple[str, bytes]]:
    out = []
    for f in sorted(raw.glob("events/dt=*/hour=*.jsonl")):
        rel = str(f.relative_to(raw))
        for line in f.read_bytes().split(b"\n")[:-1]:
            out.append((rel, line))
            if len(out) >= limit:
                return out
    return out


CHUNK = 5000


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("nan")


def _core_run(path: Path, chunks: list, n: int, feed=None) -> None:
    """The stream core over ``chunks`` (checkpoint every second), with ``feed`` attached if given."""
    from vigil.stream.state import StreamState

    state = StreamState(path)
    if feed is not None:
        feed(state.con).attach(state)
    last = time.perf_counter()
    for i, (chunk, lims) in enumerate(chunks):
        state.apply_lines(chunk, lims)
        if time.perf_counter() - last >= 1.0:
            state.checkpoint({"bench": str(i)})
            last = time.perf_counter()
    state.checkpoint({"bench": str(n)})
    state.close()


# 83 lines: the floors and the core are timed interleaved in one loop so they share the machine's state
def bench_baselines(raw: Path, limit: int, state_dir: Path, repeats: int = 3) -> dict:
    """Events/s on the same first ``limit`` lines, interleaved ``repeats`` times, best of each.

    The machine is shared, so each path runs in every round and keeps its best round.
    """
    from vigil.lake import validation as ingest
    from vigil.stream.batch import parse_lines
    from vigil.stream.columns import parse_columns
    from vigil.stream.events import file_limit_us, parse_event

    lines = _lines(raw, limit)
    limits = [file_limit_us(rel) for rel, _ in lines]
    pairs = list(zip((line for _, line in lines), limits, strict=True))

    def floor() -> None:
        for line, _ in pairs:
            try:
                json.loads(line)
            except ValueError:  # the simulator's corrupt lines
                pass

    def exact() -> None:
        for line, lim in pairs:
            try:
                ingest.check_event(ingest.parse_line(line), lim)
            except ingest.Bad:
                pass

    def validator() -> None:  # the per-line validator (json.loads + fast path)
        for line, lim in pairs:
            parse_event(line, lim)

    # what vigil stream applies at once: a chunk of lines (the file source reads 1 MB chunks)
    chunks = [
        ([line for line, _ in pairs[i : i + CHUNK]], [lim for _, lim in pairs[i : i + CHUNK]])
        for i in range(0, len(pairs), CHUNK)
    ]

    def batch() -> None:  # msgspec typed decoding of whole chunks
        for chunk, lims in chunks:
            parse_lines(chunk, lims)

    def columnar() -> None:  # what the stream uses: the same checks, columns per chunk
        for chunk, lims in chunks:
            parse_columns(chunk, lims)

    def core() -> None:  # what vigil stream does per chunk, minus reading files
        _core_run(state_dir / f"core-{time.monotonic_ns()}.sqlite", chunks, len(pairs))

    def core_triggers() -> None:  # the same with re-score triggers on (issue 22): outbox only
        from vigil.stream.rescore import RescoreFeed

        _core_run(
            state_dir / f"core-trig-{time.monotonic_ns()}.sqlite", chunks, len(pairs), RescoreFeed
        )

    def core_posts() -> None:  # the core with exact post counters (issue 22): no online write
        from vigil.stream.post_counters import PostCounterFeed

        _core_run(
            state_dir / f"core-posts-{time.monotonic_ns()}.sqlite",
            chunks,
            len(pairs),
            PostCounterFeed,
        )

    paths = {
        "floor_json_loads": floor,
        "ingest_exact_validator": exact,
        "stream_validator": validator,
        "stream_batch_parser": batch,
        "stream_columnar_parser": columnar,
        "stream_core": core,
        "stream_core_triggers": core_triggers,
        "stream_core_post_counters": core_posts,
    }
    best = dict.fromkeys(paths, 0.0)
    for _ in range(repeats):
        for name, fn in paths.items():
            t = time.perf_counter()
            fn()
            best[name] = max(best[name], _rate(len(pairs), time.perf_counter() - t))
    return {"lines": len(pairs), "repeats": repeats, **best}


_MEASURE_LOADED = """
import gc, json, sys, psutil
from pathlib import Path
from vigil.stream.state import StreamState, _deep_size
proc = psutil.Process(); gc.collect(); rss0 = proc.memory_info().rss
state = StreamState(Path(sys.argv[1]), memory_budget_bytes=1 << 40)
gc.collect(); rss1 = proc.memory_info().rss
n = len(state.users)
deep = sum(_deep_size(uid, u) for uid, u in state.users.items())
print(json.dumps({"users": n, "rss": rss1 - rss0, "deep": deep, "seen": len(state.seen),
                  "seen_bytes": state.seen.nbytes()}))
"""


def _rss() -> int:
    import psutil

    gc.collect()
    return psutil.Process().memory_info().rss


def bench_memory(state_path: Path, clone_users: int) -> dict:
    """Bytes per user of the checkpointed state, as loaded, and cloned to ``clone_users`` users."""
    from vigil.stream.state import StreamState, UserState, _deep_size

    tmp = state_path.parent / "mem"
    tmp.mkdir(exist_ok=True)
    # the checkpoint as a restarted processor loads it, measured in a fresh interpreter
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE_LOADED, str(state_path)],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ),
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    state = StreamState(state_path, memory_budget_bytes=1 << 40)
    users = dict(state.users)
    n = len(users)
    active = [u for u in users.values() if u.days]
    days_per_user = sum(len(u.days) for u in active) / max(1, len(active))
    state.close()
    del state
    # clone the measured users (fresh objects, real day-record mix) up to clone_users
    rss2 = _rss()
    clone = StreamState(tmp / "clone.sqlite", memory_budget_bytes=1 << 40)
    base = list(users.values())
    offset = 10**9
    for i in range(clone_users):
        src = base[i % len(base)]
        u = UserState()
        u.posts_total = src.posts_total
        u.days = {d: [rec[0] | 0, *rec[1:8], rec[8]] for d, rec in src.days.items()}
        clone.users[offset + i] = u
    rss3 = _rss()
    clone_deep = sum(_deep_size(uid, u) for uid, u in clone.users.items())
    clone.close()
    sqlite_bytes = state_path.stat().st_size
    return {
        "users": n,
        "day_records_per_user": round(days_per_user, 2),
        "rss_bytes_per_user": loaded["rss"] / max(1, n),
        "deep_bytes_per_user": loaded["deep"] / max(1, n),
        "seen_ids": loaded["seen"],
        "seen_bytes_per_user": loaded["seen_bytes"] / max(1, n),
        "clone_users": clone_users,
        "clone_rss_bytes_per_user": (rss3 - rss2) / clone_users,
        "clone_deep_bytes_per_user": clone_deep / clone_users,
        "sqlite_bytes_per_user": sqlite_bytes / max(1, n),
    }


def bench_seen(raw: Path, state_path: Path) -> dict:
    """Seen-id memory per user, side by side: the same ids (those in the lateness horizon at the
    end of the run) as Python sets of str per day (the former structure) and as digests in
    sorted arrays per day (:class:`vigil.stream.seen.SeenIds`), both measured by getsizeof."""
    from vigil.stream.batch import parse_lines
    from vigil.stream.events import DAY_MS, NO_LIMIT_US
    from vigil.stream.seen import SeenIds, digest
    from vigil.stream.state import StreamState

    state = StreamState(state_path, memory_budget_bytes=1 << 40)
    seen_from = state._seen_from_day()
    users = len(state.users)
    state.close()
    by_day: dict[int, set[str]] = {}
    for f in sorted(raw.glob("events/dt=*/hour=*.jsonl")):
        for ev in parse_lines(f.read_bytes().split(b"\n")[:-1], NO_LIMIT_US):
            if type(ev) is tuple and ev[1] // DAY_MS >= seen_from:
                by_day.setdefault(ev[1] // DAY_MS, set()).add(ev[0])
    sets_bytes = sys.getsizeof(by_day) + sum(
        sys.getsizeof(ids) + sum(map(sys.getsizeof, ids)) for ids in by_day.values()
    )
    compact = SeenIds()
    for day, ids in by_day.items():
        compact.load(day, [digest(e) for e in ids])
    n_ids = sum(map(len, by_day.values()))
    return {
        "ids": n_ids,
        "users": users,
        "sets_bytes_per_user": sets_bytes / max(1, users),
        "digests_bytes_per_user": compact.nbytes() / max(1, users),
        "sets_bytes_per_id": sets_bytes / max(1, n_ids),
        "digests_bytes_per_id": compact.nbytes() / max(1, n_ids),
    }


def bench_redis_throughput(raw: Path, root: Path, state_name: str = "redis-tp.sqlite") -> dict:
    """``vigil stream --source redis`` end to end on the same simulated lines: the stream is
    filled first (not timed), then one consumer reads all 8 partitions until idle, no push."""
    import redis

    from vigil import config
    from vigil.stream.processor import RunOptions, process
    from vigil.stream.replay import replay

    key = f"vigil-bench-stream-tp:{uuid.uuid4().hex[:8]}"
    partitions = 8
    host, _, port = config.redis_url().replace("redis://", "").partition(":")
    client = redis.Redis(host=host, port=int(port.split("/")[0] or 6379))
    try:
        fill = replay(raw, 0, sink="redis", stream_key=key, partitions=partitions)
        cpu = time.process_time()
        run = process(
            RunOptions(
                source="redis",
                stream_key=key,
                partitions=partitions,
                state_path=root / state_name,
                once=True,
                push=False,
                checkpoint_seconds=1.0,
            )
        )
    finally:
        client.delete(*[f"{key}:{p}" for p in range(partitions)])
        client.close()
    return {
        "cpu_s": time.process_time() - cpu,
        "lines": fill["events"],
        "entries_read": run["read"],
        "seconds": run["seconds"],
        "events_per_s": run["read"] / run["seconds"] if run["seconds"] else float("nan"),
        "lines_per_s": fill["events"] / run["seconds"] if run["seconds"] else float("nan"),
        "counters": run["counters"],
    }


def bench_lag(raw: Path, rate: float, seconds: float, checkpoint_seconds: float) -> dict:
    """Replay into Redis at ``rate`` while the processor pushes to Feast; lag percentiles."""
    from vigil.serving import features
    from vigil.stream.processor import RunOptions, process

    features.apply()
    key = f"vigil-bench-stream:{uuid.uuid4().hex[:8]}"
    partitions = 4
    limit = int(rate * seconds)
    code = (
        "import sys; from vigil.stream.replay import replay; "
        f"replay({str(raw)!r}, {rate}, sink='redis', stream_key={key!r}, partitions={partitions}, "
        f"batch=100, limit={limit})"
    )
    feeder = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ))
    try:
        result = process(
            RunOptions(
                source="redis",
                stream_key=key,
                partitions=partitions,
                state_path=Path(os.environ["VIGIL_HOME"]) / f"lag-{key.rsplit(':', 1)[-1]}.sqlite",
                push=True,
                checkpoint_seconds=checkpoint_seconds,
                max_seconds=seconds + 3,
            )
        )
        feeder.wait(timeout=60)
    finally:
        if feeder.poll() is None:
            feeder.kill()
        import redis

        from vigil import config

        host, _, port = config.redis_url().partition(":")
        redis.Redis(host=host, port=int(port or 6379)).delete(
            *[f"{key}:{p}" for p in range(partitions)]
        )
    return {
        "rate": rate,
        "events": result["lag"].get("events", 0),
        "rows_pushed": result["rows_pushed"],
        "checkpoint_seconds": checkpoint_seconds,
        "processed_per_s": result["events_per_s"],
        **result["lag"],
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench stream", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--baseline-lines", type=int, default=200_000)
    parser.add_argument("--clone-users", type=int, default=100_000)
    parser.add_argument(
        "--rate",
        type=float,
        nargs="+",
        default=[1000.0, 10000.0],
        help="replay rates (events/s) for the lag test",
    )
    parser.add_argument("--lag-seconds", type=float, default=20.0)
    parser.add_argument(
        "--checkpoint-seconds",
        type=float,
        nargs="+",
        default=[0.5, 0.25],
        help="checkpoint (and push) intervals for the lag test, each at every rate",
    )
    parser.add_argument(
        "--e2e-rounds",
        type=int,
        default=3,
        help="end-to-end runs (files, Redis), each interleaved with the floor on all lines",
    )
    parser.add_argument("--no-lag", action="store_true", help="skip the Redis + Feast lag test")
    parser.add_argument(
        "--no-redis", action="store_true", help="skip the Redis end-to-end throughput"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary data root")
    return parser


def main(argv: list[str] | None = None) -> dict:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    root = Path(tempfile.mkdtemp(prefix="vigil-bench-stream-"))
    saved = {
        k: os.environ.get(k) for k in ("VIGIL_HOME", "VIGIL_ONLINE_STORE", "VIGIL_FEAST_PROJECT")
    }
    os.environ["VIGIL_HOME"] = str(root)
    os.environ["VIGIL_ONLINE_STORE"] = "sqlite"
    os.environ["VIGIL_FEAST_PROJECT"] = f"vigil_bench_stream_{os.getpid()}"
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    results: dict = {"params": vars(args)}
    try:
        if affinity:
            os.sched_setaffinity(0, {min(affinity)})  # one core
        from sim.world import simulate

        raw = root / "raw"
        t = time.perf_counter()
        sim = simulate(
            raw, users=args.users, days=args.days, start=date(2026, 10, 1), seed=args.seed
        )
        results["simulate_s"] = time.perf_counter() - t
        results["lines"] = sim.get("lines")
        (root / "core").mkdir()
        results["baselines"] = bench_baselines(raw, args.baseline_lines, root / "core")
        state_path = root / "stream" / "state.sqlite"
        results.update(_end_to_end(raw, root, state_path, args.e2e_rounds, not args.no_redis))
        results["memory"] = bench_memory(state_path, args.clone_users)
        results["seen"] = bench_seen(raw, state_path)
        if affinity:
            os.sched_setaffinity(0, affinity)
        if not args.no_lag:
            results["lag"] = [
                bench_lag(raw, rate, args.lag_seconds, every)
                for rate in args.rate
                for every in args.checkpoint_seconds
            ]
    finally:
        if affinity:
            os.sched_setaffinity(0, affinity)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print_report(results)
    return results


def _stream_files(raw: Path, state_path: Path) -> dict:
    """One uninterrupted `vigil stream --once` over the raw files, without the Feast push."""
    from vigil.stream.processor import RunOptions, process

    cpu = time.process_time()
    run = process(
        RunOptions(
            source="files",
            raw_dir=raw,
            state_path=state_path,
            once=True,
            push=False,
            checkpoint_seconds=1.0,
        )
    )
    return {
        "events": run["read"],
        "seconds": run["seconds"],
        "events_per_s": run["events_per_s"],
        "cpu_s": time.process_time() - cpu,
        "checkpoints": run["checkpoints"],
        "counters": run["counters"],
    }


def _floor_all(raw: Path) -> dict:
    """The floor on every line, as ``vigil stream`` gets them: read each hour file, split it
    into lines, ``json.loads`` each."""
    t, cpu = time.perf_counter(), time.process_time()
    n = 0
    for f in sorted(raw.glob("events/dt=*/hour=*.jsonl")):
        for line in f.read_bytes().split(b"\n")[:-1]:
            n += 1
            try:
                json.loads(line)
            except ValueError:  # the simulator's corrupt lines
                pass
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    return {"events": n, "seconds": seconds, "events_per_s": _rate(n, seconds), "cpu_s": cpu}


def _end_to_end(raw: Path, root: Path, state_path: Path, rounds: int, redis: bool) -> dict:
    """``vigil stream`` end to end from files (and from Redis) on all lines, ``rounds`` times
    interleaved with the floor on the same lines; the best round of each (the machine is
    shared: a burst of load in one run must not decide the figure)."""
    runs: dict[str, list[dict]] = {}
    for k in range(rounds):
        runs.setdefault("floor_all", []).append(_floor_all(raw))
        path = state_path if k == 0 else root / "stream" / f"state-{k}.sqlite"
        runs.setdefault("stream", []).append(_stream_files(raw, path))
        if redis:
            redis_run = bench_redis_throughput(raw, root, f"redis-tp-{k}.sqlite")
            runs.setdefault("redis", []).append(redis_run)
    best = {}
    for name, done in runs.items():
        key = "lines_per_s" if name == "redis" else "events_per_s"
        best[name] = {
            **max(done, key=lambda run: run[key]),
            "rounds": [d[key] for d in done],
            "cpu_rounds": [d["cpu_s"] for d in done],
        }
    return best


if __name__ == "__main__":
    main()
