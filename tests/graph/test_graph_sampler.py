"""The graph's CSR form, the neighbour sampler and the random walks on hand-made graphs."""

import numpy as np
import pytest

from vigil.graph.sampler import Graph, random_walk_pairs, sample_neighbours

# 0 is a hub with 6 neighbours (1..6); 1-2 also linked; 7-8 a pair; 9 isolated.
EDGES = [(0, k) for k in range(1, 7)] + [(1, 2), (7, 8)]
NEIGHBOURS = {0: {1, 2, 3, 4, 5, 6}, 1: {0, 2}, 2: {0, 1}, 7: {8}, 8: {7}, 9: set()}


def _graph(weights=None) -> Graph:
    src, dst = zip(*EDGES)
    return Graph.from_edges(10, src, dst, weights)


def test_from_edges_sums_duplicates_both_ways_and_drops_self_loops():
    g = Graph.from_edges(3, [0, 1, 2, 0], [1, 0, 2, 2], [1.0, 2.0, 5.0, 0.5])
    assert g.num_edges == 2  # 0-1 (1 + 2), 0-2; the 2-2 loop is dropped
    assert sorted(g.neighbours(0).tolist()) == [1, 2]
    w = dict(zip(g.neighbours(0).tolist(), g.weights[g.indptr[0] : g.indptr[1]].tolist()))
    assert w == {1: 3.0, 2: 0.5}
    assert g.neighbours(1).tolist() == [0] and g.degree().tolist() == [2, 1, 1]


def test_only_neighbours_fanout_respected_isolated_node_owns_nothing():
    g = _graph()
    nodes = np.array([0, 1, 7, 9, 0])
    owner, nbr = sample_neighbours(g, nodes, 3, np.random.default_rng(1))
    for pos, node in enumerate(nodes):
        got = nbr[owner == pos].tolist()
        assert set(got) <= NEIGHBOURS[int(node)]
        assert len(got) == len(set(got)) == min(3, len(NEIGHBOURS[int(node)]))
    assert (owner == 3).sum() == 0  # node 9: no neighbours, no rows


def test_small_degree_takes_every_neighbour():
    owner, nbr = sample_neighbours(_graph(), np.array([1, 8]), 10, np.random.default_rng(0))
    assert sorted(nbr[owner == 0].tolist()) == [0, 2] and nbr[owner == 1].tolist() == [7]


def test_same_seed_same_sample_other_seed_differs():
    g = _graph()
    hub = np.array([0] * 20)
    a = sample_neighbours(g, hub, 2, np.random.default_rng(5))
    b = sample_neighbours(g, hub, 2, np.random.default_rng(5))
    c = sample_neighbours(g, hub, 2, np.random.default_rng(6))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[1], c[1])


def test_weighted_draw_follows_the_weights():
    # Hub 0 with neighbour 1 at weight 9 and 2..6 at weight 1: with fanout 1 the first draw of a
    # weighted sample without replacement picks 1 with probability 9 / (9 + 5) = 0.643.
    weights = [9.0, 1, 1, 1, 1, 1, 1.0, 1.0]
    g = _graph(weights)
    _, nbr = sample_neighbours(g, np.zeros(4000, dtype=np.int64), 1, np.random.default_rng(3))
    assert len(nbr) == 4000
    assert (nbr == 1).mean() == pytest.approx(9 / 14, abs=0.03)


def test_random_walk_pairs_are_paths_and_isolated_starts_give_none():
    g = _graph()
    left, right = random_walk_pairs(g, np.array([0, 7, 9]), 1, np.random.default_rng(2))
    assert 9 not in left.tolist()
    for a, b in zip(left.tolist(), right.tolist()):
        assert b in NEIGHBOURS[a]
    left2, right2 = random_walk_pairs(g, np.array([7] * 5), 2, np.random.default_rng(2))
    assert sorted(set(zip(left2.tolist(), right2.tolist()))) == [(7, 7), (7, 8)]
