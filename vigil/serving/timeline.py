"""``GET /v1/timeline/{user_id}``: a user's home timeline, as the daily ranking batch wrote it.

The ``vigil_ranking`` DAG writes every user's top 10 to
``$VIGIL_HOME/ranking/home/dt=D/timelines.parquet`` (:mod:`vigil.ranking.pipeline`). The
scoring service serves the newest day's file (or ``?day=YYYY-MM-DD``) read-only: the file is
read once per change (path and modification time) into a per-user index, so a request is a
dictionary lookup. Unknown users and days get a 404 naming the fix; a malformed day a 422.
"""

from __future__ import annotations

import logging
import threading
from datetime import date
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from vigil import config

log = logging.getLogger(__name__)

FIELDS = ("rank", "post_id", "author_id", "topic", "followed", "score", "rerank_harm")


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


class Timelines:
    """The ranking batch's timelines under ``root`` (default ``$VIGIL_HOME/ranking/home``)."""

    def __init__(self, root: Path | None = None) -> None:
        self._root = root
        self._lock = threading.Lock()
        self._cache: dict[Path, tuple[int, dict]] = {}

    @property
    def root(self) -> Path:
        return self._root or config.paths().home / "ranking" / "home"

    def days(self) -> list[str]:
        return sorted(
            p.name[3:] for p in self.root.glob("dt=*") if (p / "timelines.parquet").is_file()
        )

    def index(self, day: str) -> dict:
        """user_id -> {"ranked_at", "topics_version", "posts": [...]} for ``day``."""
        path = self.root / f"dt={day}" / "timelines.parquet"
        mtime = path.stat().st_mtime_ns
        with self._lock:
            hit = self._cache.get(path)
            if hit is not None and hit[0] == mtime:
                return hit[1]
        import pandas as pd

        frame = pd.read_parquet(path).sort_values(["user_id", "rank"], kind="stable")
        out: dict[int, dict] = {}
        for uid, g in frame.groupby("user_id", sort=False):
            posts = [
                {
                    **{f: _plain(r[f]) for f in FIELDS},
                    "post_created_at": r["post_created_at"].isoformat(),
                }
                for r in g.to_dict("records")
            ]
            first = g.iloc[0]
            out[int(uid)] = {"ranked_at": first["ranked_at"].isoformat(),
                             "topics_version": str(first["topics_version"]), "posts": posts}  # fmt: skip
        with self._lock:
            self._cache = {path: (mtime, out)}  # one day held at a time
        log.info("timelines %s: %d users loaded", day, len(out))
        return out


def _plain(v):
    """numpy scalars as JSON numbers / booleans."""
    return v.item() if hasattr(v, "item") else v


def timeline(store: Timelines, user_id: int, day: str | None = None):
    days = store.days()
    if not days:
        return _error(404, f"no timelines under {store.root}: run the vigil_ranking DAG "
                      "(rank_timelines) first.")  # fmt: skip
    if day is None:
        day = days[-1]
    else:
        try:
            day = date.fromisoformat(day).isoformat()
        except ValueError:
            return _error(422, f"day={day!r} is not a date: use YYYY-MM-DD.")
        if day not in days:
            return _error(404, f"no timelines for {day}: days ranked are {', '.join(days[-5:])}.")
    entry = store.index(day).get(user_id)
    if entry is None:
        return _error(404, f"user {user_id} has no timeline for {day}: not a user of the lake "
                      "when it was ranked, or no candidate posts.")  # fmt: skip
    return {"user_id": user_id, "day": day, **entry}


def add_timeline_routes(app: FastAPI, store: Timelines | None = None) -> None:
    store = store or Timelines()

    @app.get("/v1/timeline/{user_id}")
    async def get_timeline(user_id: int, day: str | None = None):
        """The user's ranked home timeline (top 10) from the newest (or the given) day."""
        return timeline(store, user_id, day)
