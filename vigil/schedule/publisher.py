"""The publisher: claims due posts and writes each as one ``post`` event into the raw log.

Exactly once, with any number of publishers and kills:
1. **claim**: one statement leases a batch of due posts to this publisher (``status = claimed``,
   ``lease_until``, ``attempts + 1``; PostgreSQL skips rows another publisher has locked with
   ``FOR UPDATE SKIP LOCKED``, SQLite serializes claims with ``BEGIN IMMEDIATE``). The event's time
   (``event_ts``) is fixed by the first claim and kept by every later one, so a retried post goes
   to the same hour file with the same line.
2. **check** each post with the moderator (held / review / allow).
3. **write** the allowed posts' lines to ``events/dt=D/hour=HH.jsonl`` (docs/contracts.md) with one
   ``O_APPEND`` write per file, then ``fsync``. The event id is ``sched-<id>``: a post claimed before
   (``attempts > 1``: its publisher died or lost its lease) is first looked up in its hour file, and
   not written again if its line is there.
4. **settle**: mark published (or held / review), only where this publisher still holds the lease.

A publisher killed between 3 and 4 leaves lines written and rows claimed; after the lease expires
another publisher reclaims them, finds the lines and only settles. Posts due while no publisher
ran are published on the next run and flagged ``late`` (published more than ``late_after`` after
``scheduled_at``).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vigil.schedule.moderation import POST_ID_BASE, DecisionLog, Moderator
from vigil.schedule.store import Store, now_ms

log = logging.getLogger(__name__)


def event_id(schedule_id: int) -> str:
    return f"sched-{int(schedule_id)}"


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def hour_file(raw_dir: Path, ms: int) -> Path:
    at = datetime.fromtimestamp(ms / 1000, UTC)
    return raw_dir / "events" / f"dt={at:%Y-%m-%d}" / f"hour={at:%H}.jsonl"


def event_line(row: dict[str, Any]) -> str:
    return json.dumps(
        {
            "event_id": event_id(row["id"]),
            "event_ts": iso_ms(int(row["event_ts"])),
            "user_id": int(row["user_id"]),
            "action": "post",
            "post_id": POST_ID_BASE + int(row["id"]),
            "target_user_id": None,
            "text": row["text"],
            "country": None,
        },
        separators=(",", ":"),
    )


def ids_in(path: Path) -> set[str]:
    """Event ids of the scheduled posts already in an hour file (a cut last line is skipped)."""
    found: set[str] = set()
    if not path.exists():
        return found
    with path.open("rb") as handle:
        for line in handle:
            if b'"sched-' not in line:
                continue
            try:
                found.add(json.loads(line)["event_id"])
            except (ValueError, KeyError):
                continue
    return found


def append_lines(path: Path, lines: list[str]) -> None:
    """One O_APPEND write, then fsync; a line cut by an earlier crash is closed first, so the
    new lines start on their own line (the cut one stays a bad line the ingester quarantines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        head = b""
        if size:
            with path.open("rb") as handle:
                handle.seek(size - 1)
                head = b"" if handle.read(1) == b"\n" else b"\n"
        os.write(fd, head + ("\n".join(lines) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


class Publisher:
    def __init__(
        self,
        store: Store,
        raw_dir: Path,
        moderator: Moderator,
        decisions: DecisionLog | None = None,
        batch_size: int = 500,
        lease_ms: int = 30_000,
        late_after_ms: int = 60_000,
        review_window_ms: int = 3_600_000,
        pause_after_write_s: float = 0.0,
        clock=now_ms,
    ) -> None:
        self.store, self.raw_dir, self.moderator = store, Path(raw_dir), moderator
        self.decisions = decisions
        self.batch_size, self.lease_ms = batch_size, lease_ms
        self.late_after_ms, self.review_window_ms = late_after_ms, review_window_ms
        # fault injection (tests): a pause between writing and settling widens the window a
        # SIGKILL must hit to leave lines written and rows unsettled
        self.pause_after_write_s = pause_after_write_s
        # milliseconds since the epoch; a simulated world passes its own clock
        self.clock = clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.totals: dict[str, int] = defaultdict(int)

    def _check(self, row: dict[str, Any], now: int) -> dict[str, Any]:
        """The moderation outcome of one claimed post (a moderator's 'allow' stands)."""
        check = self.moderator.check(row["text"], int(row["user_id"]))
        if self.decisions is not None:
            self.decisions.append(row["id"], row["text"], check, "schedule_publish")
        outcome = {"id": row["id"], "score": check.probability, "model_id": check.model_id}
        if row.get("verdict") == "allow" or check.decision == "allow":
            return outcome | {"status": "published"}
        if check.decision == "remove":
            return outcome | {"status": "held", "reason": check.reason}
        deadline = max(now, int(row["scheduled_at"])) + self.review_window_ms
        return outcome | {"status": "review", "reason": check.reason, "review_deadline": deadline}

    def publish_batch(self, rows: list[dict[str, Any]], now: int) -> dict[str, int]:
        outcomes = [self._check(row, now) for row in rows]
        by_file: dict[Path, list[dict]] = defaultdict(list)
        for row, outcome in zip(rows, outcomes, strict=True):
            if outcome["status"] == "published":
                by_file[hour_file(self.raw_dir, int(row["event_ts"]))].append(row)
        counts = defaultdict(int)
        for path, file_rows in by_file.items():
            retried = [r for r in file_rows if int(r["attempts"]) > 1]
            present = ids_in(path) if retried else set()
            lines = [event_line(r) for r in file_rows if event_id(r["id"]) not in present]
            counts["already_written"] += len(file_rows) - len(lines)
            if lines:
                append_lines(path, lines)
            counts["written"] += len(lines)
        if self.pause_after_write_s:
            time.sleep(self.pause_after_write_s)
        published_at = self.clock()
        for row, outcome in zip(rows, outcomes, strict=True):
            counts[outcome["status"]] += 1
            if outcome["status"] == "published":
                late = published_at - int(row["scheduled_at"]) > self.late_after_ms
                outcome |= {"published_at": published_at, "late": late}
                counts["late"] += int(late)
        counts["settled"] = self.store.settle(self.owner, outcomes)
        counts["lease_lost"] = len(outcomes) - counts["settled"]
        return dict(counts)

    def release_dead(self) -> int:
        """Leases of publishers on this host whose process is gone end now instead of at expiry.
        Only a process that no longer exists is released (it can write nothing more); owners on
        other hosts keep their leases until they expire."""
        host = socket.gethostname()
        released = 0
        for owner in self.store.claimed_owners():
            parts = owner.rsplit(":", 2)
            if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
                continue
            if parts[1] == str(os.getpid()):
                continue
            if not _alive(int(parts[1])):
                released += self.store.release(owner)
        return released

    def run_once(self) -> dict[str, int]:
        """Publish everything due now (several batches if needed); returns the counts."""
        counts: dict[str, int] = defaultdict(int)
        counts["review_expired"] = self.store.expire_reviews(self.clock())
        counts["released_from_dead"] = self.release_dead()
        while True:
            now = self.clock()
            rows = self.store.claim(self.owner, now, self.lease_ms, self.batch_size)
            if not rows:
                break
            counts["claimed"] += len(rows)
            for key, value in self.publish_batch(rows, now).items():
                counts[key] += value
            if len(rows) < self.batch_size:
                break
        for key, value in counts.items():
            self.totals[key] += value
        return dict(counts)

    def run(self, poll_s: float = 0.05, stop_after_s: float | None = None) -> dict[str, int]:
        """Publish until SIGTERM/SIGINT (or ``stop_after_s``), polling every ``poll_s`` seconds."""
        stop = {"now": False}

        def _stop(signum, frame) -> None:
            stop["now"] = True

        previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
        started = time.monotonic()
        last_report = started
        try:
            while not stop["now"]:
                counts = self.run_once()
                if time.monotonic() - last_report >= 60:
                    log.info("schedule publish: so far %s", _summary(self.totals))
                    last_report = time.monotonic()
                if stop_after_s is not None and time.monotonic() - started >= stop_after_s:
                    break
                if counts.get("claimed", 0) < self.batch_size:
                    time.sleep(poll_s)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        return dict(self.totals)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, another user's
    # a killed child not yet reaped by its parent is a zombie: gone for our purpose
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _summary(counts: dict[str, int]) -> str:
    keys = ("claimed", "written", "already_written", "published", "late", "held", "review")
    return ", ".join(f"{counts.get(k, 0)} {k.replace('_', ' ')}" for k in keys)
