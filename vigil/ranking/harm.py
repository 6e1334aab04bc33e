"""The champion harm model's scores, joined point in time for the health re-rank.

``vigil score --date D`` (the ``vigil_daily`` DAG's last task) writes the champion's calibrated
harm probability of each post at its scoring points (creation, +1 h, +6 h, +24 h) to
``$VIGIL_HOME/scores/dt=D/scores.parquet``. :func:`load` reads the rows of the current champion
(``models/champion.json``) for the posts in the ranking context; :meth:`ChampionHarm.at` gives,
for post rows at a time, the probability of the latest scoring point at or before that time (NaN
when the champion had not scored the post by then: no look-ahead).

The re-rank demotes by :func:`rerank_harm`: the larger of the ranking features' naive-Bayes harm
probability (reports per view, the author's removals) and the champion's probability, so a post
the text model finds harmful is demoted before anyone reports it. Without a champion, or without
its scores for these posts, the re-rank uses the naive-Bayes probability alone (and logs so).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vigil import config

log = logging.getLogger(__name__)

SHIFT = 36  # as vigil.ranking.features.KeyedTimes: row << SHIFT | (ms since origin)


@dataclass
class ChampionHarm:
    """One champion's scoring points for the context's post rows, sorted by (row, time)."""

    model_id: str
    origin: int
    codes: np.ndarray  # row << SHIFT | (scored_ms - origin), sorted
    prob: np.ndarray  # aligned with codes
    posts: int  # distinct posts scored

    def at(self, rows: np.ndarray, t) -> np.ndarray:
        """The champion's latest probability for each post row at or before ``t`` (ms); NaN
        where it had not scored the post by then."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.full(len(rows), np.nan)
        if len(self.codes) == 0 or len(rows) == 0:
            return out
        when = np.maximum(np.broadcast_to(np.asarray(t, dtype=np.int64), rows.shape) - self.origin,
                          0)  # fmt: skip
        i = np.searchsorted(self.codes, (rows << SHIFT) + when, side="right") - 1
        ok = i >= 0
        ok[ok] = (self.codes[i[ok]] >> SHIFT) == rows[ok]
        out[ok] = self.prob[i[ok]]
        return out


def champion_id() -> str | None:
    """The registry's champion model id, or None (no registry, no champion, or it is damaged)."""
    try:
        from training import registry

        return registry.champion()
    except Exception as exc:  # noqa: BLE001 - no training package or a broken registry: no join
        log.warning("harm join: cannot read the model registry (%s)", exc)
        return None


def load(ctx, model_id: str | None = None, scores_root=None) -> ChampionHarm | None:
    """The champion's scores of the context's posts, or None (and a log line saying why).

    ``scores_root``: where the ``dt=*/scores.parquet`` files are (default
    ``$VIGIL_HOME/scores``; an evaluation may keep its own copy elsewhere)."""
    import duckdb

    model_id = model_id or champion_id()
    if model_id is None:
        log.info("harm join: no champion model in the registry; the re-rank demotes by the "
                 "naive-Bayes harm probability alone")  # fmt: skip
        return None
    root = Path(scores_root) if scores_root is not None else config.paths().home / "scores"
    files = sorted(root.glob("dt=*/scores.parquet"))
    if not files:
        log.info("harm join: champion %s has written no scores (scores/dt=*/scores.parquet); "
                 "the re-rank demotes by the naive-Bayes harm probability alone", model_id)  # fmt: skip
        return None
    con = duckdb.connect(":memory:")
    try:
        df = con.execute(
            f"select post_id, (epoch_ms(scored_at::timestamptz))::bigint as scored_ms, probability "
            f"from read_parquet({[str(f) for f in files]!r}) "
            "where model_id = ? and probability is not null and isfinite(probability)",
            [model_id],
        ).df()
    finally:
        con.close()
    rows = ctx.post_row.reindex(df["post_id"].to_numpy()).to_numpy()
    keep = ~np.isnan(rows)
    if not keep.any():
        log.info("harm join: champion %s scored none of the %d posts in the lake; the re-rank "
                 "demotes by the naive-Bayes harm probability alone", model_id, len(ctx.author))  # fmt: skip
        return None
    rows = rows[keep].astype(np.int64)
    codes = (rows << SHIFT) + np.maximum(df["scored_ms"].to_numpy()[keep] - ctx.origin, 0)
    order = np.argsort(codes, kind="stable")
    out = ChampionHarm(model_id, ctx.origin, codes[order],
                       df["probability"].to_numpy(dtype=np.float64)[keep][order],
                       len(np.unique(rows)))  # fmt: skip
    log.info("harm join: champion %s scores for %d of %d posts (%d scoring points)", model_id,
             out.posts, len(ctx.author), len(codes))  # fmt: skip
    return out


def attach(ctx, model_id: str | None = None) -> ChampionHarm | None:
    """Load the champion's scores onto ``ctx.champion`` (None without them); return them."""
    ctx.champion = load(ctx, model_id)
    return ctx.champion


def rerank_harm(ctx, rows: np.ndarray, t, feature_harm: np.ndarray) -> np.ndarray:
    """The harm probability the re-rank demotes by: max(naive-Bayes feature, champion's score
    at ``t``); the feature alone where the champion has no score (or no champion is attached)."""
    champ = getattr(ctx, "champion", None)
    if champ is None:
        return feature_harm  # unchanged (same dtype): the ranking without the join is bit-identical
    return np.fmax(np.asarray(feature_harm, dtype=np.float64), champ.at(rows, t))
