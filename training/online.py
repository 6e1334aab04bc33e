"""The champion's cascade for one post at a time: what ``vigil serve`` runs per request.

Same models, same order and same numbers as the batch scorer (:mod:`training.score`): the student
scores every post; a post whose student score is at or above the cascade threshold tau gets the
heavy (multi-task) model's calibrated probability, the others keep 0; the decision is remove /
review / allow from that probability and the removal threshold. The heavy model needs the text's
sentence embedding: kept in memory by content hash (an LRU), and on a miss read from or added to
the shared embedding cache (:func:`training.text.encode`).

``heavy`` sets the heavy-model budget: ``cascade`` (above tau, as trained), ``always`` or
``never`` (student only). ``spare`` (off by default; :class:`SpareCalls`) spends the heavy calls a
day the cascade leaves unused out of a daily budget at re-score requests below tau.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, date, datetime
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


class Hasher:
    """HashingVectorizer.transform for one text in ~25 us instead of ~500: murmur3 of each
    n-gram, abs mod n_features, counts, l2 norm, exactly as sklearn computes them. Vectorizers
    with other settings (binary, alternate signs, l1 or no norm) keep sklearn's transform."""

    def __init__(self, vectorizer) -> None:
        self.vectorizer = vectorizer
        self.n = int(vectorizer.n_features)
        plain = (
            vectorizer.norm == "l2"
            and not vectorizer.binary
            and not vectorizer.alternate_sign
            and vectorizer.dtype in (np.float64, float)
        )
        self.analyzer = vectorizer.build_analyzer() if plain else None

    def __call__(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.utils import murmurhash3_32

        if self.analyzer is None:
            hashed = self.vectorizer.transform([text])
            return hashed.indices, hashed.data
        counts: dict[int, int] = {}
        for token in self.analyzer(text):
            j = abs(murmurhash3_32(token, seed=0)) % self.n
            counts[j] = counts.get(j, 0) + 1
        indices = np.fromiter(counts.keys(), np.int64, len(counts))
        values = np.fromiter(counts.values(), np.float64, len(counts))
        order = np.argsort(indices)  # sklearn's rows are sorted: same sums in the same order
        indices, values = indices[order], values[order]
        norm = math.sqrt(float(values @ values))
        return indices, (values / norm if norm else values)


def numeric_params(pipeline) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean, scale) of a fitted :func:`training.preprocess.numeric_pipeline` (log1p -> impute 0
    -> standard scaling), or None for any other pipeline."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    from training.preprocess import signed_log1p

    try:
        log_step, impute, scaler = (step for _, step in pipeline.steps)
    except (AttributeError, ValueError, TypeError):
        return None
    if not (
        isinstance(log_step, FunctionTransformer)
        and log_step.func is signed_log1p
        and isinstance(impute, SimpleImputer)
        and impute.strategy == "constant"
        and float(impute.fill_value) == 0.0
        and isinstance(scaler, StandardScaler)
    ):
        return None
    n = int(scaler.n_features_in_)
    mean = scaler.mean_ if scaler.with_mean else np.zeros(n)
    scale = scaler.scale_ if scaler.with_std else np.ones(n)
    return np.asarray(mean, dtype=np.float64), np.asarray(scale, dtype=np.float64)


