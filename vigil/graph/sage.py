"""GraphSAGE with mean aggregation: unsupervised training, snapshot and new-user embeddings.

Model (Hamilton et al. 2017, "mean" aggregator), two layers::

    h1(v) = ReLU(W1_self x(v) + W1_nbr mean_{u in S2(v)} x(u))
    z(v)  = normalise(W2_self h1(v) + W2_nbr mean_{u in S1(v)} h1(u))

``S1`` / ``S2`` are neighbour samples of at most ``fanout[0]`` / ``fanout[1]`` nodes
(:func:`vigil.graph.sampler.sample_neighbours`); the mean over no neighbour is 0. ``x`` are node
features standardised with the training graph's mean and spread (saved with the weights).

Loss: positive pairs from short weighted random walks, negatives drawn in proportion to
degree^0.75 (one shared pool per batch);
``-log s(c z_u.z_v) - K mean_k log s(-c z_u.z_k)`` with a fixed scale ``c`` (the
embeddings have unit length). Seeded: torch's and numpy's generators come from ``cfg.seed``.

Inductive: the weights do not depend on node ids, so a user who joins after training gets
``z`` from their own features and first edges (:meth:`Embedder.embed_new`). Without edges, the
fallback: the mean of their friends' embeddings, then the mean of all users.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from vigil.graph.features import DIM
from vigil.graph.sampler import Graph, random_walk_pairs, sample_neighbours

log = logging.getLogger(__name__)


@dataclass
class SageConfig:
    dim: int = DIM
    hidden: int = 64
    fanout: tuple[int, int] = (10, 5)
    walk_length: int = 2
    batch_size: int = 512  # walk starts per step
    negatives: int = 5  # weight of the negative term: as many negatives per positive pair
    negative_pool: int = 256  # negatives drawn per batch, shared by its pairs
    negative_power: float = 0.75
    scale: float = 5.0
    lr: float = 0.01
    epochs: int = 3  # an epoch: every node starts a walk once
    max_seconds: float | None = None  # stop early past this training time
    seed: int = 7
    extra: dict = field(default_factory=dict)


def _torch():
    import torch

    return torch


def make_model(n_features: int, cfg: SageConfig):
    torch = _torch()
    nn = torch.nn

    class SageLayer(nn.Module):
        """One mean-aggregator layer: W_self h(v) + W_nbr mean(h(neighbours))."""

        def __init__(self, d_in: int, d_out: int):
            super().__init__()
            self.lin_self = nn.Linear(d_in, d_out)
            self.lin_nbr = nn.Linear(d_in, d_out, bias=False)

        def forward(self, h_self, h_nbr_mean):
            return self.lin_self(h_self) + self.lin_nbr(h_nbr_mean)

    class Sage(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer1 = SageLayer(n_features, cfg.hidden)
            self.layer2 = SageLayer(cfg.hidden, cfg.dim)

    torch.manual_seed(cfg.seed)
    return Sage()


def mean_by_owner(values, owner: np.ndarray, n: int):
    """Row means of ``values`` grouped by ``owner`` (0..n-1); 0 for an owner without rows."""
    torch = _torch()
    out = torch.zeros((n, values.shape[1]), dtype=values.dtype)
    if len(owner) == 0:
        return out
    idx = torch.as_tensor(owner, dtype=torch.long)
    out.index_add_(0, idx, values)
    counts = torch.bincount(idx, minlength=n).clamp(min=1).unsqueeze(1).to(values.dtype)
    return out / counts


def forward_nodes(model, graph: Graph, x, nodes: np.ndarray, fanout, rng):
    """z of ``nodes`` through freshly sampled neighbourhoods (a training mini-batch)."""
    torch = _torch()
    o1, n1 = sample_neighbours(graph, nodes, fanout[0], rng)
    need = np.unique(np.concatenate([nodes, n1]))
    o2, n2 = sample_neighbours(graph, need, fanout[1], rng)
    agg0 = mean_by_owner(x[torch.as_tensor(n2)], o2, len(need))
    h1 = torch.relu(model.layer1(x[torch.as_tensor(need)], agg0))
    at = torch.as_tensor(np.searchsorted(need, nodes))
    agg1 = mean_by_owner(h1[torch.as_tensor(np.searchsorted(need, n1))], o1, len(nodes))
    z = model.layer2(h1[at], agg1)
    return torch.nn.functional.normalize(z, dim=1)


@dataclass
class Embedder:
    """A trained model with what serving needs: feature scaling and the snapshot's h1 and z."""

    cfg: SageConfig
    model: object
    feature_mean: np.ndarray
    feature_std: np.ndarray
    graph: Graph | None = None
    h1: np.ndarray | None = None  # layer-1 output of every snapshot node
    z: np.ndarray | None = None  # embedding of every snapshot node
    sources: np.ndarray | None = None  # how each snapshot node's z was made (features.SOURCES)
    stats: dict = field(default_factory=dict)

    def scale(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.feature_mean) / self.feature_std).astype(np.float32)

    def embed_snapshot(self, graph: Graph, features: np.ndarray, seed: int | None = None) -> None:
        """h1 and z of every node of ``graph`` (layer by layer, sampled with a fixed seed).

        A node without edges gets the fallback: the mean z of all nodes that have edges.
        """
        torch = _torch()
        rng = np.random.default_rng(self.cfg.seed if seed is None else seed)
        x = torch.as_tensor(self.scale(features))
        n = graph.num_nodes
        every = np.arange(n, dtype=np.int64)
        with torch.no_grad():
            o2, n2 = sample_neighbours(graph, every, self.cfg.fanout[1], rng)
            h1 = torch.relu(self.model.layer1(x, mean_by_owner(x[torch.as_tensor(n2)], o2, n)))
            o1, n1 = sample_neighbours(graph, every, self.cfg.fanout[0], rng)
            z = self.model.layer2(h1, mean_by_owner(h1[torch.as_tensor(n1)], o1, n))
            z = torch.nn.functional.normalize(z, dim=1)
        self.graph, self.h1, self.z = graph, h1.numpy(), z.numpy()
        self.set_snapshot_features(features)
        has_edges = graph.degree() > 0
        self.sources = np.where(has_edges, "graphsage", "all_mean").astype(object)
        if has_edges.any() and not has_edges.all():
            self.z[~has_edges] = self.all_mean()

    def all_mean(self) -> np.ndarray:
        """The mean embedding of the snapshot's users with edges (all users if none has)."""
        has_edges = self.graph.degree() > 0 if self.graph is not None else None
        rows = self.z[has_edges] if has_edges is not None and has_edges.any() else self.z
        return rows.mean(axis=0)

    def embed_new(
        self,
        features: np.ndarray | None,
        neighbours=(),
        weights=None,
        friends=(),
    ) -> tuple[np.ndarray, str]:
        """The embedding of a user not in the snapshot, and which rule made it.

        1. ``graphsage``: the user's own ``features`` and first edges (``neighbours``, snapshot
           node ids, with optional ``weights``) through the trained layers; the neighbours' h1
           come from the snapshot.
        2. ``friends_mean``: no usable edges or no features: the mean snapshot embedding of
           ``friends`` (snapshot node ids, e.g. the accounts the user follows).
        3. ``all_mean``: neither: the mean embedding of all users.
        """
        n = self.z.shape[0]
        nbrs = np.asarray([v for v in neighbours if 0 <= v < n], dtype=np.int64)
        if features is not None and len(nbrs):
            rng = np.random.default_rng(self.cfg.seed)
            w = None if weights is None else np.asarray(weights, dtype=np.float64)
            if w is not None:
                w = w[[0 <= v < n for v in neighbours]]
            return self._forward_one(features, nbrs, w, rng), "graphsage"
        known = np.asarray([v for v in friends if 0 <= v < n], dtype=np.int64)
        if len(known):
            return self.z[known].mean(axis=0), "friends_mean"
        return self.all_mean(), "all_mean"

    def _forward_one(self, features, nbrs, w, rng) -> np.ndarray:
        """numpy forward of one new node (no torch call: a few small matrix products)."""
        p = self._numpy_params()
        x = self.scale(np.asarray(features, dtype=np.float64)[None, :])[0]
        one = Graph(
            np.array([0, len(nbrs)]),
            np.arange(len(nbrs)),
            np.ones(len(nbrs)) if w is None else w,
        )
        _, pick2 = sample_neighbours(one, np.array([0]), self.cfg.fanout[1], rng)
        _, pick1 = sample_neighbours(one, np.array([0]), self.cfg.fanout[0], rng)
        # Layer 1 of the new node: its neighbours' scaled features are rows of h1's input; the
        # snapshot keeps h1 only, so the neighbour mean of x uses the stored snapshot features.
        x_nbr = self._x[nbrs[pick2]].mean(axis=0)
        h1 = np.maximum(p["w1s"] @ x + p["b1"] + p["w1n"] @ x_nbr, 0.0)
        h1_nbr = self.h1[nbrs[pick1]].mean(axis=0)
        z = p["w2s"] @ h1 + p["b2"] + p["w2n"] @ h1_nbr
        return z / max(float(np.linalg.norm(z)), 1e-12)

    def _numpy_params(self) -> dict:
        if "numpy" not in self.stats:
            m = self.model
            self.stats["numpy"] = {
                "w1s": m.layer1.lin_self.weight.detach().numpy().astype(np.float64),
                "b1": m.layer1.lin_self.bias.detach().numpy().astype(np.float64),
                "w1n": m.layer1.lin_nbr.weight.detach().numpy().astype(np.float64),
                "w2s": m.layer2.lin_self.weight.detach().numpy().astype(np.float64),
                "b2": m.layer2.lin_self.bias.detach().numpy().astype(np.float64),
                "w2n": m.layer2.lin_nbr.weight.detach().numpy().astype(np.float64),
            }
        return self.stats["numpy"]

    @property
    def _x(self) -> np.ndarray:
        return self.stats["x_scaled"]

    def set_snapshot_features(self, features: np.ndarray) -> None:
        self.stats["x_scaled"] = self.scale(features).astype(np.float64)


