"""The scoring service and its online feature reads: latency, side by side with Feast's own.

Builds a throwaway world (bench_features' synthetic marts: posts with 24 hourly snapshots, users
with 30 daily rows; a posts mart with seeded texts; a champion from bench/serving_world.py), then
for each online store (SQLite, Redis):

1. in-process reads of moderation_v1 (post + author, 33 features), the three readers interleaved
   call by call: ``vigil.serving.online.OnlineReader``, Feast's ``get_online_features`` with the
   feature service (store warm), and ``vigil.serving.features.online_features``; p50 / p99, and
   the reader's answers compared with Feast's;
2. over HTTP, one request at a time on a kept-alive connection: ``GET /v1/features/{id}`` of
   ``vigil serve`` against ``POST /get-online-features`` of ``vigil features serve`` (Feast's
   server), and ``--stall`` sequential reads of ``vigil serve`` for the longest pause;
3. open-loop load at ``--rate`` requests/s (a small asyncio client on 127.0.0.1, each latency
   counted from the request's scheduled time, so queueing shows): ``POST /v1/score`` with the
   student only (``--heavy never``), with the cascade (heavy model above tau, embeddings cached
   after one warm-up pass) and with the heavy model for every post; and Feast's server at the
   same rate (``--feast-requests`` of them: it keeps up with far less); p50 / p95 / p99 / max;
4. where the time goes: the score handler's steps (parse, resolve, feature read, model, decision
   log, response encoding) timed in process, student only and heavy model;
5. the floor: a bare FastAPI endpoint (bench/serving_floor.py: same uvicorn, no work) loaded at
   the same rate before the first store and after the last; ``p99_over_floor`` is each score
   run's p99 over the lower floor p99, the figure that means something on a loaded machine.

    python -m bench serving [--posts 2000] [--users 1000] [--calls 300] [--rate 200]
                            [--requests 1000] [--stall 10000] [--stores sqlite,redis] [--seed 7]
                            [--feast-requests 500]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
WORDS = [
    "sunny",
    "coffee",
    "garden",
    "music",
    "travel",
    "recipe",
    "idiot",
    "loser",
    "hate",
    "scam",
    "trash",
    "friends",
]


def _pct(samples, qs=(50, 99)) -> list[float]:
    a = np.asarray(samples, dtype=np.float64) * 1000.0
    return [round(float(np.percentile(a, q)), 3) for q in qs]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_posts(features_dir: Path, authors: np.ndarray, seed: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n = len(authors)
    texts = [" ".join(rng.choice(WORDS, rng.integers(3, 12))) + f" #{i}" for i in range(1, n + 1)]
    table = pa.table(
        {
            "post_id": pa.array(np.arange(1, n + 1), pa.int64()),
            "author_id": pa.array(authors, pa.int64()),
            "text": pa.array(texts, pa.string()),
        }
    )
    pq.write_table(table, features_dir / "posts.parquet")


# ---- 1. in process -----------------------------------------------------------------------------


def bench_in_process(rng, posts: int, authors, calls: int) -> dict:
    from vigil.serving import features
    from vigil.serving.online import OnlineReader

    fs = features.store()
    service = fs.get_feature_service("moderation_v1")
    reader = OnlineReader("moderation_v1")
    readers = {
        "vigil_online_reader": lambda p, a: reader.read(post_id=p, user_id=a),
        "feast_get_online_features": lambda p, a: fs.get_online_features(
            features=service, entity_rows=[{"post_id": p, "user_id": a}], full_feature_names=True
        ).to_dict(),
        "vigil_features_online_features": lambda p, a: features.online_features(post_id=p),
    }
    samples: dict[str, list[float]] = {name: [] for name in readers}
    mismatches = 0
    for i in range(calls + 20):
        p = int(rng.integers(1, posts + 2))  # posts + 1 exists nowhere: missing entities too
        a = int(authors[p - 1]) if p <= posts else 10**9
        got = {}
        for name, read in readers.items():
            t0 = time.perf_counter()
            got[name] = read(p, a)
            if i >= 20:
                samples[name].append(time.perf_counter() - t0)
        feast = {k: v[0] for k, v in got["feast_get_online_features"].items()}
        mismatches += got["vigil_online_reader"] != feast
    reader.close()
    return {name: _pct(s) for name, s in samples.items()} | {"mismatches": mismatches}


# ---- 1b. where a request's time goes, in process ----------------------------------------------


def handler_spans(rng, posts: int, calls: int, heavy: str, pool: int) -> dict:
    """The score handler's steps timed one by one (perf_counter) over ``calls`` requests, as the
    ASGI handler runs them, plus the response's encoding as FastAPI does it: p50 / p99 ms."""
    from fastapi.encoders import jsonable_encoder
    from fastapi.responses import JSONResponse

    from vigil.moderation import service

    parts = service.build(heavy=heavy)
    steps = ("parse", "resolve", "feature_read", "model", "decision_log", "encode", "total")
    samples: dict[str, list[float]] = {k: [] for k in steps}
    # the heavy runs' first pass (the pool, in order) fills the embedding cache, not timed
    warm = np.arange(1, pool + 1) if heavy != "never" else np.arange(1, 51)
    ids = np.r_[warm, rng.integers(1, (pool if heavy != "never" else posts) + 1, size=calls)]
    for i, p in enumerate(ids):
        t = [time.perf_counter()]
        body = service._parse(json.dumps({"post_id": int(p)}).encode())
        t.append(time.perf_counter())
        post_id, author_id, text = service._resolve(parts, body)
        t.append(time.perf_counter())
        vector = parts.reader.read(post_id=post_id, user_id=author_id)
        t.append(time.perf_counter())
        used = {c: vector.get(c) for c in parts.model.feature_columns}
        result = parts.model.score(text, used)
        t.append(time.perf_counter())
        parts.decisions.append({**result, "post_id": post_id, "trigger": "bench"})
        t.append(time.perf_counter())
        encoded = JSONResponse(jsonable_encoder({**result, "features": used})).body
        assert encoded
        t.append(time.perf_counter())
        if i >= len(warm):
            for k, name in enumerate(steps[:-1]):
                samples[name].append(t[k + 1] - t[k])
            samples["total"].append(t[-1] - t[0])
    parts.decisions.close()
    parts.reader.close()
    return {name: _pct(v) for name, v in samples.items() if v}


