"""Drift alert thresholds: one frozen dataclass, overridable field by field from a JSON file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from vigil.errors import UserError


@dataclass(frozen=True)
class DriftThresholds:
    """Alert thresholds (a JSON file overrides any field; defaults: docs/monitoring.md).

    Measured on simulated worlds (1,500 users, 14 days, seed 7, no drift) the largest values on
    days 7-14 were: feature PSI 0.32 / KS 0.27 (30-day-window features still warming up), report
    rate ratio 1.04, new-token share 0.00. Bayesian-averaged rates (``*_bayes``, ``*_per_view``)
    are shrunk towards a prior that dbt recomputes every day, so their distributions jump with the
    prior (PSI 1-8 without any drift): they are recorded but excluded from alerting by default.
    An N-day window feature (``*_30d``) does not alert while the reference window starts less
    than N days after the first data (it is still filling up, so it grows without any drift).
    """

    feature_psi: float = 0.5
    feature_ks: float = 0.3
    feature_alert_exclude: tuple[str, ...] = (
        "*_bayes",
        "*_per_view",
    )  # fnmatch on the feature name
    text_oov: float = 0.01  # excess share of recent tokens that are new AND frequent
    # excess share of recent posts holding a new token that at least new_token_min_count posts
    # repeat (a vocabulary switch or spam campaign: a few new words in many posts)
    text_new_posts: float = 0.005
    new_token_min_count: int = 5  # a new token counts once it occurs this often in the window
    score_psi: float = 0.25
    report_rate_ratio: float = 1.5
    confirmed_rate_drop: float = (
        0.15  # reference minus recent moderator-confirmed share of removals
    )
    confirmed_min_labels: int = 10  # labeled removed posts needed in each window to compare
    recent_days: int = 3
    reference_days: int = 14
    min_rows: int = 50

    @classmethod
    def from_file(cls, path: Path | None) -> DriftThresholds:
        if path is None:
            return cls()
        try:
            values = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"cannot read drift thresholds {path}: {exc}; pass a JSON object.")
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise UserError(
                f"unknown drift threshold(s) {sorted(unknown)} in {path}: "
                f"use {sorted(cls.__dataclass_fields__)}."
            )
        if "feature_alert_exclude" in values:
            values["feature_alert_exclude"] = tuple(values["feature_alert_exclude"])
        return cls(**values)
