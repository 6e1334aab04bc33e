"""The graph in CSR form and the neighbour sampler GraphSAGE trains with (numpy only).

torch-geometric's fast neighbour loader needs compiled packages that do not install here, so the
sampler is written out: per node, every neighbour when the node has at most ``fanout`` of them,
otherwise ``fanout`` distinct neighbours drawn with probability proportional to the edge weight
(Efraimidis-Spirakis keys ``log(u) / w``, the ``fanout`` largest kept), all nodes of a batch at
once. Every draw comes from the ``numpy.random.Generator`` passed in, so a seed fixes the sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Graph:
    """An undirected weighted graph over nodes ``0..n-1`` in CSR form (both directions stored)."""

    indptr: np.ndarray  # (n + 1,) int64
    indices: np.ndarray  # (2m,) int64, neighbours of node v in indices[indptr[v]:indptr[v+1]]
    weights: np.ndarray  # (2m,) float64, > 0

    @property
    def num_nodes(self) -> int:
        return len(self.indptr) - 1

    @property
    def num_edges(self) -> int:
        return len(self.indices) // 2

    def degree(self) -> np.ndarray:
        return np.diff(self.indptr)

    def neighbours(self, v: int) -> np.ndarray:
        return self.indices[self.indptr[v] : self.indptr[v + 1]]

    @classmethod
    def from_edges(cls, num_nodes: int, src, dst, weight=None) -> Graph:
        """Undirected graph from edge lists: duplicates (either direction) summed, self-loops and
        edges of weight <= 0 dropped."""
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        w = np.ones(len(src)) if weight is None else np.asarray(weight, dtype=np.float64)
        if len(src) and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= num_nodes):
            raise ValueError(f"edge endpoints must lie in 0..{num_nodes - 1}")
        keep = (src != dst) & (w > 0)
        lo, hi, w = np.minimum(src, dst)[keep], np.maximum(src, dst)[keep], w[keep]
        key = lo * num_nodes + hi
        uniq, inverse = np.unique(key, return_inverse=True)
        summed = np.bincount(inverse, weights=w, minlength=len(uniq))
        a, b = uniq // num_nodes, uniq % num_nodes
        rows = np.concatenate([a, b])
        cols = np.concatenate([b, a])
        vals = np.concatenate([summed, summed])
        order = np.lexsort((cols, rows))
        indptr = np.zeros(num_nodes + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=num_nodes), out=indptr[1:])
        return cls(indptr, cols[order], vals[order])


def sample_neighbours(
    graph: Graph, nodes: np.ndarray, fanout: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``fanout`` neighbours of each of ``nodes`` (see the module doc).

    Returns ``(owner, neighbour)``: ``owner[i]`` is the position in ``nodes`` whose neighbour
    ``neighbour[i]`` is. A node without neighbours owns no row.
    """
    nodes = np.asarray(nodes, dtype=np.int64)
    starts = graph.indptr[nodes]
    deg = graph.indptr[nodes + 1] - starts
    total = int(deg.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    owner = np.repeat(np.arange(len(nodes), dtype=np.int64), deg)
    first = np.cumsum(deg) - deg
    slot = np.repeat(starts - first, deg) + np.arange(total, dtype=np.int64)
    full = deg <= fanout
    if full.all():
        return owner, graph.indices[slot]
    # Weighted sampling without replacement: the fanout largest keys log(u) / w per node.
    u = rng.random(total)
    keys = np.log(np.maximum(u, 1e-300)) / graph.weights[slot]
    order = np.lexsort((-keys, owner))
    rank = np.arange(total, dtype=np.int64) - first[owner[order]]
    keep = full[owner[order]] | (rank < fanout)
    chosen = np.sort(order[keep])
    return owner[chosen], graph.indices[slot[chosen]]


def random_walk_pairs(
    graph: Graph, starts: np.ndarray, length: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Positive pairs (start, node reached after 1..length weighted steps) of short walks.

    A step from v goes to neighbour u with probability w(v, u) / sum of v's weights; a walk that
    reaches a node without neighbours stops there (its later pairs are dropped).
    """
    starts = np.asarray(starts, dtype=np.int64)
    if graph.num_edges == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    cum = np.cumsum(graph.weights)
    base = np.concatenate([[0.0], cum])
    current = starts.copy()
    alive = graph.degree()[current] > 0
    left, right = [], []
    for _ in range(length):
        lo = base[graph.indptr[current]]
        hi = base[graph.indptr[current + 1]]
        target = lo + rng.random(len(current)) * (hi - lo)
        step = np.searchsorted(cum, target, side="right")
        step = np.clip(step, graph.indptr[current], np.maximum(graph.indptr[current + 1] - 1, 0))
        nxt = np.where(alive, graph.indices[np.minimum(step, len(graph.indices) - 1)], current)
        left.append(starts[alive])
        right.append(nxt[alive])
        current = nxt
        alive &= graph.degree()[current] > 0
    return np.concatenate(left), np.concatenate(right)
