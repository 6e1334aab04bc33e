"""GraphSAGE user embeddings: training time at 20k users, a new user's embedding, link AUC.

``python -m bench graph [--users 20000] [--degree 43] [--epochs 3] [--home DIR --day D]``

Graph: a synthetic one by default (``--users`` nodes in 50 planted communities, mean degree
``--degree``, 90% of edges inside a community, lognormal activity so degrees are skewed; 10 node
features with a weak community signal), or the lake of ``--home`` as of ``--day``. 5% of the
edges are held out of training.

Prints, side by side in one process:
- training: wall and CPU seconds (CPU is what a loaded machine does not inflate);
- snapshot: every user's embedding in one pass (the daily job);
- new user: one embedding from 1-20 first edges (``Embedder.embed_new``), p50/p99 over 1,000
  users, against recomputing the whole snapshot (the ratio);
- link prediction AUC of held-out edges against random pairs (dot product of embeddings), and
  the same AUC from the raw features' cosine as the baseline.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def synthetic(users: int, degree: float, seed: int):
    rng = np.random.default_rng(seed)
    community = rng.integers(0, 50, users)
    activity = rng.lognormal(0.0, 1.0, users)
    p = activity / activity.sum()
    m = int(users * degree / 2)
    src = rng.choice(users, m, p=p)
    inside = rng.random(m) < 0.9
    members = [np.flatnonzero(community == c) for c in range(50)]
    dst = rng.choice(users, m, p=p)
    for c in range(50):
        pick = inside & (community[src] == c)
        dst[pick] = rng.choice(members[c], int(pick.sum()))
    signal = np.eye(50)[community][:, :10] * 0.5
    features = rng.normal(size=(users, 10)) + signal
    return src, dst, np.ones(m), features


def lake(home: str, day: str):
    from datetime import date

    os.environ["VIGIL_HOME"] = home
    from vigil.graph import edges

    ug = edges.load(date.fromisoformat(day))
    g = ug.graph
    rows = np.repeat(np.arange(g.num_nodes), g.degree())
    keep = rows < g.indices
    return rows[keep], g.indices[keep], g.weights[keep], ug.features


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Probability that a held-out edge scores above a random pair (ties count half)."""
    scores = np.concatenate([pos, neg])
    ranks = scores.argsort().argsort() + 1.0
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def main(argv: list[str] | None = None) -> None:
    from vigil.graph.sage import SageConfig, train
    from vigil.graph.sampler import Graph

    ap = argparse.ArgumentParser(prog="python -m bench graph")
    ap.add_argument("--users", type=int, default=20000)
    ap.add_argument("--degree", type=float, default=43.0)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--home", default=None)
    ap.add_argument("--day", default=None)
    args = ap.parse_args(argv)
    if args.home:
        src, dst, w, features = lake(args.home, args.day)
        source = f"lake {args.home} as of {args.day}"
    else:
        src, dst, w, features = synthetic(args.users, args.degree, args.seed)
        source = f"synthetic, {args.users} users, mean degree {args.degree}"
    n = len(features)
    rng = np.random.default_rng(args.seed)
    held = rng.random(len(src)) < 0.05
    graph = Graph.from_edges(n, src[~held], dst[~held], w[~held])
    print(f"graph: {source}: {n} nodes, {graph.num_edges} training edges, {held.sum()} held out")

    t0, c0 = time.perf_counter(), _cpu()
    emb = train(graph, features, SageConfig(epochs=args.epochs, seed=args.seed))
    print(
        f"train ({args.epochs} epochs, {emb.stats['steps']} steps): wall "
        f"{time.perf_counter() - t0:.1f} s, CPU {_cpu() - c0:.1f} s"
    )
    t0, c0 = time.perf_counter(), _cpu()
    emb.embed_snapshot(graph, features)
    snapshot = time.perf_counter() - t0
    print(f"snapshot (all {n} users): wall {snapshot:.2f} s, CPU {_cpu() - c0:.2f} s")

    times = []
    for _ in range(1000):
        k = int(rng.integers(1, 21))
        nbrs = rng.choice(n, k, replace=False)
        x = features[rng.integers(0, n)]
        t0 = time.perf_counter()
        emb.embed_new(x, nbrs)
        times.append(time.perf_counter() - t0)
    p50, p99 = np.percentile(times, [50, 99]) * 1000
    print(
        f"new user (1-20 edges): p50 {p50:.2f} ms, p99 {p99:.2f} ms; the whole snapshot "
        f"instead: {snapshot * 1000:.0f} ms ({snapshot * 1000 / p50:.0f}x the p50)"
    )

    hs, hd = src[held], dst[held]
    ok = hs != hd
    hs, hd = hs[ok], hd[ok]
    rs, rd = rng.integers(0, n, len(hs)), rng.integers(0, n, len(hs))
    z = emb.z
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    print(
        f"held-out link AUC: embeddings {auc((z[hs] * z[hd]).sum(1), (z[rs] * z[rd]).sum(1)):.3f},"
        f" raw features {auc((unit[hs] * unit[hd]).sum(1), (unit[rs] * unit[rd]).sum(1)):.3f}"
        f" ({len(hs)} edges vs as many random pairs)"
    )


if __name__ == "__main__":
    main()
