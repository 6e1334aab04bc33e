"""A small hand-made training set (no Feast) for fast model tests.

Harmful posts use words from a small abusive vocabulary and collect more reports; benign posts are
over-weighted (sampling_weight 20) the way the labeling queue makes them, so the true prevalence
is ~5%. Behavior is missing (NaN) at creation, as Feast returns it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.datasets import TrainingSet, account_age_bucket

BAD = ["idiot", "loser", "hate", "kill", "scam", "clickhere", "trash", "stupid"]
GOOD = [
    "sunny",
    "coffee",
    "garden",
    "music",
    "travel",
    "friends",
    "recipe",
    "weekend",
    "book",
    "game",
]


def make_training_set(n_posts: int = 400, days: int = 6, seed: int = 0) -> TrainingSet:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-10-01", tz="UTC")
    rows, timelines = [], []
    for pid in range(1, n_posts + 1):
        harmful = bool(rng.random() < 0.5)
        day = (pid - 1) * days // n_posts
        created = start + pd.Timedelta(
            days=day, hours=int(rng.integers(0, 20)), minutes=int(rng.integers(0, 60))
        )
        words = list(rng.choice(GOOD, 5))
        if harmful and rng.random() < 0.85:
            words += list(rng.choice(BAD, 2))
        elif not harmful and rng.random() < 0.1:
            words += [str(rng.choice(BAD))]
        text = " ".join(rng.permutation(words))
        final_views = float(rng.integers(0, 400))
        report_rate = (0.05 if harmful else 0.005) * rng.uniform(0.5, 1.5)
        hours = np.arange(1, 49)
        views_curve = np.round(final_views * (1 - np.exp(-hours / 8.0)))
        for h, v in zip(hours, views_curve):
            timelines.append(
                {
                    "post_id": pid,
                    "event_timestamp": created.floor("h") + pd.Timedelta(hours=int(h)),
                    "views": float(v),
                }
            )
        htype = str(rng.choice(["harassment", "hate", "spam", "violent_threat"])) if harmful else ""
        author = int(rng.integers(1, 60))
        for off in (0.0, 1.0, 6.0, 24.0):
            v_now = np.nan if off == 0 else float(views_curve[int(off) - 1])
            rows.append(
                {
                    "post_id": pid,
                    "author_id": author,
                    "created_at": created,
                    "scored_at": created + pd.Timedelta(hours=off),
                    "offset_hours": off,
                    "text": text,
                    "is_harmful": harmful,
                    "is_harassment": htype == "harassment",
                    "is_hate": htype == "hate",
                    "is_spam": htype == "spam",
                    "is_violent_threat": htype == "violent_threat",
                    "sampling_weight": 1.0 if harmful else 4.0,
                    "day": created.strftime("%Y-%m-%d"),
                    "views": v_now,
                    "reports": np.nan if off == 0 else np.round(v_now * report_rate),
                    "post_age_hours": np.nan if off == 0 else off,
                    "reports_received_30d": float(rng.poisson(3 if harmful else 1)),
                    "account_age_days": float(rng.integers(1, 400)),
                    "views_final": final_views,
                    "report_rate": report_rate,
                    "home_country": str(rng.choice(["US", "DE", "BR"])),
                }
            )
    ex = pd.DataFrame(rows)
    day_list = sorted(ex["day"].unique())
    n_train = round(0.6 * days)
    split = {
        d: ("train" if i < n_train else "val" if i < n_train + max(1, days // 5) else "test")
        for i, d in enumerate(day_list)
    }
    ex["split"] = ex["day"].map(split)
    ex["has_behavior"] = ex["views"].notna().astype(float)
    ex["has_creator"] = 1.0
    ex["account_age_bucket"] = account_age_bucket(ex["account_age_days"])
    ex["example_id"] = np.arange(len(ex))
    return TrainingSet(
        examples=ex,
        behavior_columns=["views", "reports", "post_age_hours"],
        creator_columns=["reports_received_30d", "account_age_days"],
        timelines=pd.DataFrame(timelines),
        windows={"train": [day_list[0], day_list[n_train - 1]]},
    )


@pytest.fixture
def synthetic_set() -> TrainingSet:
    return make_training_set()


@pytest.fixture
def vigil_home(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "home"
