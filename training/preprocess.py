"""Preprocessing shared by the models: numeric features and class-balance weights."""

from __future__ import annotations

import numpy as np


def signed_log1p(x):
    """log(1 + |x|) with x's sign: counts are heavy-tailed; NaN (missing) stays NaN."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.log1p(np.abs(x))


def numeric_pipeline():
    """log-compress, impute missing as 0 (the has_behavior flag says it was missing), scale."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    return Pipeline(
        [
            ("log", FunctionTransformer(signed_log1p, feature_names_out="one-to-one")),
            (
                "impute",
                SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True),
            ),
            ("scale", StandardScaler()),
        ]
    )


def balanced_weights(y) -> np.ndarray:
    """Per-example weights giving both classes equal total weight (mean weight 1)."""
    y = np.asarray(y).astype(bool)
    n = len(y)
    n_pos = max(int(y.sum()), 1)
    n_neg = max(n - int(y.sum()), 1)
    return np.where(y, n / (2.0 * n_pos), n / (2.0 * n_neg))
