"""The topic model: NMF (Kullback-Leibler loss) on TF-IDF words of post text, versioned on disk.

Words in more than 4% of posts (the templates' words, shared by every topic) and English stop
words are left out; bigrams split topics by phrase and were left out for that reason.

``$VIGIL_HOME/models/topics/vNNNN/`` holds ``model.joblib`` (the fitted pipeline) and
``meta.json`` (the resolved config, the data snapshot it saw, each topic's top words).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
from sklearn.decomposition import NMF
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline

from vigil import config
from vigil.errors import UserError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicConfig:
    n_topics: int = 14  # a few more than the grammar has: near-duplicates merge in trends
    min_df: int = 3
    max_df: float = 0.04  # template words (in every topic) are frequent; topic words are not
    max_features: int = 20_000
    seed: int = 0
    max_iter: int = 300


@dataclass
class TopicModel:
    pipeline: Pipeline
    meta: dict

    def transform(self, texts) -> np.ndarray:
        """Topic distributions (rows sum to 1; an empty row stays all zero)."""
        w = self.pipeline.transform(list(texts))
        s = w.sum(axis=1, keepdims=True)
        return np.divide(w, s, out=np.zeros_like(w), where=s > 0).astype(np.float32)

    @property
    def n_topics(self) -> int:
        return int(self.meta["config"]["n_topics"])


def fit(texts, cfg: TopicConfig = TopicConfig()) -> TopicModel:
    texts = list(texts)
    if len(texts) < cfg.n_topics * 10:
        raise UserError(f"{len(texts)} posts are too few for {cfg.n_topics} topics: simulate more.")
    t0 = time.perf_counter()
    pipe = Pipeline([
        ("tfidf", TfidfVectorizer(ngram_range=(1, 1), min_df=cfg.min_df, max_df=cfg.max_df,
                                  stop_words="english", token_pattern=r"(?u)#?\b\w+\b",
                                  max_features=cfg.max_features, sublinear_tf=True)),
        ("nmf", NMF(n_components=cfg.n_topics, init="nndsvda", beta_loss="kullback-leibler",
                    solver="mu", random_state=cfg.seed,
                    max_iter=cfg.max_iter)),
    ])  # fmt: skip
    pipe.fit(texts)
    vocab = pipe.named_steps["tfidf"].get_feature_names_out()
    comps = pipe.named_steps["nmf"].components_
    top = [[str(vocab[i]) for i in np.argsort(-c)[:8]] for c in comps]
    meta = {
        "config": asdict(cfg),
        "documents": len(texts),
        "vocabulary": len(vocab),
        "top_words": top,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    log.info(
        "topic model: %d topics on %d posts in %.1fs", cfg.n_topics, len(texts), meta["seconds"]
    )
    return TopicModel(pipe, meta)


def _root(root: Path | None) -> Path:
    return Path(root) if root is not None else config.paths().models / "topics"


def save(model: TopicModel, snapshot: dict, root: Path | None = None) -> Path:
    """Write the next version under ``root``; return its folder."""
    base = _root(root)
    base.mkdir(parents=True, exist_ok=True)
    versions = sorted(p.name for p in base.glob("v[0-9][0-9][0-9][0-9]"))
    nxt = int(versions[-1][1:]) + 1 if versions else 1
    out = base / f"v{nxt:04d}"
    out.mkdir()
    joblib.dump(model.pipeline, out / "model.joblib")
    meta = {**model.meta, "version": out.name, "snapshot": snapshot,
            "created_at": datetime.now(UTC).isoformat()}  # fmt: skip
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    model.meta = meta
    return out


def load_latest(root: Path | None = None) -> TopicModel | None:
    base = _root(root)
    versions = sorted(base.glob("v[0-9][0-9][0-9][0-9]"))
    if not versions:
        return None
    v = versions[-1]
    return TopicModel(joblib.load(v / "model.joblib"), json.loads((v / "meta.json").read_text()))


def find(snapshot: dict, cfg: TopicConfig = TopicConfig(), root: Path | None = None):
    """The newest saved version fitted with ``cfg`` on exactly ``snapshot`` (the same posts), or
    None: what a re-run reuses instead of saving a duplicate version."""
    for v in sorted(_root(root).glob("v[0-9][0-9][0-9][0-9]"), reverse=True):
        meta = json.loads((v / "meta.json").read_text())
        if meta.get("snapshot") == snapshot and meta.get("config") == asdict(cfg):
            return TopicModel(joblib.load(v / "model.joblib"), meta)
    return None
