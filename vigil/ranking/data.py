"""The lake as the ranking code sees it: posts, engagement, follows, removals, in memory.

One read of ``lake/events`` through DuckDB; times become int64 milliseconds since the epoch so the
feature code can work on numpy arrays.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from vigil import config
from vigil.errors import UserError

log = logging.getLogger(__name__)

HOUR = 3_600_000
DAY = 24 * HOUR
POSITIVE = ("like", "reply", "share")
NEGATIVE = ("dislike", "mute", "report")


@dataclass
class LakeView:
    """What ranking needs from the lake; frames sorted by time."""

    posts: pd.DataFrame  # post_id, author_id, created_ms, text, region
    actions: pd.DataFrame  # ts, user_id, action, post_id (0 for mute), author_id
    follows: pd.DataFrame  # ts, user_id, author_id
    users: pd.DataFrame  # user_id, region
    removed_ms: dict[int, int]  # post_id -> when moderation removed it (is_harmful label)

    @property
    def start_ms(self) -> int:
        return int(self.posts["created_ms"].min()) // DAY * DAY

    @property
    def end_ms(self) -> int:
        return int(self.actions["ts"].max())


def _ms(col: str) -> str:
    return f"(epoch_ms({col}))::bigint"


def load(lake: Path | None = None) -> LakeView:
    """Read the lake under ``lake`` (default ``$VIGIL_HOME/lake``)."""
    lake = Path(lake) if lake is not None else config.paths().lake
    files = sorted((lake / "events").glob("dt=*/events.parquet"))
    if not files:
        raise UserError(
            f"{lake / 'events'} holds no events: run `vigil simulate-discovery` and "
            "`vigil ingest --raw DIR` first."
        )
    con = duckdb.connect(":memory:")
    src = f"read_parquet({[str(f) for f in files]!r})"
    users = con.sql(
        f"select user_id, home_country as region from read_parquet('{lake}/users/users.parquet') "
        "order by user_id"
    ).df()
    posts = con.sql(
        f"select post_id, user_id as author_id, {_ms('event_ts')} as created_ms, text "
        f"from {src} where action = 'post' order by created_ms, post_id"
    ).df()
    posts = posts.drop_duplicates("post_id").reset_index(drop=True)
    posts = posts.merge(users.rename(columns={"user_id": "author_id"}), on="author_id", how="left")
    actions = con.sql(
        f"select {_ms('event_ts')} as ts, user_id, action, coalesce(post_id, 0) as post_id, "
        f"coalesce(target_user_id, 0) as author_id from {src} "
        "where action in ('view','like','reply','share','dislike','mute','report') "
        # ties in ts broken by every column: the order feeds the ranker's training rows
        "order by ts, user_id, action, post_id, author_id"
    ).df()
    follows = con.sql(
        f"select {_ms('event_ts')} as ts, user_id, target_user_id as author_id from {src} "
        "where action = 'follow' order by ts, user_id, author_id"
    ).df()
    removed: dict[int, int] = {}
    labels = lake / "labels" / "labels.parquet"
    if labels.exists():
        rows = con.sql(
            f"select post_id, {_ms('labeled_at')} from read_parquet('{labels}') where is_harmful"
        ).fetchall()
        removed = {int(p): int(t) for p, t in rows}
    log.info(
        "lake: %d posts, %d actions, %d follows, %d users, %d removed posts",
        len(posts), len(actions), len(follows), len(users), len(removed),
    )  # fmt: skip
    return LakeView(posts, actions, follows, users, removed)


def removed_before(view: LakeView, post_ids: np.ndarray, now_ms: int) -> np.ndarray:
    """True where moderation had removed the post by ``now_ms``."""
    big = np.iinfo(np.int64).max
    at = np.array([view.removed_ms.get(int(p), big) for p in post_ids], dtype=np.int64)
    return at <= now_ms
