"""Home timeline ranking: the bulk daily path against the per-user path, side by side.

``python -m bench ranking [--seed 7] [--users 2000] [--baseline-users 300] [--workers 1]``

Simulates a discovery world (2,000 users, 7 days), ingests it into a scratch home, fits the
topic model and the ranker on days 2-5, then at noon of day 6 ranks ``--users`` users (drawn with
replacement, 500 candidates each) with :func:`vigil.ranking.batch.rank_users` and
``--baseline-users`` users one at a time as ``vigil rank`` does. Prints per-stage seconds, the
cost per user of each path, the ratio, the 20k-user extrapolation and the load average.
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
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--baseline-users", type=int, default=300)
    ap.add_argument("--workers", type=int, default=1)
    a = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-ranking-"))
    simulate_discovery(work / "raw", users=2000, days=7, seed=a.seed)
    _view, ctx, split = _prepare(work / "raw", work / "home", 2)

    from vigil.ranking import batch, rank
    from vigil.ranking.data import DAY

    model = rank.train(ctx, ctx.view.start_ms + DAY, split)
    camps = rank.follow_camps(ctx)
    rng = np.random.default_rng([a.seed, 23, 200])
    ids = ctx.view.users["user_id"].to_numpy()
    t = split + DAY // 2
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    base = _per_user(ctx, model, camps, rng.choice(ids, a.baseline_users), t)
    r = batch.rank_users(ctx, model, rng.choice(ids, a.users), t, camps, workers=a.workers)
    bulk = r.seconds["total"] / a.users
    print(f"bulk path, {a.users} users x {r.candidates / a.users:.0f} candidates, "
          f"{a.workers} worker(s): " + ", ".join(f"{k} {v:.2f} s" for k, v in r.seconds.items()))  # fmt: skip
    print(f"per user: bulk {1000 * bulk:.2f} ms, per-user path {1000 * base:.2f} ms "
          f"({a.baseline_users} users); ratio {base / bulk:.1f}x")  # fmt: skip
    print(f"20k users extrapolated: bulk {20_000 * bulk:.0f} s, per-user {20_000 * base:.0f} s "
          f"(target 120 s); load average at end: {os.getloadavg()[0]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
