"""The author's GraphSAGE embedding as post-model features (``TrainConfig.graph_embeddings``).

Off by default. When on, every scoring event (training example, audit population, ``vigil
score``) gets the embedding of the post's author from the ``user_graph_embedding`` Feast view
(``vigil graph embed``: one snapshot per day, stamped at the end of the day, built from events
strictly before it) by Feast's point-in-time join as of the event's scoring time: the latest
snapshot at or before it, within the view's ttl. A snapshot taken after the scoring time is never
read. The columns join the *creator* features, so both the baseline (numeric part) and the
multi-task net (creator tower) read them; neither model's code changes (docs/graph.md).

When the author has no row (an account created after the latest snapshot, or no snapshot within
the ttl), the embedding falls back to the mean of all users of the latest snapshot at or before
the scoring time (the view's own ``all_mean`` rule), and to 0 when there is no snapshot at all.
How each row was made is kept as one-hot columns: ``graph_src_<graphsage|friends_mean|all_mean>``
from the view's ``graph_source``, and ``graph_src_none`` for the fallback here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from vigil.config import paths
from vigil.errors import UserError
from vigil.graph.features import FEATURES, SOURCES, TTL_DAYS, VIEW

log = logging.getLogger(__name__)

EMBEDDING_COLUMNS: tuple[str, ...] = tuple(f"{VIEW}__{f}" for f in FEATURES)
SOURCE_COLUMN = f"{VIEW}__graph_source"
NO_ROW = "none"  # no snapshot row for the author at the scoring time
SOURCE_FLAGS: tuple[str, ...] = tuple(f"graph_src_{s}" for s in (*SOURCES, NO_ROW))
COLUMNS: tuple[str, ...] = (*EMBEDDING_COLUMNS, *SOURCE_FLAGS)


def source_path():
    return paths().features / f"{VIEW}.parquet"


def feast_view_features(entity_df: pd.DataFrame) -> pd.DataFrame:
    """Feast's point-in-time join of ``user_graph_embedding`` (full feature names)."""
    from vigil.serving import features

    fs = features.store()
    names = {fv.name for fv in fs.list_feature_views()}
    if VIEW not in names:
        raise UserError(f"the feature store has no {VIEW} view: run `vigil features apply` first.")
    refs = [f"{VIEW}:{f}" for f in (*FEATURES, "graph_source")]
    frame = entity_df.copy()
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True).dt.as_unit("us")
    return fs.get_historical_features(
        entity_df=frame, features=refs, full_feature_names=True
    ).to_df()


def snapshot_means(rows: pd.DataFrame) -> pd.DataFrame:
    """Per snapshot (``event_timestamp``): the mean embedding of all its users."""
    means = rows.groupby("event_timestamp")[list(FEATURES)].mean().reset_index()
    means["event_timestamp"] = pd.to_datetime(means["event_timestamp"], utc=True).dt.as_unit("us")
    return means.sort_values("event_timestamp").rename(
        columns={f: c for f, c in zip(FEATURES, EMBEDDING_COLUMNS)}
    )


def _fallback(at: pd.Series, means: pd.DataFrame) -> pd.DataFrame:
    """For each moment in ``at``: the latest snapshot mean at or before it (within the ttl)."""
    left = pd.DataFrame({"t": pd.to_datetime(at, utc=True).dt.as_unit("us").reset_index(drop=True)})
    left["order"] = np.arange(len(left))
    means = means.assign(event_timestamp=means["event_timestamp"].dt.as_unit("us"))
    merged = pd.merge_asof(
        left.sort_values("t"),
        means.rename(columns={"event_timestamp": "t"}),
        on="t",
        direction="backward",
        tolerance=pd.Timedelta(days=TTL_DAYS),
    )
    return merged.sort_values("order").reset_index(drop=True)[list(EMBEDDING_COLUMNS)]


def join(
    examples: pd.DataFrame,
    view_features: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """``examples`` (example_id, author_id, scored_at) with :data:`COLUMNS` added (float64)."""
    path = source_path()
    if not path.exists():
        raise UserError(
            f"graph_embeddings is on but {path} does not exist: run `vigil graph train --day D` "
            "and `vigil graph embed --day LAST --days N` first, or turn graph_embeddings off."
        )
    entity_df = pd.DataFrame(
        {
            "example_id": examples["example_id"].to_numpy(),
            "user_id": examples["author_id"].astype("int64").to_numpy(),
            "event_timestamp": pd.to_datetime(examples["scored_at"], utc=True).to_numpy(),
        }
    )
    entity_df["event_timestamp"] = pd.to_datetime(entity_df["event_timestamp"], utc=True)
    feats = (view_features or feast_view_features)(entity_df)
    feats = feats.drop_duplicates("example_id").set_index("example_id")
    feats = feats.reindex(entity_df["example_id"]).reset_index()
    emb = feats[list(EMBEDDING_COLUMNS)].astype("float64")
    source = feats[SOURCE_COLUMN].astype(object).where(feats[SOURCE_COLUMN].notna(), NO_ROW)
    missing = (source == NO_ROW).to_numpy()
    if missing.any():
        means = snapshot_means(pd.read_parquet(path, columns=["event_timestamp", *FEATURES]))
        fill = _fallback(entity_df.loc[missing, "event_timestamp"], means).fillna(0.0)
        emb.loc[missing, :] = fill.to_numpy()
    out = pd.DataFrame({"example_id": entity_df["example_id"].to_numpy()})
    out[list(EMBEDDING_COLUMNS)] = emb.to_numpy()
    for s, col in zip((*SOURCES, NO_ROW), SOURCE_FLAGS):
        out[col] = (source == s).astype("float64").to_numpy()
    log.info(
        "graph embeddings for %d scoring events: %s",
        len(out),
        source.value_counts().to_dict(),
    )
    return examples.drop(columns=[c for c in COLUMNS if c in examples.columns]).merge(
        out, on="example_id", how="left"
    )
