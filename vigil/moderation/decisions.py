"""The decision log: one JSON line per decision, partitioned by UTC day, for the warehouse.

``<data root>/decisions/dt=YYYY-MM-DD/decisions-<pid>.jsonl``; each line has ``post_id``,
``decided_at`` (UTC ISO), ``model_id``, ``student``, ``routed_to_heavy``, ``probability``,
``decision``, ``trigger``, ``content_hash``, ``harm_type`` (the type the heavy model rated highest,
``unknown`` without it), ``author_age_bucket`` (the appeals report's slices) and ``author_id`` (who
may appeal a removal), ``path`` (which removal path fired: ``cascade``, or ``head`` -- the re-score
head at a re-score request -- null when not removed) and ``head`` (the head's probability, null where
it did not run), ``event_at`` (the event time a stream request carries, its trigger's; null for
a request without one; ``decided_at`` is always the wall clock). Lines are appended with one ``write`` on an
``O_APPEND`` file, so a reader (DuckDB's ``read_json_auto('decisions/*/*.jsonl')``) never sees
half a line from a running service. The latest decisions per post are also kept in memory for
``GET /v1/decisions/{post_id}``; on start they are rebuilt from the files already there.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from vigil import config

log = logging.getLogger(__name__)

FIELDS = (
    "post_id",
    "decided_at",
    "model_id",
    "student",
    "routed_to_heavy",
    "probability",
    "decision",
    "trigger",
    "content_hash",
    "harm_type",
    "author_age_bucket",
    "author_id",
    "path",
    "head",
    "spare",  # the heavy model ran as a spare call (training.online.SpareCalls); not in the lake
    "event_at",  # the request's event time (the stream's trigger time), UTC ISO; not in the lake
)
KEEP_PER_POST = 20


def root() -> Path:
    return config.paths().decision_log


class DecisionLog:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or root()
        self._by_post: dict[int, list[dict]] = defaultdict(list)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._day: str | None = None
        self.written = 0
        self._reload()

    def _reload(self) -> None:
        files = sorted(self.directory.glob("dt=*/decisions-*.jsonl"))
        rows = 0
        for path in files:
            with path.open() as handle:
                for line in handle:
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut by a crash: skipped, the next ones still count
                    if record.get("post_id") is not None and record.get("trigger") != "shadow":
                        self._remember(record)
                        rows += 1
        for history in self._by_post.values():
            history.sort(key=lambda r: r["decided_at"])
        if files:
            log.info("serve: %d earlier decisions for %d posts", rows, len(self._by_post))

    def _remember(self, record: dict) -> None:
        history = self._by_post[int(record["post_id"])]
        history.append(record)
        del history[:-KEEP_PER_POST]

    def _file(self, day: str) -> int:
        if self._fd is None or day != self._day:
            if self._fd is not None:
                os.close(self._fd)
            folder = self.directory / f"dt={day}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"decisions-{os.getpid()}.jsonl"
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._day = day
        return self._fd

    def append(self, record: dict, remember: bool = True) -> dict:
        """Log one decision; ``remember=False`` (a shadow model's row) keeps it out of
        :meth:`history`, which holds the decisions acted on."""
        now = datetime.now(UTC)
        record = {k: record.get(k) for k in FIELDS} | {"decided_at": now.isoformat()}
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self._lock:
            os.write(self._file(now.date().isoformat()), line)
            self.written += 1
            if remember and record["post_id"] is not None:
                self._remember(record)
        return record

    def history(self, post_id: int) -> list[dict]:
        with self._lock:
            return list(self._by_post.get(post_id, ()))

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
