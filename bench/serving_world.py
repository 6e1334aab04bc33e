"""A champion for the scoring service's bench and tests: fitted by the real training code
(``training.train.fit_models``, dry-run sizes) on the synthetic training set of
``tests/training/conftest.py``, with its columns renamed to the Feast features the service reads,
then registered and promoted through the model registry.
"""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The synthetic training set's columns, renamed to the features the service reads.
RENAME = {
    "views": "post_behavior__views",
    "reports": "post_behavior__reports",
    "post_age_hours": "post_behavior__post_age_hours",
    "reports_received_30d": "creator_context__reports_received_30d",
    "account_age_days": "creator_context__account_age_days",
}


def training_set(n_posts: int = 300, seed: int = 3):
    path = REPO / "tests" / "training" / "conftest.py"
    spec = importlib.util.spec_from_file_location("training_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ts = module.make_training_set(n_posts=n_posts, days=6, seed=seed)
    ts.examples = ts.examples.rename(columns=RENAME)
    ts.behavior_columns = [RENAME[c] for c in ts.behavior_columns]
    ts.creator_columns = [RENAME[c] for c in ts.creator_columns]
    return ts


def train_champion(n_posts: int = 300, seed: int = 3, overrides: dict | None = None) -> str:
    """fit_models on the synthetic set, registered and promoted: the champion's model id.
    ``overrides``: TrainConfig fields over the dry-run settings."""
    from training import registry
    from training.config import DRY_RUN_OVERRIDES, from_dict
    from training.train import fit_models

    cfg = from_dict({**DRY_RUN_OVERRIDES, "seed": seed, **(overrides or {})})
    objects = fit_models(training_set(n_posts, seed), cfg)
    model_id = f"serve-{uuid.uuid4().hex[:8]}"
    registry.save(
        model_id,
        {k: v for k, v in objects.items() if k != "timings"},
        {"feature_service": cfg.feature_service, "config": cfg.to_dict()},
    )
    registry.promote(model_id)
    return model_id
