"""Appeals: the author of a removed post asks for a second look; moderators reverse or uphold.

Storage (under the data root, beside the decision log): ``appeals/appeals.sqlite`` holds one row
per appeal (one appeal per post), ``appeals/labels.jsonl`` one line per decided appeal in the
``labels.jsonl`` contract (``queue`` = ``appeal``, ``sampling_weight`` 1, plus ``appeal_id`` and
``model_id``): a reversal is a labeled false positive (``is_harmful`` false), an upheld removal a
moderator's harmful label (``harm_types``: the removal's predicted type when it names one).
``vigil ingest`` loads the file into the lake (``lake/appeal_labels``) and training reads it with
the other labels (the ``post_labels`` mart). Each new appeal is also a review request in the ``appeal`` queue
(``review/requests/appeal.parquet``, :mod:`vigil.review.files`), which the reviewers' side reads.

A verdict comes either directly (``POST /v1/appeals/{id}/verdict``, ``vigil appeals verdict``) or
from the moderators' verdict files (``POST /v1/appeals/sync``, ``vigil appeals sync``): a verdict
on the post given after the appeal was filed decides it (harmful: upheld; not harmful: reversed).
A reversal restores the post: the service appends a decision row with trigger ``appeal_reversed``
and decision ``allow``.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from vigil import config

STATUSES = ("pending", "reversed", "upheld")
OUTCOMES = {"reverse": "reversed", "uphold": "upheld"}
QUEUE = "appeal"
MAX_REASON_CHARS = 2_000
AGE_FEATURE = "creator_context__account_age_days"
AGE_BUCKETS = ((7, "<7d"), (30, "7-30d"), (180, "30-180d"), (math.inf, ">180d"))

SCHEMA = """
create table if not exists appeals (
    appeal_id integer primary key autoincrement,
    post_id integer not null unique,
    author_id integer not null,
    reason text not null,
    status text not null check (status in ('pending', 'reversed', 'upheld')),
    created_at text not null,
    model_id text,
    removal_probability real,
    removed_at text,
    harm_type text not null,
    author_age_bucket text not null,
    decided_at text,
    reviewer text
)
"""
COLUMNS = (
    "appeal_id",
    "post_id",
    "author_id",
    "reason",
    "status",
    "created_at",
    "model_id",
    "removal_probability",
    "removed_at",
    "harm_type",
    "author_age_bucket",
    "decided_at",
    "reviewer",
)


def root() -> Path:
    return config.paths().appeals


def age_bucket(age_days) -> str:
    """The training slices' account-age buckets (training.datasets.account_age_bucket)."""
    if age_days is None or (isinstance(age_days, float) and not math.isfinite(age_days)):
        return "unknown"
    for bound, name in AGE_BUCKETS:
        if age_days < bound:
            return name
    return "unknown"


def predicted_harm_type(harm_type_scores, harm_types) -> str:
    """The harm type the model rated highest, or ``unknown`` (the student alone gives none)."""
    if not harm_type_scores:
        return "unknown"
    best = max(range(len(harm_type_scores)), key=lambda i: harm_type_scores[i])
    return harm_types[best] if best < len(harm_types) else "unknown"


class AppealStore:
    """The appeals table (SQLite, one writer process: the service) and the verdicts' labels."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = Path(directory or root())
        self.directory.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.directory / "appeals.sqlite", check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("pragma journal_mode=wal")
        self._db.execute(SCHEMA)
        self._db.commit()
        self._lock = threading.Lock()

    @property
    def labels_path(self) -> Path:
        return self.directory / "labels.jsonl"

    def get(self, appeal_id: int) -> dict | None:
        with self._lock:
            row = self._db.execute(
                "select * from appeals where appeal_id = ?", (appeal_id,)
            ).fetchone()
        return None if row is None else dict(row)

    def for_post(self, post_id: int) -> dict | None:
        with self._lock:
            row = self._db.execute("select * from appeals where post_id = ?", (post_id,)).fetchone()
        return None if row is None else dict(row)

    def list(self, status: str | None = None) -> list[dict]:
        query, args = "select * from appeals", ()
        if status:
            query, args = query + " where status = ?", (status,)
        with self._lock:
            rows = self._db.execute(query + " order by appeal_id", args).fetchall()
        return [dict(r) for r in rows]

    def create(self, record: dict) -> dict:
        """Insert a pending appeal; raises sqlite3.IntegrityError when the post has one."""
        row = {c: record.get(c) for c in COLUMNS if c != "appeal_id"}
        row |= {"status": "pending", "created_at": datetime.now(UTC).isoformat()}
        with self._lock:
            cursor = self._db.execute(
                f"insert into appeals ({', '.join(row)}) values ({', '.join('?' * len(row))})",
                tuple(row.values()),
            )
            self._db.commit()
            appeal_id = cursor.lastrowid
        return self.get(appeal_id)

    def decide(self, appeal_id: int, status: str, reviewer: str, at: str | None = None) -> dict:
        """Record the outcome of a pending appeal and its label line (a decided appeal is left
        as it is)."""
        decided_at = at or datetime.now(UTC).isoformat()
        with self._lock:
            changed = self._db.execute(
                "update appeals set status = ?, decided_at = ?, reviewer = ? "
                "where appeal_id = ? and status = 'pending'",
                (status, decided_at, reviewer, appeal_id),
            ).rowcount
            self._db.commit()
        appeal = self.get(appeal_id)
        if changed:
            self._write_label(appeal)
        return appeal

    def _write_label(self, appeal: dict) -> None:
        from vigil.contracts import HARM_TYPES

        upheld = appeal["status"] == "upheld"
        named = upheld and appeal["harm_type"] in HARM_TYPES
        line = {
            "post_id": appeal["post_id"],
            "is_harmful": upheld,
            "harm_types": [appeal["harm_type"]] if named else [],
            "labeled_at": appeal["decided_at"],
            "queue": QUEUE,
            "sampling_weight": 1.0,
            "model_id": appeal["model_id"],
            "appeal_id": appeal["appeal_id"],
        }
        data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.labels_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)  # one write on O_APPEND: readers never see half a line
        finally:
            os.close(fd)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def request_review(appeal: dict, review_root: Path | None = None) -> None:
    """Put the appealed post in the ``appeal`` review queue (requests/appeal.parquet)."""
    from vigil.review.files import FileReviewQueue

    queue = FileReviewQueue(QUEUE, budget=2**31 - 1, root=review_root)
    # Only the request is written: verdicts are applied by sync(), not on the appeal's request.
    queue._write_requests(
        [int(appeal["post_id"])], f"appeal {appeal['appeal_id']}: {appeal['reason'][:200]}", 1.0
    )


def pending_verdicts(store: AppealStore, review_root: Path | None = None) -> list[tuple[dict, str]]:
    """(pending appeal, outcome) for each pending appeal with a moderator verdict on its post
    given after the appeal was filed (read from the review queue's verdict files)."""
    import pandas as pd

    from vigil.review.files import read_verdicts

    pending = store.list("pending")
    if not pending:
        return []
    verdicts, _ = read_verdicts(Path(review_root or config.paths().review) / "verdicts")
    latest = {int(r.post_id): r for r in verdicts.itertuples(index=False)}
    out = []
    for appeal in pending:
        verdict = latest.get(int(appeal["post_id"]))
        if verdict is None or verdict.reviewed_at < pd.Timestamp(appeal["created_at"]):
            continue
        outcome = "upheld" if verdict.is_harmful else "reversed"
        out.append((appeal | {"reviewer": verdict.reviewer}, outcome))
    return out
