"""The simulator's ground truth, read back: the ONLY reader of ``<raw>/_truth``.

``sim.world`` writes one line per post to ``_truth/posts.jsonl`` (post_id, author_id, created_at,
is_harmful, harm_types, ...). The platform never sees it: the simulated moderators
(:mod:`sim.moderators`) answer review requests from it, and the simulation harness
(:mod:`sim.harness`) grades registered models against it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from vigil.contracts import HARM_TYPES

log = logging.getLogger(__name__)


def posts_path(raw_dir: str | Path) -> Path:
    return Path(raw_dir) / "_truth" / "posts.jsonl"


def posts(raw_dir: str | Path, days: list[str] | None = None) -> pd.DataFrame | None:
    """Every simulated post's truth (plus a ``day`` column), or None when there is no truth file.

    ``days``: keep only posts created on these days (YYYY-MM-DD).
    """
    path = posts_path(raw_dir)
    if not path.is_file():
        return None
    truth = pd.read_json(path, lines=True, dtype={"post_id": "int64"})
    truth["day"] = pd.to_datetime(truth["created_at"], utc=True).dt.strftime("%Y-%m-%d")
    truth["is_harmful"] = truth["is_harmful"].astype(bool)
    if days is not None:
        truth = truth[truth["day"].isin(set(map(str, days)))]
    return truth.reset_index(drop=True)


def evaluation_sample(
    raw_dir: str | Path, days: list[str], benign_rate: float, seed: int
) -> pd.DataFrame | None:
    """The test split at the true prevalence: labels for the harness to pass to the platform.

    A stratified sample of every post created on ``days``: all harmful posts (weight 1) and each
    benign post with probability ``benign_rate`` (weight 1 / rate), seeded. Columns: post_id,
    is_harmful, is_<harm type>..., sampling_weight, queue (``truth_sample``). None without truth.
    """
    truth = posts(raw_dir, days) if days else None
    if truth is None:
        return None
    truth = truth.sort_values("post_id").reset_index(drop=True)
    harmful = truth["is_harmful"].to_numpy()
    keep = harmful | (np.random.default_rng([seed, 6]).random(len(truth)) < benign_rate)
    out = truth[keep].reset_index(drop=True)
    for h in HARM_TYPES:
        out[f"is_{h}"] = out["harm_types"].map(lambda t, h=h: h in (t or []))
    out["sampling_weight"] = np.where(out["is_harmful"], 1.0, 1.0 / benign_rate)
    out["queue"] = "truth_sample"
    log.info(
        "evaluation sample from the truth: %d of %d test-day posts (%d harmful, benign rate %.3f)",
        len(out),
        len(truth),
        int(harmful.sum()),
        benign_rate,
    )
    return out[
        ["post_id", "is_harmful", *[f"is_{h}" for h in HARM_TYPES], "sampling_weight", "queue"]
    ]
