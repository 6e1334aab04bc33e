"""Home timeline ranking: the bulk daily path against the per-user path, side by side.

``python -m bench ranking [--seed 7] [--world-users 2000] [--raw DIR] [--users 2000]
[--all-users] [--baseline-users 300] [--workers 1]``

Simulates a discovery world (``--world-users``, default 2,000 users, 7 days; or reuses the one
already simulated into ``--raw``), ingests it into a scratch home, fits the topic model and the
ranker on days 2-5, then at noon of day 6 ranks ``--users`` users (drawn with replacement; or
every user of the world once with ``--all-users``; 500 candidates each) with
:func:`vigil.ranking.batch.rank_users` and ``--baseline-users`` users one at a time as
``vigil rank`` does. Prints per-stage seconds, the cost per user of each path, the ratio, the
20k-user extrapolation and the load average.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _per_user(ctx, model, camps, users, t) -> float:
    from vigil.ranking import rank
    from vigil.ranking.features import FEATURES, build

    t0 = time.perf_counter()
    for u in users.tolist():
        rows = rank.candidates(ctx, u, t)
        X = build(ctx, np.full(len(rows), u), rows, np.full(len(rows), t))
        rank.rerank(ctx, rows, rank.predict(model, X), X[:, FEATURES.index("harm_prob")], camps,
                    rank.user_lean(ctx, camps, u))  # fmt: skip
    return (time.perf_counter() - t0) / len(users)


def main(argv: list[str] | None = None) -> None:
    from sim.discovery import simulate_discovery
    from sim.discovery_harness import _prepare

    ap = argparse.ArgumentParser(prog="python -m bench ranking")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--world-users", type=int, default=2000, help="users of the simulated world")
    ap.add_argument("--raw", type=Path, help="an already simulated discovery world to reuse")
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--all-users", action="store_true", help="rank every user once")
    ap.add_argument("--baseline-users", type=int, default=300)
    ap.add_argument("--workers", type=int, default=1)
    a = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-ranking-"))
    raw = a.raw
    if raw is None:
        raw = work / "raw"
        simulate_discovery(raw, users=a.world_users, days=7, seed=a.seed)
    t0 = time.perf_counter()
    _view, ctx, split = _prepare(raw, work / "home", 2)
    print(f"ingest + topic model: {time.perf_counter() - t0:.1f} s")

    from vigil.ranking import batch, rank
    from vigil.ranking.data import DAY

    t0 = time.perf_counter()
    model = rank.train(ctx, ctx.view.start_ms + DAY, split)
    print(f"ranker trained in {time.perf_counter() - t0:.1f} s")
    camps = rank.follow_camps(ctx)
    rng = np.random.default_rng([a.seed, 23, 200])
    ids = ctx.view.users["user_id"].to_numpy()
    t = split + DAY // 2
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    base = (
        _per_user(ctx, model, camps, rng.choice(ids, a.baseline_users), t)
        if a.baseline_users
        else 0.0
    )
    users = np.sort(ids) if a.all_users else rng.choice(ids, a.users)
    cpu = time.process_time()  # this process's CPU: the figure a shared machine's load spares
    r = batch.rank_users(ctx, model, users, t, camps, workers=a.workers)
    cpu = time.process_time() - cpu
    n = len(users)
    bulk = r.seconds["total"] / n
    print(f"world: {len(ids):,} users, {len(ctx.view.posts):,} posts, "
          f"{len(ctx.view.actions):,} actions")  # fmt: skip
    print(f"bulk path, {n} users x {r.candidates / n:.0f} candidates, "
          f"{a.workers} worker(s): " + ", ".join(f"{k} {v:.2f} s" for k, v in r.seconds.items()))  # fmt: skip
    if a.workers == 1:
        print(f"bulk path CPU time (this process): {cpu:.1f} s ({1000 * cpu / n:.2f} ms per user)")
    print(f"per user: bulk {1000 * bulk:.2f} ms, per-user path {1000 * base:.2f} ms "
          f"({a.baseline_users} users); ratio {base / bulk:.1f}x")  # fmt: skip
    print(f"20k users extrapolated: bulk {20_000 * bulk:.0f} s, per-user {20_000 * base:.0f} s "
          f"(target 120 s); load average at end: {os.getloadavg()[0]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
