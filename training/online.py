"""The champion's cascade for one post at a time: what ``vigil serve`` runs per request.

Same models, same order and same numbers as the batch scorer (:mod:`training.score`): the student
scores every post; a post whose student score is at or above the cascade threshold tau gets the
heavy (multi-task) model's calibrated probability, the others keep 0; the decision is remove /
review / allow from that probability and the removal threshold. The heavy model needs the text's
sentence embedding: kept in memory by content hash (an LRU), and on a miss read from or added to
the shared embedding cache (:func:`training.text.encode`).

``heavy`` sets the heavy-model budget: ``cascade`` (above tau, as trained), ``always`` or
``never`` (student only).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from training import registry
from training import text as text_encoder
from training.calibrate import decide
from training.config import from_dict

log = logging.getLogger(__name__)

HEAVY_POLICIES = ("cascade", "always", "never")


class EmbeddingLRU:
    """content sha256 -> embedding, at most ``size`` entries; misses go to the encoder."""

    def __init__(self, size: int = 10_000, batch_size: int = 16) -> None:
        self.size = size
        self.batch_size = batch_size
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, text: str) -> np.ndarray:
        key = hashlib.sha256(text.encode()).hexdigest()
        with self._lock:
            vec = self._items.get(key)
            if vec is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return vec
        vec = text_encoder.encode([text], self.batch_size)[0]
        with self._lock:
            self.misses += 1
            self._items[key] = vec
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return vec


class OnlineModel:
    """The registered champion (or ``model_id``), loaded once, scoring one post per call."""

    def __init__(
        self, model_id: str | None = None, heavy: str = "cascade", cache_size: int = 10_000
    ) -> None:
        if heavy not in HEAVY_POLICIES:
            raise ValueError(f"heavy must be one of {HEAVY_POLICIES}, not {heavy!r}")
        bundle = registry.load(model_id)
        self.bundle = bundle
        self.model_id: str = bundle["model_id"]
        self.cfg = from_dict(bundle["meta"].get("config") or bundle.get("config") or {})
        self.tau = float(bundle["cascade_tau"])
        self.threshold = float(bundle["thresholds"]["multitask"]["threshold"])
        self.behavior_columns: list[str] = list(bundle["behavior_columns"])
        self.creator_columns: list[str] = list(bundle["creator_columns"])
        self.feature_columns = [*self.behavior_columns, *self.creator_columns]
        self.heavy = heavy
        self.embeddings = EmbeddingLRU(cache_size, self.cfg.encoder_batch_size)
        self._lock = threading.Lock()  # torch and sklearn objects are not shared across threads
        log.info(
            "online model %s: tau %.4f, remove threshold %s, heavy model: %s, %d features",
            self.model_id,
            self.tau,
            self.threshold,
            heavy,
            len(self.feature_columns),
        )

    def frame(self, text: str, features: dict[str, Any]):
        """The one-row frame the models read: the features (None -> NaN) and the missing flags."""
        import pandas as pd

        row = {c: _float(features.get(c)) for c in self.feature_columns}
        row["has_behavior"] = float(any(not math.isnan(row[c]) for c in self.behavior_columns))
        row["has_creator"] = float(any(not math.isnan(row[c]) for c in self.creator_columns))
        row["text"] = text
        return pd.DataFrame([row])

    def routes(self, student: float) -> bool:
        return self.heavy == "always" or (self.heavy == "cascade" and student >= self.tau)

    def score(self, text: str, features: dict[str, Any]) -> dict[str, Any]:
        """Student score, whether the heavy model ran, calibrated probability and decision."""
        from training import cascade

        text = "" if text is None else str(text)
        frame = self.frame(text, features)
        with self._lock:
            student = float(cascade.student_scores(self.bundle["student"], frame)[0])
            routed = self.routes(student)
            probability, harm_types = 0.0, None
            if routed:
                emb = self.embeddings.get(text)[None, :]
                out = self.bundle["multitask"].predict_all(frame, emb)
                calibrator = self.bundle["calibrators"]["multitask"]
                probability = float(calibrator.transform(out["harmful"])[0])
                harm_types = [float(x) for x in np.ravel(out["harm_types"])]
        decision = str(decide([probability], self.threshold, self.cfg.review_band)[0])
        return {
            "student": student,
            "routed_to_heavy": routed,
            "probability": probability,
            "harm_type_scores": harm_types,
            "decision": decision,
            "model_id": self.model_id,
        }

    def warm(self) -> None:
        """Load the encoder now (seconds) instead of on the first heavy request."""
        if self.heavy != "never":
            text_encoder.encode_uncached(["warm up"], 1)


def _float(value) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