def train(graph: Graph, features: np.ndarray, cfg: SageConfig | None = None) -> Embedder:
    """Unsupervised GraphSAGE on ``graph`` with node ``features`` (n x f); the snapshot embedded."""
    torch = _torch()
    cfg = cfg or SageConfig()
    features = np.asarray(features, dtype=np.float64)
    if features.shape[0] != graph.num_nodes:
        raise ValueError(f"{features.shape[0]} feature rows for {graph.num_nodes} nodes")
    threads = torch.get_num_threads()
    # One thread: index_add_ over several threads sums in no fixed order, so a seed would not
    # fix the result (and the cores are shared).
    torch.set_num_threads(1)
    try:
        return _train(graph, features, cfg)
    finally:
        torch.set_num_threads(threads)


def _train(graph: Graph, features: np.ndarray, cfg: SageConfig) -> Embedder:
    torch = _torch()
    mean = features.mean(axis=0)
    std = features.std(axis=0)
    std[std < 1e-9] = 1.0
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = make_model(features.shape[1], cfg)
    emb = Embedder(cfg, model, mean, std)
    x = torch.as_tensor(emb.scale(features))
    deg = graph.degree().astype(np.float64)
    with_edges = np.flatnonzero(deg > 0)
    noise = deg**cfg.negative_power
    noise = noise / noise.sum() if noise.sum() > 0 else np.full(len(deg), 1 / len(deg))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    started = time.monotonic()
    steps, losses = 0, []
    stop = False
    for epoch in range(cfg.epochs):
        order = rng.permutation(with_edges)
        epoch_loss, batches = 0.0, 0
        for i in range(0, len(order), cfg.batch_size):
            u, v = random_walk_pairs(graph, order[i : i + cfg.batch_size], cfg.walk_length, rng)
            if len(u) == 0:
                continue
            # One pool of negatives per batch, shared by its pairs (fewer nodes to embed); each
            # pair's negative term is the pool mean times cfg.negatives.
            neg = rng.choice(len(deg), size=cfg.negative_pool, p=noise)
            nodes, inverse = np.unique(np.concatenate([u, v, neg]), return_inverse=True)
            z = forward_nodes(model, graph, x, nodes, cfg.fanout, rng)
            zu = z[torch.as_tensor(inverse[: len(u)])]
            zv = z[torch.as_tensor(inverse[len(u) : 2 * len(u)])]
            zn = z[torch.as_tensor(inverse[2 * len(u) :])]
            pos = torch.nn.functional.logsigmoid(cfg.scale * (zu * zv).sum(1))
            negs = torch.nn.functional.logsigmoid(-cfg.scale * (zu @ zn.T))
            loss = -(pos.mean() + cfg.negatives * negs.mean())
            opt.zero_grad()
            loss.backward()
            opt.step()
            epoch_loss += float(loss.detach())
            batches += 1
            steps += 1
            if cfg.max_seconds and time.monotonic() - started > cfg.max_seconds:
                stop = True
                break
        losses.append(epoch_loss / max(batches, 1))
        log.info(
            "graphsage: epoch %d/%d, %d steps, loss %.4f, %.1fs",
            epoch + 1,
            cfg.epochs,
            steps,
            losses[-1],
            time.monotonic() - started,
        )
        if stop:
            log.info("graphsage: stopped at the %.0f s budget", cfg.max_seconds)
            break
    model.eval()
    emb.stats.update(
        {
            "train_seconds": round(time.monotonic() - started, 2),
            "steps": steps,
            "epoch_losses": losses,
            "nodes": graph.num_nodes,
            "edges": graph.num_edges,
            "config": asdict(cfg),
        }
    )
    emb.embed_snapshot(graph, features)
    return emb
