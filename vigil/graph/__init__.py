"""User embeddings from the social graph: GraphSAGE (mean aggregation) with a seeded sampler.

- :mod:`vigil.graph.features`: the Feast view's name, ttl and feature columns, defined once.
- :mod:`vigil.graph.edges`: the follow + interaction graph from the lake as of a day.
- :mod:`vigil.graph.sampler`: CSR adjacency and the weighted neighbour sampler (numpy).
- :mod:`vigil.graph.sage`: the model, its unsupervised training, snapshot embeddings and the
  inductive embedding of a new user with its fallbacks.
- :mod:`vigil.graph.cli`: ``vigil graph train|embed|show`` (docs/graph.md).
"""
