"""Moderation before a scheduled post goes live: scored at creation (and edit) and at publish time.

A :class:`Moderator` turns a text into a :class:`Check`: ``allow``, ``review`` (the review band:
the post waits for a moderator's verdict until a deadline) or ``remove`` (held, never published,
the reason stored and shown to the author). :class:`ChampionModerator` runs the registered
champion's cascade (:class:`training.online.OnlineModel`, the same arithmetic as ``vigil score``)
on the text and the author: a scheduled post has no views yet (behavior features missing, as
``vigil serve`` scores a new post), the author's features come from the online store when it has
them (:class:`vigil.serving.online.OnlineReader`), else they are missing too. Without a champion, :func:`load` returns
:class:`NoModel`: it allows everything and says so once in the log and in each decision
(``model_id`` = ``none``).

Every check is one line of the decision log (the same fields and layout as ``vigil serve``'s:
``<data root>/decisions/dt=YYYY-MM-DD/decisions-schedule-<pid>.jsonl``), ``trigger`` =
``schedule_create`` / ``schedule_edit`` / ``schedule_publish``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from vigil import config
from vigil.errors import UserError

log = logging.getLogger(__name__)

# A scheduled post's id in the raw log: far above the simulator's ids, below 2**53 (JSON numbers
# and float64 keep it exact).
POST_ID_BASE = 1_000_000_000_000_000


@dataclass(frozen=True)
class Check:
    decision: str  # allow | review | remove
    probability: float | None
    model_id: str
    student: float | None = None
    routed_to_heavy: bool = False

    @property
    def reason(self) -> str | None:
        if self.decision == "remove":
            return (
                f"held: model {self.model_id} scored the text {self.probability:.3f}, above the "
                "removal threshold; edit the text or cancel the post"
            )
        if self.decision == "review":
            return "waiting for a moderator's verdict (the model's review band)"
        return None


class Moderator(Protocol):
    model_id: str

    def check(self, text: str, user_id: int | None = None) -> Check: ...


class NoModel:
    """No champion registered: allow, and say so (``model_id`` ``none``)."""

    model_id = "none"

    def check(self, text: str, user_id: int | None = None) -> Check:
        return Check("allow", None, self.model_id)


class ChampionModerator:
    def __init__(self, model, reader=None) -> None:
        self.model = model
        self.model_id = model.model_id
        self.reader = reader

    def features(self, user_id: int | None) -> dict:
        if self.reader is None or user_id is None:
            return {}
        try:
            return self.reader.read(post_id=None, user_id=int(user_id))
        except Exception as exc:  # noqa: BLE001 - an unreadable store must not stop moderation
            log.warning("schedule: author features unreadable (%s): scoring without them", exc)
            self.reader = None
            return {}

    def check(self, text: str, user_id: int | None = None) -> Check:
        out = self.model.score(text, self.features(user_id))
        return Check(
            out["decision"],
            out["probability"],
            self.model_id,
            out["student"],
            out["routed_to_heavy"],
        )


def load(heavy: str = "cascade") -> Moderator:
    """The champion's moderator, or :class:`NoModel` (logged) when there is no usable champion."""
    try:
        from training.online import OnlineModel

        model = OnlineModel(heavy=heavy)
    except UserError as exc:
        log.warning("schedule: no model to check posts (%s): every post is allowed", exc)
        return NoModel()
    return ChampionModerator(model, _reader())


def _reader():
    """The online store's reader for author features, or None (logged) when there is none."""
    try:
        from vigil.serving.online import OnlineReader

        return OnlineReader()
    except Exception as exc:  # noqa: BLE001 - no feature store yet: score without author features
        log.warning("schedule: no online store for author features (%s)", exc)
        return None


class DecisionLog:
    """Appends one JSON line per check (one ``write`` on an ``O_APPEND`` file)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or config.paths().home / "decisions"
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._day: str | None = None
        self.written = 0

    def append(self, schedule_id: int, text: str, check: Check, trigger: str) -> None:
        now = datetime.now(UTC)
        record = {
            "post_id": POST_ID_BASE + int(schedule_id),
            "decided_at": now.isoformat(),
            "model_id": check.model_id,
            "student": check.student,
            "routed_to_heavy": check.routed_to_heavy,
            "probability": check.probability,
            "decision": check.decision,
            "trigger": trigger,
            "content_hash": hashlib.sha256(text.encode()).hexdigest(),
        }
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        day = now.date().isoformat()
        with self._lock:
            if self._fd is None or day != self._day:
                self.close_locked()
                folder = self.directory / f"dt={day}"
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / f"decisions-schedule-{os.getpid()}.jsonl"
                self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                self._day = day
            os.write(self._fd, line)
            self.written += 1

    def close_locked(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        with self._lock:
            self.close_locked()
