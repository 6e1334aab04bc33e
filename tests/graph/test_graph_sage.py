"""GraphSAGE: one layer against numpy by hand, the new-user path, fallbacks, planted communities."""

import numpy as np
import pytest
import torch

from vigil.graph.sage import Embedder, SageConfig, make_model, mean_by_owner, train
from vigil.graph.sampler import Graph


def test_mean_by_owner_by_hand():
    values = torch.tensor([[1.0, 2.0], [3.0, 4.0], [10.0, 0.0]])
    out = mean_by_owner(values, np.array([0, 0, 2]), 4).numpy()
    assert out.tolist() == [[2.0, 3.0], [0.0, 0.0], [10.0, 0.0], [0.0, 0.0]]


def _fixed_embedder(x: np.ndarray) -> Embedder:
    cfg = SageConfig(dim=2, hidden=2, fanout=(10, 10))
    model = make_model(2, cfg)
    with torch.no_grad():
        model.layer1.lin_self.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
        model.layer1.lin_self.bias.copy_(torch.tensor([0.5, 0.0]))
        model.layer1.lin_nbr.weight.copy_(torch.tensor([[2.0, 1.0], [1.0, 1.0]]))
        model.layer2.lin_self.weight.copy_(torch.tensor([[1.0, 1.0], [0.0, 1.0]]))
        model.layer2.lin_self.bias.copy_(torch.tensor([0.0, 0.1]))
        model.layer2.lin_nbr.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 1.0]]))
    return Embedder(cfg, model, np.zeros(2), np.ones(2))


# Path 0-1-2 plus node 3 linked to 0 and 2; node 4 isolated. Every fan-out exceeds the degrees,
# so the sample is every neighbour and the layers are deterministic.
X = np.array([[1.0, 2.0], [0.0, -1.0], [3.0, 1.0], [-2.0, 0.5], [1.0, 1.0]])
G = Graph.from_edges(5, [0, 1, 3, 3], [1, 2, 0, 2])
NBRS = {0: [1, 3], 1: [0, 2], 2: [1, 3], 3: [0, 2], 4: []}


def _by_hand(x):
    w1s, b1 = np.array([[1.0, 0.0], [0.0, -1.0]]), np.array([0.5, 0.0])
    w1n = np.array([[2.0, 1.0], [1.0, 1.0]])
    w2s, b2, w2n = (
        np.array([[1.0, 1.0], [0.0, 1.0]]),
        np.array([0.0, 0.1]),
        np.array([[1.0, 0.0], [-1.0, 1.0]]),
    )
    h1 = np.zeros((5, 2))
    for v in range(5):
        agg = x[NBRS[v]].mean(axis=0) if NBRS[v] else np.zeros(2)
        h1[v] = np.maximum(w1s @ x[v] + b1 + w1n @ agg, 0)
    z = np.zeros((5, 2))
    for v in range(5):
        agg = h1[NBRS[v]].mean(axis=0) if NBRS[v] else np.zeros(2)
        out = w2s @ h1[v] + b2 + w2n @ agg
        z[v] = out / np.linalg.norm(out)
    return h1, z


def test_layers_match_numpy_by_hand():
    emb = _fixed_embedder(X)
    emb.embed_snapshot(G, X)
    h1, z = _by_hand(X)
    np.testing.assert_allclose(emb.h1, h1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(emb.z[:4], z[:4], rtol=1e-5, atol=1e-6)


def test_new_user_from_first_edges_matches_the_snapshot_node():
    # Node 3's features and edges given as a "new" user: the numpy path must give node 3's z.
    emb = _fixed_embedder(X)
    emb.embed_snapshot(G, X)
    z, source = emb.embed_new(X[3], neighbours=[0, 2])
    assert source == "graphsage"
    np.testing.assert_allclose(z, emb.z[3], rtol=1e-5, atol=1e-6)


def test_fallback_order():
    emb = _fixed_embedder(X)
    emb.embed_snapshot(G, X)
    _, z = _by_hand(X)
    # the isolated snapshot node gets the mean of the users with edges
    np.testing.assert_allclose(emb.z[4], z[:4].mean(axis=0), rtol=1e-5)
    assert emb.sources.tolist() == ["graphsage"] * 4 + ["all_mean"]
    # no edges, friends known: their mean
    got, source = emb.embed_new(X[0], neighbours=[], friends=[0, 2])
    assert source == "friends_mean"
    np.testing.assert_allclose(got, (z[0] + z[2]) / 2, rtol=1e-5)
    # edges only to unknown users count as none; unknown friends too: the mean of all users
    got, source = emb.embed_new(X[0], neighbours=[99], friends=[77])
    assert source == "all_mean"
    np.testing.assert_allclose(got, z[:4].mean(axis=0), rtol=1e-5)
    # edges but no features: the friends' mean, not the model
    _, source = emb.embed_new(None, neighbours=[0], friends=[1])
    assert source == "friends_mean"


def _sbm(seed: int):
    rng = np.random.default_rng(seed)
    n = 200
    community = np.repeat([0, 1], n // 2)
    iu = np.triu_indices(n, 1)
    p = np.where(community[iu[0]] == community[iu[1]], 0.1, 0.01)
    keep = rng.random(len(p)) < p
    graph = Graph.from_edges(n, iu[0][keep], iu[1][keep])
    # Features carry a weak community signal under noise; the neighbourhood mean sharpens it.
    signal = np.where(community[:, None] == 1, 0.25, -0.25) * np.ones((n, 8))
    return graph, rng.normal(size=(n, 8)) + signal, community


def _accuracy(features, labels) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    return cross_val_score(LogisticRegression(max_iter=1000), features, labels, cv=5).mean()


def test_planted_communities_separate_and_training_is_seeded():
    graph, x, community = _sbm(0)
    cfg = SageConfig(epochs=15, batch_size=64, hidden=32, seed=1)
    emb = train(graph, x, cfg)
    assert _accuracy(x, community) < 0.8  # the features alone
    assert _accuracy(emb.z, community) > 0.9
    again = train(graph, x, SageConfig(epochs=2, batch_size=64, seed=3))
    twice = train(graph, x, SageConfig(epochs=2, batch_size=64, seed=3))
    np.testing.assert_array_equal(again.z, twice.z)
    assert not np.allclose(again.z, emb.z)


def test_feature_rows_must_match_the_nodes():
    with pytest.raises(ValueError, match="feature rows"):
        train(G, X[:3], SageConfig(epochs=1))
