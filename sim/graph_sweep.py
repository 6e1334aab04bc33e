"""``python -m sim.sweep ... --retrain TAG --graph``: the post model with graph embeddings.

On a world the sweep already ran (its DAGs trained the champion without the graph), in the
current data root:

1. train GraphSAGE (``vigil graph train``) on the graph as of the last *training* day of the
   champion's split, so the weights carry no structure from the validation or test days;
2. embed every day of the world (``vigil graph embed``: one snapshot per day, each day's own
   graph), written to the ``user_graph_embedding`` Feast source;
3. the caller then retrains with ``graph_embeddings = True`` and grades as any ``--retrain``.

Steps 1-2 are skipped when ``graph-embeddings-done.json`` records the same parameters. The
platform code does the work (``vigil.graph``); this module only sequences it for the sweep.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import date, timedelta

from vigil import config
from vigil.errors import UserError

log = logging.getLogger(__name__)

DONE_FILE = "graph-embeddings-done.json"
EPOCHS = 20  # 6,000-user worlds: ~1 CPU second an epoch (docs/graph.md)


def ensure_embeddings(seed: int, epochs: int = EPOCHS) -> dict:
    """Train the graph model and publish every day's embeddings (once per data root)."""
    from training import registry
    from vigil.graph import edges, publish
    from vigil.graph.sage import SageConfig, train

    p = config.paths()
    dags = p.home / "sweep-dags-done.json"
    if not dags.exists():
        raise UserError(
            f"seed {seed}: no finished sweep run in {p.home}: run the sweep without --graph first."
        )
    world = json.loads(dags.read_text())
    champion = registry.champion()
    if champion is None:
        raise UserError(
            f"seed {seed}: no champion in {p.home}: run the sweep without --graph first."
        )
    splits = registry.meta(champion)["splits"]
    train_day = date.fromisoformat(splits["train"][-1])
    first = date.fromisoformat(world["start"])
    days = [first + timedelta(days=i) for i in range(int(world["days"]))]
    want = {"world": world, "train_day": train_day.isoformat(), "epochs": epochs, "seed": seed}
    done = p.home / DONE_FILE
    if done.exists() and json.loads(done.read_text()).get("params") == want:
        print(f"[seed {seed}] graph embeddings already published, skipped", flush=True)
        return json.loads(done.read_text())
    t0 = time.monotonic()
    ug = edges.load(train_day)
    emb = train(ug.graph, ug.features, SageConfig(epochs=epochs, seed=seed))
    publish.save(emb, train_day)
    train_s = round(time.monotonic() - t0, 1)
    t0 = time.monotonic()
    published = publish.publish(days)
    out = {
        "params": want,
        "nodes": emb.stats["nodes"],
        "edges": emb.stats["edges"],
        "steps": emb.stats["steps"],
        "train_seconds": train_s,
        "embed_seconds": round(time.monotonic() - t0, 1),
        "rows": published["rows"],
        "sources_last_day": published["days"][days[-1].isoformat()],
    }
    done.write_text(json.dumps(out, indent=2, default=str))
    print(f"[seed {seed}] graph embeddings: {json.dumps(out, default=str)}", flush=True)
    return out