def scaled(values: list[float], params: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """What the numeric pipeline's transform gives for one row (float64)."""
    from training.preprocess import signed_log1p

    x = signed_log1p(values)
    return (np.where(np.isnan(x), 0.0, x) - params[0]) / params[1]


class FastStudent:
    """The distilled student's exact arithmetic without sklearn's per-call overhead (~2 ms for one
    row through Pipeline/ColumnTransformer): hashed words . weights + scaled numbers . weights.

    Built only for the structure :func:`training.cascade.make_student` fits (word hashing, the
    numeric pipeline, a binary logistic regression); :meth:`of` returns None for anything else,
    and the caller keeps the sklearn path.
    """

    def __init__(self, words, columns, numeric, coef, intercept) -> None:
        self.hasher = Hasher(words)
        self.columns = list(columns)
        self.numeric = numeric
        self.w_words = np.asarray(coef[: self.hasher.n], dtype=np.float64)
        self.w_num = np.asarray(coef[self.hasher.n :], dtype=np.float64)
        self.intercept = float(intercept)

    @classmethod
    def of(cls, student) -> FastStudent | None:
        from sklearn.feature_extraction.text import HashingVectorizer

        try:
            ct, clf = student.named_steps["features"], student.named_steps["clf"]
            (w_name, words, w_col), (n_name, num, columns) = ct.transformers_[:2]
        except (AttributeError, KeyError, ValueError, TypeError):
            return None
        numeric = numeric_params(num)
        shape_ok = (
            w_name == "word"
            and w_col == "text"
            and n_name == "num"
            and numeric is not None
            and isinstance(words, HashingVectorizer)
            and all(t[0] == "remainder" or t[1] == "drop" for t in ct.transformers_[2:])
            and clf.coef_.shape == (1, words.n_features + len(columns))
        )
        if not shape_ok:
            return None
        return cls(words, columns, numeric, clf.coef_[0], clf.intercept_[0])

    def score(self, text: str, row: dict[str, float]) -> float:
        indices, values = self.hasher(text)
        z = float(values @ self.w_words[indices]) + self.intercept
        z += float(scaled([row[c] for c in self.columns], self.numeric) @ self.w_num)
        return float(1.0 / (1.0 + math.exp(-z)))


class FastHeavy:
    """MultiTaskModel.predict_all for one post without pandas and sklearn per call: the numeric
    pipelines as arithmetic, the wide n-grams hashed by :class:`Hasher` into the same float32
    sparse product the network's forward computes."""

    def __init__(self, model, beh, cre, hashers) -> None:
        self.model = model
        self.beh, self.cre, self.hashers = beh, cre, hashers
        self.layers = _numpy_layers(model.net)

    @classmethod
    def of(cls, model) -> FastHeavy | None:
        beh, cre = numeric_params(model.beh_pre), numeric_params(model.cre_pre)
        if beh is None or cre is None or model.net is None:
            return None
        hashers = None
        if model.cfg.wide_ngrams and getattr(model.net, "wide", None) is not None:
            from training.baseline import _vectorizers

            hashers = [Hasher(v) for v in _vectorizers(model.cfg, model.cfg.wide_ngrams)]
        return cls(model, beh, cre, hashers)

    def predict_all(self, text: str, row: dict[str, float], embedding: np.ndarray) -> dict:
        out = self._predict_net(text, row, embedding)
        blend = getattr(self.model, "blend", None)
        if blend is not None:  # TrainConfig.net_blend: the baseline's logit mixed in
            import pandas as pd

            from training.multitask import blend_logits

            logit = np.log(out["harmful"]) - np.log1p(-out["harmful"])
            frame = pd.DataFrame([{"text": text, **row}])
            out["harmful"] = _sigmoid(blend_logits(logit, blend[0], blend[1], frame))
        return out

    def _predict_net(self, text: str, row: dict[str, float], embedding: np.ndarray) -> dict:
        import scipy.sparse as sp
        import torch

        m = self.model
        beh = scaled([row[c] for c in m.behavior_columns], self.beh).astype(np.float32)[None, :]
        cre = scaled([row[c] for c in m.creator_columns], self.cre).astype(np.float32)[None, :]
        ngrams = parts = None
        if self.hashers is not None:
            n = self.hashers[0].n
            parts = [self.hashers[k](text) for k in (0, 1)]
            if self.layers is not None:
                return self._numpy_forward(embedding, beh, cre, parts)
            word, char = (sp.csr_matrix((v, i, [0, len(i)]), shape=(1, n)) for i, v in parts)
            ngrams = (word + char).tocsr()
        if self.layers is not None:
            return self._numpy_forward(embedding, beh, cre, None)
        m.net.eval()
        with torch.no_grad():
            logit, rate, types = m.net(
                torch.from_numpy(np.ascontiguousarray(embedding, dtype=np.float32)),
                torch.from_numpy(beh),
                torch.from_numpy(cre),
                ngrams,
            )
        return {
            "harmful": torch.sigmoid(logit).numpy().astype(np.float64),
            "report_rate": (rate.numpy() * m.rate_scale).astype(np.float64),
            "harm_types": torch.sigmoid(types).numpy().astype(np.float64),
        }

    def _numpy_forward(self, embedding, beh, cre, parts) -> dict:
        """The network's eval-mode forward for one row in float32 NumPy: torch's per-call
        overhead (~2-3 ms for these few small layers) is most of a heavy score otherwise."""
        layers = self.layers

        def mlp(x, stack):
            for weight, bias in stack:
                x = np.maximum(x @ weight + bias, 0.0)
            return x

        emb = np.ascontiguousarray(embedding, dtype=np.float32).reshape(1, -1)
        z = np.concatenate(
            [mlp(emb, layers["text"]), mlp(beh, layers["behavior"]), mlp(cre, layers["creator"])],
            axis=1,
        )
        h = mlp(z, layers["shared"])
        logit = (h @ layers["harmful"][0] + layers["harmful"][1])[:, 0]
        if layers["wide"] is not None and parts is not None:
            wide = layers["wide"]
            logit = logit + np.float32(sum(float(v @ wide[i]) for i, v in parts if len(i)))
        if layers.get("numeric") is not None:  # TrainConfig.wide_numeric
            logit = logit + (np.concatenate([beh, cre], axis=1) @ layers["numeric"])
        rate = (h @ layers["report_rate"][0] + layers["report_rate"][1])[:, 0]
        types = h @ layers["harm_types"][0] + layers["harm_types"][1]
        return {
            "harmful": _sigmoid(logit.astype(np.float64)),
            "report_rate": (rate * self.model.rate_scale).astype(np.float64),
            "harm_types": _sigmoid(types.astype(np.float64)),
        }


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _numpy_layers(net) -> dict | None:
    """The late-fusion network's weights as float32 arrays (weight transposed), or None when the
    network is not the layout :func:`training.multitask._build_net` makes (torch then runs it)."""
    try:
        from torch import nn

        def linears(seq, relus: int) -> list:
            mods = [m for m in seq if not isinstance(m, nn.Dropout)]
            lin = [m for m in mods if isinstance(m, nn.Linear)]
            if len(lin) != relus or sum(isinstance(m, nn.ReLU) for m in mods) != relus:
                raise ValueError("unexpected layers")
            if any(not isinstance(m, (nn.Linear, nn.ReLU)) for m in mods):
                raise ValueError("unexpected layers")
            return [_wb(m) for m in lin]

        out = {
            "text": linears(net.text, 1),
            "behavior": linears(net.behavior, 2),
            "creator": linears(net.creator, 2),
            "shared": linears(net.shared, 2),
            "harmful": _wb(net.harmful),
            "report_rate": _wb(net.report_rate),
            "harm_types": _wb(net.harm_types),
        }
        wide = getattr(net, "wide", None)
        out["wide"] = None if wide is None else wide.detach().numpy()[:, 0].astype(np.float32)
        numeric = getattr(net, "numeric", None)
        out["numeric"] = None if numeric is None else _wb_nobias(numeric)
        return out
    except (AttributeError, TypeError, ValueError):
        return None


def _wb_nobias(linear) -> np.ndarray:
    """A bias-free linear layer's weight, transposed to a float32 column vector."""
    return linear.weight.detach().numpy()[0].astype(np.float32)


def _wb(linear) -> tuple[np.ndarray, np.ndarray]:
    weight = linear.weight.detach().numpy().T.astype(np.float32)
    return np.ascontiguousarray(weight), linear.bias.detach().numpy().astype(np.float32)


class SpareCalls:
    """The spare heavy calls (issue 22; the replay's ``--spare-floor``,
    ``sim.rescore_replay.run_schedule``'s ``spare``): out of ``budget`` heavy calls a UTC day, the
    ones the cascade leaves unused go to re-score requests with ``floor`` x tau <= student < tau.

    The day's threshold for them, set at the day's first such request, is the k-th highest student
    score among the last earlier day's such requests, k = ``budget`` - that day's calls at tau
    (floor x tau when it had fewer than k; none, i.e. no spare call, on the first day seen or when
    k <= 0); they stop when the day's heavy calls (at tau and spare) reach ``budget``. The state
    lives in the process: a restart starts again with no earlier day. The day is the request's
    event time when it carries one (``at``: the stream's trigger time, so a replay or a lagging
    stream counts the day the events happened), else the clock's.
    """

    def __init__(
        self, budget: int, floor: float, clock: Callable[[], datetime] | None = None
    ) -> None:
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            raise ValueError(f"spare heavy calls: budget {budget!r} must be a whole number >= 1.")
        if not 0 < floor < 1:
            raise ValueError(f"spare heavy calls: floor {floor!r} must be between 0 and 1 (0.5).")
        self.budget, self.floor = budget, float(floor)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.day: date | None = None
        self.calls = 0  # today's heavy calls, at tau and spare
        self.spare = 0  # today's spare calls
        self.candidates: list[float] = []  # today's re-score students in [floor x tau, tau)
        self.threshold: float | None = None  # today's, set at today's first candidate
        # the last earlier day with candidates: its candidates and its calls at tau
        self.previous: tuple[list[float], int] | None = None

    def _today(self, at: datetime | None = None) -> None:
        day = (at or self.clock()).astimezone(UTC).date()
        if self.day is not None and day < self.day:
            return  # a late request (an earlier day's): counted on the day under way
        if day != self.day:
            if self.candidates:
                self.previous = (self.candidates, self.calls - self.spare)
            self.day, self.calls, self.spare, self.candidates = day, 0, 0, []
            self.threshold = None

    def count(self, at: datetime | None = None) -> None:
        """A heavy call at tau (the cascade's own); ``at``: the request's event time (default the
        clock)."""
        self._today(at)
        self.calls += 1

    def take(self, student: float, tau: float, at: datetime | None = None) -> bool:
        """Whether a re-score request with this student score gets a spare heavy call (counted);
        ``at``: the request's event time (the stream's trigger time; default the clock)."""
        self._today(at)
        if not self.floor * tau <= student < tau:
            return False
        self.candidates.append(student)
        if self.threshold is None:
            self.threshold = self._threshold(tau)
        if student < self.threshold or self.calls >= self.budget:
            return False
        self.calls += 1
        self.spare += 1
        return True

    def _threshold(self, tau: float) -> float:
        if self.previous is None:
            return math.inf
        scores, at_tau = self.previous
        k = self.budget - at_tau
        if k <= 0:
            return math.inf
        ranked = sorted(scores, reverse=True)
        return ranked[k - 1] if len(ranked) >= k else self.floor * tau


class OnlineModel:
    """The registered champion (or ``model_id``), loaded once, scoring one post per call."""

    def __init__(
        self,
        model_id: str | None = None,
        heavy: str = "cascade",
        cache_size: int = 10_000,
        spare: SpareCalls | None = None,
    ) -> None:
        if heavy not in HEAVY_POLICIES:
            raise ValueError(f"heavy must be one of {HEAVY_POLICIES}, not {heavy!r}")
        if spare is not None and heavy != "cascade":
            raise ValueError(
                f"spare heavy calls need the cascade's routing (heavy 'cascade', not {heavy!r})."
            )
        self.spare = spare
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
        self.fast_student = FastStudent.of(bundle["student"])
        self.fast_heavy = FastHeavy.of(bundle["multitask"])
        if self.fast_student is None:
            log.warning("online model %s: unexpected student layout, scoring via sklearn", model_id)
        self.head = _load_head(self.model_id)
        # the moment's counters the head reads, by their online feature names
        self.head_columns = head_columns(self.feature_columns) if self.head is not None else []
        log.info(
            "online model %s: tau %.4f, remove threshold %s, heavy model: %s, %d features",
            self.model_id,
            self.tau,
            self.threshold,
            heavy,
            len(self.feature_columns),
        )

    def row(self, features: dict[str, Any]) -> dict[str, float]:
        """The numbers the models read: the features (None -> NaN) and the missing flags."""
        row = {c: _float(features.get(c)) for c in self.feature_columns}
        row["has_behavior"] = float(any(not math.isnan(row[c]) for c in self.behavior_columns))
        row["has_creator"] = float(any(not math.isnan(row[c]) for c in self.creator_columns))
        return row

    def frame(self, text: str, row: dict[str, float]):
        """The one-row frame sklearn and the heavy model read."""
        import pandas as pd

        return pd.DataFrame([{**row, "text": text}])

    def student_score(self, text: str, row: dict[str, float]) -> float:
        from training import cascade

        if self.fast_student is not None:
            return self.fast_student.score(text, row)
        return float(cascade.student_scores(self.bundle["student"], self.frame(text, row))[0])

    def routes(self, student: float) -> bool:
        return self.heavy == "always" or (self.heavy == "cascade" and student >= self.tau)

    def score(
        self,
        text: str,
        features: dict[str, Any],
        trigger: str | None = None,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """Student score, whether the heavy model ran, calibrated probability and decision.

        At a re-score moment (``trigger`` a re-score request's, :func:`training.rescore_head.
        is_rescore_trigger`) a routed post is also scored by the re-score head when the model has
        one: the decision is remove when the cascade or the head fires; ``path`` says which
        (``cascade`` first), ``head`` is the head's probability (None where it did not run).
        ``spare``: the heavy model ran as a spare call (:class:`SpareCalls`, re-score only; its
        day is ``at``'s, the request's event time, when given)."""
        out = self._cascade(text, features, _rescore(trigger), at)
        out["head"], out["path"] = None, "cascade" if out["decision"] == "remove" else None
        if self.head is not None and out["routed_to_heavy"] and _rescore(trigger):
            out["head"] = self.head.score_one(out["student"], features)
            if out["path"] is None and self.head.fires(out["head"]):
                out["decision"], out["path"] = "remove", "head"
        return out

    def _cascade(
        self,
        text: str,
        features: dict[str, Any],
        rescore: bool = False,
        at: datetime | None = None,
    ) -> dict:
        text = "" if text is None else str(text)
        row = self.row(features)
        with self._lock:
            student = self.student_score(text, row)
            routed = self.routes(student)
            spare = False
            if self.spare is not None:
                if routed:
                    self.spare.count(at)
                elif rescore:
                    spare = routed = self.spare.take(student, self.tau, at)
            probability, harm_types = 0.0, None
            if routed:
                emb = self.embeddings.get(text)[None, :]
                if self.fast_heavy is not None:
                    out = self.fast_heavy.predict_all(text, row, emb)
                else:
                    out = self.bundle["multitask"].predict_all(self.frame(text, row), emb)
                calibrator = self.bundle["calibrators"]["multitask"]
                probability = float(calibrator.transform(out["harmful"])[0])
                harm_types = [float(x) for x in np.ravel(out["harm_types"])]
        decision = str(decide([probability], self.threshold, self.cfg.review_band)[0])
        return {
            "student": student,
            "routed_to_heavy": routed,
            "spare": spare,
            "probability": probability,
            "harm_type_scores": harm_types,
            "decision": decision,
            "model_id": self.model_id,
        }

    def warm(self) -> None:
        """Load the encoder now (seconds) instead of on the first heavy request."""
        if self.heavy != "never":
            text_encoder.encode_uncached(["warm up"], 1)


def _rescore(trigger: str | None) -> bool:
    from training.rescore_head import is_rescore_trigger

    return is_rescore_trigger(trigger)


def _load_head(model_id: str):
    """The model's re-score head (``rescore_head.joblib`` beside it), or None when it has none."""
    from training import rescore_head

    head = rescore_head.load(model_id)
    if head is not None:
        log.info("online model %s: re-score head, threshold %s", model_id, head.threshold)
    return head


def head_columns(columns: list[str]) -> list[str]:
    """The online feature names of the head's counters: the model's own column for a counter it
    reads, else ``post_behavior__<counter>`` (the feature service's full name)."""
    from training.rescore_head import COUNTERS

    out = []
    for name in COUNTERS:
        mine = [c for c in columns if c == name or c.endswith(f"__{name}")]
        out.append(mine[0] if mine else f"post_behavior__{name}")
    return out


def _float(value) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