# ---- 2. sequential HTTP --------------------------------------------------------------------------


def _start(args: list[str], env: dict, health: str, module: str = "vigil.cli") -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    port = int(args[args.index("--port") + 1])
    deadline = time.monotonic() + 240
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", health)
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            raise RuntimeError(f"vigil {' '.join(args)} did not come up")
        time.sleep(0.5)


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _feast_request(post_id: int, author: int) -> tuple[str, str, bytes]:
    body = {
        "feature_service": "moderation_v1",
        "entities": {"post_id": [post_id], "user_id": [author]},
        "full_feature_names": True,
    }
    return "POST", "/get-online-features", json.dumps(body).encode()


def sequential(port: int, requests: list[tuple[str, str, bytes]]) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = []
    for method, path, body in requests:
        t0 = time.perf_counter()
        conn.request(method, path, body or None, {"Content-Type": "application/json"})
        response = conn.getresponse()
        payload = response.read()
        out.append(time.perf_counter() - t0)
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {payload[:300]!r}")
    return out


# ---- 3. open-loop load -------------------------------------------------------------------------


async def _one_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    await reader.readexactly(length)
    return status


async def _open_loop(port: int, requests, rate: float, max_connections: int = 64) -> dict:
    """Send ``requests`` at ``rate``/s whatever the answers' pace (open loop), over at most
    ``max_connections`` kept-alive connections; a reset connection counts as an error."""
    loop = asyncio.get_running_loop()
    idle: asyncio.Queue = asyncio.Queue()
    opened = 0
    latencies: list[float] = []
    errors = 0
    start = loop.time() + 0.2

    async def connection():
        nonlocal opened
        if idle.empty() and opened < max_connections:
            opened += 1
            return await asyncio.open_connection("127.0.0.1", port)
        return await idle.get()

    async def one(i: int, method: str, path: str, body: bytes) -> None:
        nonlocal errors, opened
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - loop.time()))
        conn = await connection()
        reader, writer = conn
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        try:
            writer.write(head.encode() + body)
            status = await _one_response(reader)
        except (ConnectionError, asyncio.IncompleteReadError):
            errors += 1
            writer.close()
            opened -= 1
            return
        latencies.append(loop.time() - scheduled)
        errors += status != 200
        idle.put_nowait(conn)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i, *r) for i, r in enumerate(requests)))
    wall = time.perf_counter() - t0
    while not idle.empty():
        idle.get_nowait()[1].close()
    p50, p95, p99 = _pct(latencies, (50, 95, 99))
    return {
        "p50": p50,
        "p95": p95,
        "p99": p99,
        "max": round(max(latencies) * 1000, 1),
        "rate_asked": rate,
        "rate_done": round(len(requests) / wall, 1),
        "errors": errors,
        "connections": opened,
    }


def load(port: int, requests, rate: float) -> dict:
    return asyncio.run(_open_loop(port, requests, rate))


def _score_requests(rng, posts: int, n: int, pool: int | None = None) -> list:
    ids = rng.integers(1, (pool or posts) + 1, size=n)
    return [("POST", "/v1/score", json.dumps({"post_id": int(p)}).encode()) for p in ids]


# ---- the run -----------------------------------------------------------------------------------


def bench_store(args, kind: str, meta: dict, rng) -> dict:
    from vigil.serving import features

    os.environ["VIGIL_ONLINE_STORE"] = kind
    features.apply()
    features.materialize(full=True)
    authors = meta["authors"]
    entry: dict = {"in_process": bench_in_process(rng, args.posts, authors, args.calls)}
    entry["handler_spans_student"] = handler_spans(rng, args.posts, args.calls, "never", args.pool)
    entry["handler_spans_heavy"] = handler_spans(rng, args.posts, args.calls, "always", args.pool)
    env = dict(os.environ)
    if not args.no_http:
        entry |= bench_http(args, env, rng, authors)
    features.store().teardown()
    features._STORES.clear()
    return entry


