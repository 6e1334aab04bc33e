"""Saving the GraphSAGE model and publishing daily embedding snapshots as a Feast source.

- model: ``<data root>/graph/sage.pt`` (weights) + ``meta.json`` (config, feature
  scaling, the snapshot it was trained on, timings);
- feature rows: ``<data root>/features/user_graph_embedding.parquet``, one row per user and
  snapshot day (``event_timestamp`` = the end of the day), the embedding columns of
  :data:`vigil.graph.features.FEATURES` and ``graph_source``. Re-publishing a day replaces it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from datetime import date

import numpy as np

from vigil.config import paths
from vigil.errors import UserError
from vigil.graph import edges
from vigil.graph.features import FEATURES, VIEW
from vigil.graph.sage import Embedder, SageConfig, make_model

log = logging.getLogger(__name__)


def model_dir():
    # not under models/: the registry reads every models/*/meta.json as a moderation model
    return paths().home / "graph"


def save(emb: Embedder, trained_on: date) -> None:
    import torch

    out = model_dir()
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "sage.pt.tmp"
    torch.save(emb.model.state_dict(), tmp)
    tmp.replace(out / "sage.pt")
    meta = {
        "config": asdict(emb.cfg),
        "feature_mean": emb.feature_mean.tolist(),
        "feature_std": emb.feature_std.tolist(),
        "feature_names": list(edges.FEATURE_NAMES),
        "trained_on": trained_on.isoformat(),
        "stats": {k: v for k, v in emb.stats.items() if k not in ("numpy", "x_scaled")},
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2, default=str))


def load_model() -> tuple[Embedder, dict]:
    import torch

    folder = model_dir()
    if not (folder / "sage.pt").exists():
        raise UserError(f"no graph model in {folder}: train one with `vigil graph train`.")
    meta = json.loads((folder / "meta.json").read_text())
    c = dict(meta["config"])
    c["fanout"] = tuple(c["fanout"])
    cfg = SageConfig(**c)
    model = make_model(len(meta["feature_names"]), cfg)
    model.load_state_dict(torch.load(folder / "sage.pt", weights_only=True))
    model.eval()
    emb = Embedder(cfg, model, np.array(meta["feature_mean"]), np.array(meta["feature_std"]))
    return emb, meta


def snapshot_rows(emb: Embedder, ug: edges.UserGraph):
    """The feature rows of one snapshot: user_id, event_timestamp, embedding, graph_source."""
    import pandas as pd

    emb.embed_snapshot(ug.graph, ug.features)
    frame = pd.DataFrame(emb.z.astype(np.float64), columns=list(FEATURES))
    frame.insert(0, "event_timestamp", pd.Timestamp(ug.as_of))
    frame.insert(0, "user_id", ug.user_ids)
    frame["graph_source"] = emb.sources.astype(str)
    return frame


def publish(days: list[date]) -> dict:
    """Embed each day's graph with the saved model; write the days into the Feast source."""
    import pandas as pd

    emb, _ = load_model()
    target = paths().features / f"{VIEW}.parquet"
    frames = []
    counts = {}
    for day in days:
        ug = edges.load(day)
        rows = snapshot_rows(emb, ug)
        frames.append(rows)
        counts[day.isoformat()] = rows["graph_source"].value_counts().to_dict()
        log.info("graph embeddings %s: %d users %s", day, len(rows), counts[day.isoformat()])
    new = pd.concat(frames, ignore_index=True)
    if target.exists():
        old = pd.read_parquet(target)
        old = old[~old["event_timestamp"].isin(new["event_timestamp"].unique())]
        new = pd.concat([old, new], ignore_index=True)
    new = new.sort_values(["event_timestamp", "user_id"]).reset_index(drop=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".parquet.tmp")
    new.to_parquet(tmp, index=False)
    tmp.replace(target)
    return {"path": str(target), "rows": len(new), "days": counts}


def for_daily_run(day: str, backfill: bool = False) -> dict:
    """What ``vigil_daily``'s ``graph_embed`` task does: with a trained graph model, publish the
    day's snapshot (``backfill``: every day of the lake's events up to ``day``); without one,
    nothing (the view stays as it is, and no model reads it unless configured to)."""
    from datetime import timedelta

    if not (model_dir() / "sage.pt").exists():
        return {"skipped": f"no graph model in {model_dir()} (`vigil graph train` makes one)"}
    last = date.fromisoformat(day)
    days = [last]
    if backfill:
        found = sorted(
            date.fromisoformat(p.name.removeprefix("dt="))
            for p in paths().lake_events.glob("dt=*")
            if p.name.removeprefix("dt=") <= day
        )
        first = found[0] if found else last
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    out = publish(days)
    return {"path": out["path"], "rows": out["rows"], "days": len(days)}
