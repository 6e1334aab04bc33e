"""Posts the service can score by id: the ``posts`` feature mart (post_id, author_id, text).

Loaded once into memory; an id not found triggers a reload when the mart file changed since (dbt
rewrites it), so posts published after the service started are found without a restart.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from vigil import config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Post:
    post_id: int
    author_id: int
    text: str


class PostIndex:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config.paths().features / "posts.parquet"
        self._posts: dict[int, tuple[int, str]] = {}
        self._mtime: float | None = None
        self._load()

    def _load(self) -> None:
        try:
            mtime = os.stat(self.path).st_mtime
        except FileNotFoundError:
            if self._mtime is None:
                log.warning(
                    "serve: no posts mart at %s: only new posts (text + author) score", self.path
                )
            self._mtime = -1.0
            return
        if mtime == self._mtime:
            return
        import pyarrow.parquet as pq

        table = pq.read_table(self.path, columns=["post_id", "author_id", "text"])
        ids, authors, texts = (
            table.column(c).to_pylist() for c in ("post_id", "author_id", "text")
        )
        self._posts = {
            int(p): (int(a), t or "")
            for p, a, t in zip(ids, authors, texts)
            if p is not None and a is not None
        }
        self._mtime = mtime
        log.info("serve: %d posts from %s", len(self._posts), self.path)

    def get(self, post_id: int) -> Post | None:
        found = self._posts.get(post_id)
        if found is None:
            self._load()
            found = self._posts.get(post_id)
        return None if found is None else Post(post_id, found[0], found[1])

    def __len__(self) -> int:
        return len(self._posts)