def floor_load(args, env: dict, rng) -> dict:
    """The bare FastAPI endpoint (bench/serving_floor.py) at the same rate: the floor."""
    port = _free_port()
    proc = _start(["--port", str(port)], env, "/healthz", module="bench.serving_floor")
    try:
        return load(port, _score_requests(rng, args.posts, args.requests), args.rate)
    finally:
        _stop(proc)


def bench_http(args, env: dict, rng, authors) -> dict:
    out: dict = {}
    feast_port = _free_port()
    feast = _start(["features", "serve", "--port", str(feast_port)], env, "/health")
    try:
        ids = rng.integers(1, args.posts + 1, size=args.calls)
        reads = [_feast_request(int(p), int(authors[p - 1])) for p in ids]
        out["http_feast_features_serve"] = _pct(sequential(feast_port, reads))
        # Feast's server keeps up with ~40-60 requests/s here: a short run says as much
        n = min(args.requests, args.feast_requests)
        out["load_feast_features_serve"] = load(
            feast_port, [reads[i % len(reads)] for i in range(n)], args.rate
        )
    finally:
        _stop(feast)
    for heavy in ("never", "cascade", "always"):
        port = _free_port()
        proc = _start(["serve", "--port", str(port), "--heavy", heavy], env, "/healthz")
        try:
            if heavy == "never":
                gets = [("GET", f"/v1/features/{int(p)}", b"") for p in ids]
                out["http_vigil_serve_features"] = _pct(sequential(port, gets))
                stall = sequential(
                    port,
                    [("GET", f"/v1/features/{i % args.posts + 1}", b"") for i in range(args.stall)],
                )
                out["stall"] = {
                    "requests": len(stall),
                    "p99": _pct(stall)[1],
                    "max_ms": round(max(stall) * 1000, 1),
                    "over_50ms": int(sum(s > 0.05 for s in stall)),
                }
                requests = _score_requests(rng, args.posts, args.requests)
            else:
                # the heavy model on a pool of posts whose embeddings one warm-up pass caches
                requests = _score_requests(rng, args.posts, args.requests, pool=args.pool)
                warm = [
                    ("POST", "/v1/score", json.dumps({"post_id": p}).encode())
                    for p in range(1, args.pool + 1)
                ]
                sequential(port, warm)
            out[f"load_score_heavy_{heavy}"] = load(port, requests, args.rate)
        finally:
            _stop(proc)
    return out


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench serving", description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=300, help="sequential reads per reader")
    parser.add_argument("--rate", type=float, default=200.0, help="open-loop requests/s")
    parser.add_argument("--requests", type=int, default=1000, help="requests per load run")
    parser.add_argument("--pool", type=int, default=300, help="posts in the heavy-model runs")
    parser.add_argument("--stall", type=int, default=10_000, help="sequential reads, stall check")
    parser.add_argument(
        "--feast-requests", type=int, default=500, help="requests of the Feast server's load run"
    )
    parser.add_argument("--stores", default="sqlite,redis")
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    from bench.bench_features import synthetic_marts
    from bench.serving_world import train_champion

    args = _parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="vigil-bench-serving-"))
    keys = ("VIGIL_HOME", "VIGIL_ONLINE_STORE", "VIGIL_FEAST_PROJECT", "HF_HUB_OFFLINE")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ |= {
        "VIGIL_HOME": str(root),
        "VIGIL_FEAST_PROJECT": f"vigil_bench_serving_{os.getpid()}",
        "HF_HUB_OFFLINE": "1",
    }
    from vigil import config
    from vigil.serving import features

    results: dict = {"params": vars(args), "stores": {}}
    started = time.perf_counter()
    try:
        meta = synthetic_marts(config.paths().features, args.posts, args.users, args.seed)
        write_posts(config.paths().features, meta["authors"], args.seed)
        results["model_id"] = train_champion(seed=args.seed)
        rng = np.random.default_rng(args.seed)
        floor_env = dict(os.environ)
        if not args.no_http:
            results["load_bare_fastapi_floor"] = floor_load(args, floor_env, rng)
        for kind in args.stores.split(","):
            results["stores"][kind] = bench_store(args, kind, meta, rng)
        if not args.no_http:
            # the floor again after the services ran: the machine's load may have changed
            results["load_bare_fastapi_floor_after"] = floor_load(args, floor_env, rng)
            floor = min(
                results["load_bare_fastapi_floor"]["p99"],
                results["load_bare_fastapi_floor_after"]["p99"],
            )
            results["p99_over_floor"] = {
                f"{kind}/{k.removeprefix('load_score_')}": round(v["p99"] / max(floor, 1e-3), 2)
                for kind, entry in results["stores"].items()
                for k, v in entry.items()
                if k.startswith("load_score_")
            }
        results["wall_s"] = round(time.perf_counter() - started, 1)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        features._STORES.clear()
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(results, indent=2, default=str))
    return results


if __name__ == "__main__":
    main()
