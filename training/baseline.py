"""Baseline: hashed word + character n-grams of the text and the numeric features -> logistic regression.

Fast and explainable: :func:`top_features` maps the largest coefficients back to readable n-grams
(hashed columns are reversed with a vocabulary pass over the training text).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict

import numpy as np
import pandas as pd

from training.config import TrainConfig
from training.preprocess import balanced_weights, numeric_pipeline

log = logging.getLogger(__name__)


def _vectorizers(cfg: TrainConfig, n_features: int | None = None):
    from sklearn.feature_extraction.text import HashingVectorizer

    word = HashingVectorizer(
        analyzer="word",
        ngram_range=(1, 2),
        n_features=n_features or cfg.hash_features_word,
        alternate_sign=False,
        lowercase=True,
    )
    char = HashingVectorizer(
        analyzer="char_wb",
        ngram_range=(3, 5),
        n_features=n_features or cfg.hash_features_char,
        alternate_sign=False,
        lowercase=True,
    )
    return word, char


def make_pipeline(cfg: TrainConfig, numeric_columns: list[str]):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    word, char = _vectorizers(cfg)
    features = ColumnTransformer(
        [
            ("word", word, "text"),
            ("char", char, "text"),
            ("num", numeric_pipeline(), numeric_columns),
        ]
    )
    clf = LogisticRegression(
        C=cfg.baseline_C, max_iter=cfg.baseline_max_iter, solver="liblinear", random_state=cfg.seed
    )
    return Pipeline([("features", features), ("clf", clf)])


def fit(train: pd.DataFrame, numeric_columns: list[str], cfg: TrainConfig):
    pipe = make_pipeline(cfg, numeric_columns)
    y = train["is_harmful"].astype(int).to_numpy()
    pipe.fit(train[["text", *numeric_columns]], y, clf__sample_weight=balanced_weights(y))
    log.info("baseline: fitted on %d examples", len(train))
    return pipe


def predict(pipe, frame: pd.DataFrame) -> np.ndarray:
    cols = ["text", *pipe.named_steps["features"].transformers[2][2]]
    return pipe.predict_proba(frame[cols])[:, 1]


def hashed_vocabulary(texts, vectorizer, max_texts: int = 20000) -> dict[int, str]:
    """Column index -> most frequent n-gram hashing to it in ``texts`` (the vocabulary pass)."""
    from sklearn.utils import murmurhash3_32

    analyzer = vectorizer.build_analyzer()
    counts: dict[int, Counter] = defaultdict(Counter)
    for text in list(texts)[:max_texts]:
        for token in set(analyzer(text)):
            # HashingVectorizer: index = |murmurhash3_32(token, seed=0)| mod n_features.
            counts[abs(murmurhash3_32(token, seed=0)) % vectorizer.n_features][token] += 1
    return {idx: c.most_common(1)[0][0] for idx, c in counts.items()}


def top_features(pipe, train_texts, k: int = 25) -> list[dict]:
    """The k largest positive and k most negative coefficients, with readable names."""
    features = pipe.named_steps["features"]
    coef = pipe.named_steps["clf"].coef_.ravel()
    word = features.named_transformers_["word"]
    char = features.named_transformers_["char"]
    numeric_columns = list(features.transformers[2][2])
    word_vocab = hashed_vocabulary(train_texts, word)
    char_vocab = hashed_vocabulary(train_texts, char)
    nw, nc = word.n_features, char.n_features

    def name(i: int) -> tuple[str, str]:
        if i < nw:
            return "word", word_vocab.get(i, f"<hash {i}>")
        if i < nw + nc:
            return "char", repr(char_vocab.get(i - nw, f"<hash {i - nw}>"))
        return "numeric", numeric_columns[i - nw - nc]

    order = np.argsort(coef)
    chosen = [*order[::-1][:k], *order[:k]]
    out = []
    for i in chosen:
        kind, label = name(int(i))
        out.append({"feature": label, "kind": kind, "weight": round(float(coef[i]), 4)})
    return out
