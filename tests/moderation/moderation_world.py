"""A small served world for the scoring service's tests and bench: hand-made feature marts in a
fresh Feast project (materialized), a posts mart with texts, and a champion trained through the
real training code (bench/serving_world.py).

Posts 1..N_POSTS; post p is written by author 100 + p % 7; odd posts use abusive words.
"""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bench.serving_world import train_champion
from vigil import config
from vigil.serving.services import MODERATION_V1

N_POSTS = 40
T0 = datetime(2026, 10, 1, tzinfo=UTC)
BAD = ["idiot", "loser", "hate", "scam", "trash"]
GOOD = ["sunny", "coffee", "garden", "music", "travel", "recipe"]
FLOATS = {
    "post_age_hours",
    "negative_reactions_per_view",
    "reports_per_view",
    "shares_per_view",
    "account_age_days",
    "report_rate_bayes",
    "dislike_rate_bayes",
    "block_rate_bayes",
}


def author_of(post_id: int) -> int:
    return 100 + post_id % 7


def text_of(post_id: int) -> str:
    words = [GOOD[(post_id + i) % len(GOOD)] for i in range(4)]
    if post_id % 2:
        words += [BAD[post_id % len(BAD)], BAD[(post_id + 2) % len(BAD)]]
    return " ".join(words) + f" #{post_id}"


def _write(name: str, key: str, columns: list[str], rows: list[dict]) -> None:
    fields = [pa.field(key, pa.int64()), pa.field("event_timestamp", pa.timestamp("us", tz="UTC"))]
    fields += [pa.field(c, pa.float64() if c in FLOATS else pa.int64()) for c in columns]
    data = {f.name: [r.get(f.name, 0) for r in rows] for f in fields}
    path = config.paths().features / f"{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(data, schema=pa.schema(fields)), path)


def write_marts() -> None:
    posts, behavior = [], []
    for p in range(1, N_POSTS + 1):
        created = T0 + timedelta(hours=p)
        posts.append((p, author_of(p), created, text_of(p)))
        views = 10 * p
        reports = 3 * p if p % 2 else 0
        behavior.append(
            {
                "post_id": p,
                "event_timestamp": created + timedelta(hours=1),
                "author_id": author_of(p),
                "post_age_hours": 1.0,
                "views": views,
                "reports": reports,
                "reports_per_view": (reports + 0.01) / (views + 1),
            }
        )
    authors = sorted({author_of(p) for p in range(1, N_POSTS + 1)})
    creator = [
        {
            "user_id": a,
            "event_timestamp": T0,
            "reports_received_30d": a - 100,
            "account_age_days": float(10 * (a - 99)),
        }
        for a in authors
    ]
    activity = [
        {"user_id": a, "event_timestamp": T0, "uam_30d": a, "active_days_30d": 3} for a in authors
    ]
    _write("post_behavior", "post_id", ["author_id", *MODERATION_V1["post_behavior"]], behavior)
    _write("creator_context", "user_id", list(MODERATION_V1["creator_context"]), creator)
    _write("user_activity", "user_id", [*MODERATION_V1["user_activity"], "uam_1d"], activity)
    table = pa.table(
        {
            "post_id": pa.array([p[0] for p in posts], pa.int64()),
            "author_id": pa.array([p[1] for p in posts], pa.int64()),
            "created_at": pa.array([p[2] for p in posts], pa.timestamp("us", tz="UTC")),
            "text": pa.array([p[3] for p in posts], pa.string()),
        }
    )
    pq.write_table(table, config.paths().features / "posts.parquet")


def build(home: Path, online_store: str = "sqlite", model_from: Path | None = None) -> dict:
    """Marts, Feast (applied + materialized) and a champion under ``home`` (the champion copied
    from ``model_from``'s registry when given, else trained); sets and returns the environment a
    `vigil serve` process needs to see the same world."""
    from vigil.serving import features

    env = {
        "VIGIL_HOME": str(home),
        "VIGIL_FEAST_PROJECT": f"vigil_serve_{uuid.uuid4().hex[:10]}",
        "VIGIL_ONLINE_STORE": online_store,
        "VIGIL_REDIS_URL": "127.0.0.1:6379",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    os.environ.update(env)
    write_marts()
    features.apply()
    features.materialize(full=True)
    if model_from is None:
        # the net alone (net_blend 0, the default until 2026-12-08): the service tests' cases
        # (e.g. a reported post the cascade allows, for the re-score head) come from its scores;
        # the blend's serving path is tested in tests/training/test_net_blend.py
        train_champion(n_posts=200, overrides={"net_blend": 0.0})
    else:
        shutil.copytree(model_from / "models", home / "models")
    return env


def teardown(env: dict) -> None:
    """Drop the world's online rows (its Redis keys) and registry."""
    from vigil.serving import features

    os.environ.update(env)
    features.store().teardown()


def reference_rows(post_ids: list[int]):
    """Feast's own online vectors (get_online_features with the service) for the posts: what the
    service must score."""
    from vigil.serving import features

    fs = features.store()
    got = fs.get_online_features(
        features=fs.get_feature_service("moderation_v1"),
        entity_rows=[{"post_id": p, "user_id": author_of(p)} for p in post_ids],
        full_feature_names=True,
    ).to_dict()
    return [{k: v[i] for k, v in got.items()} for i in range(len(post_ids))]
