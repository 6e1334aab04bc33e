"""Re-score triggers in the stream processor (issue 22): ``vigil stream --rescore URL`` or
``--triggers [FILE]``.

Each applied event (validated, not a duplicate, not too late) that acts on a post -- a report, a
view, a reply -- is counted by :class:`vigil.stream.triggers.Triggers`; a reply is negative when
its text matches the disgust pattern, the same whole-word match dbt uses for ``negative_replies``
(``dbt/macros/vars.sql``, ``disgust_pattern``; ``test_disgust_pattern_is_dbts`` holds them equal).

Guarantee: at-least-once, never lost. The per-post trigger counters and the requests they emit
are written in the checkpoint's transaction (tables ``trigger_post`` and ``rescore_outbox``), so
they always match the events the checkpoint applied: after a kill -9 the processor resumes with
counters that count exactly the applied events, and every request of an applied event is either
in the outbox or already delivered. Requests are delivered after the commit by a thread (the
stream never waits for the service), and removed from the outbox at a later checkpoint once
delivered; a crash in between delivers them again at the restart. So a request may repeat, never
go missing. A service that fails (connection refused, 5xx) leaves its requests in the outbox;
they are retried after each later checkpoint and at exit, and the failures are logged with counts.
A 4xx answer (e.g. a post the service does not know) counts as delivered: retrying cannot help.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import sqlite3
import threading
import urllib.error
import urllib.request
from pathlib import Path

from vigil.stream.hooks import chain_hooks
from vigil.stream.triggers import Triggers, _Post

log = logging.getLogger(__name__)

# dbt's disgust_pattern() (dbt/macros/vars.sql), matched against the lowercased reply text
DISGUST_PATTERN = (
    r"(^|[^a-z])(gross|grossed|disgusting|disgusted|disgust|ew|eww|ewww|vile|revolting|repulsive|"
    r"repugnant|nauseating|nauseous|sickening|yuck|yuk|icky|foul|creepy|horrid|abhorrent|appalling|"
    r"barf)([^a-z]|$)"
)
_disgust = re.compile(DISGUST_PATTERN).search
_COUNTED = frozenset(("report", "view", "reply"))

_SCHEMA = """
create table if not exists trigger_post (post_id integer primary key, reports integer not null,
    views integer not null, negative_replies integer not null, last_sent_ms integer,
    pending text not null);
create table if not exists rescore_outbox (seq integer primary key autoincrement,
    post_id integer not null, at_ms integer not null, trigger text not null);
"""


def is_negative_reply(text: str | None) -> bool:
    return text is not None and _disgust(text.lower()) is not None


class RescoreFeed:
    """Trigger state and the outbox of re-score requests, kept in the stream's checkpoint file.

    Install with :meth:`attach`; after each checkpoint call :meth:`committed` to hand the new
    requests to the :class:`Deliverer`.
    """

    def __init__(
        self, con: sqlite3.Connection, triggers: Triggers | None = None, creation: bool = False
    ) -> None:
        self.con = con
        self.triggers = triggers or Triggers()
        self.creation = creation  # a "creation" request at each post's creation event
        con.executescript(_SCHEMA)
        for pid, reports, views, negative, last_sent, pending in con.execute(
            "select * from trigger_post"
        ):
            self.triggers.posts[pid] = _Post(
                reports, views, negative, last_sent, json.loads(pending)
            )
        self.dirty: set[int] = set()
        self.new: list[tuple[int, int, str]] = []  # (post_id, at_ms, trigger) since the checkpoint
        self.handed = 0  # highest outbox seq handed to the deliverer
        self.done: list[int] = []  # delivered seqs, deleted at the next checkpoint
        self.state = None
        self.known_ms = -(1 << 62)  # the latest event time applied so far
        log.info("re-score triggers: %d posts' counters loaded", len(self.triggers.posts))

    def attach(self, state) -> None:
        self.state = state
        self.known_ms = state.watermark_ms  # the restored watermark after a restart
        chain_hooks(state, self.observe, self.write)

    def observe(self, events: list[tuple]) -> None:
        """Count applied events ``(event_id, ts_ms, user_id, action, target, country, post_id,
        text)`` in arrival order. Each is counted at the time the stream knew of it: its event
        time, or, for a late event, the latest event time applied before it (a view stamped a day
        ago that arrives now cannot have triggered a re-score a day ago; stamping the request with
        its own time would let a replay or a grader act before the stream could have)."""
        observe, dirty, new = self.triggers.observe, self.dirty, self.new
        known = self.known_ms
        for ev in events:
            known = max(known, ev[1])
            post_id = ev[6]
            if post_id is None:
                continue
            if ev[3] == "post" and self.creation:  # not a trigger: no counter, no debounce
                new.append((post_id, known, "creation"))
                continue
            if ev[3] not in _COUNTED:
                continue
            dirty.add(post_id)
            for r in observe(post_id, ev[3], known, ev[3] == "reply" and is_negative_reply(ev[7])):
                new.append((r.post_id, r.at_ms, r.trigger))
        self.known_ms = known

    def write(self, con: sqlite3.Connection) -> None:
        """Inside the checkpoint's transaction: merged triggers due by the watermark, the changed
        posts' counters, the new requests, and the removal of delivered ones."""
        for r in self.triggers.flush(self.state.watermark_ms):
            self.dirty.add(r.post_id)
            self.new.append((r.post_id, r.at_ms, r.trigger))
        posts = self.triggers.posts
        rows = []
        for pid in sorted(self.dirty):
            p = posts[pid]
            rows.append(
                (pid, p.reports, p.views, p.negative_replies, p.last_sent_ms, json.dumps(p.pending))
            )
        con.executemany("insert or replace into trigger_post values (?,?,?,?,?,?)", rows)
        con.executemany(
            "insert into rescore_outbox (post_id, at_ms, trigger) values (?,?,?)", self.new
        )
        con.executemany("delete from rescore_outbox where seq = ?", [(s,) for s in self.done])
        self.dirty.clear()
        self.new.clear()
        self.done.clear()

    def committed(self) -> list[tuple[int, int, int, str]]:
        """Outbox rows not yet handed to the deliverer (all of them after a restart)."""
        rows = self.con.execute(
            "select seq, post_id, at_ms, trigger from rescore_outbox where seq > ? order by seq",
            (self.handed,),
        ).fetchall()
        if rows:
            self.handed = rows[-1][0]
        return rows

    def delivered(self, seqs: list[int]) -> None:
        self.done.extend(seqs)

    def clear_delivered(self) -> None:
        """At exit, after the last checkpoint: remove what was delivered since."""
        if self.done:
            self.con.execute("begin immediate")
            self.con.executemany(
                "delete from rescore_outbox where seq = ?", [(s,) for s in self.done]
            )
            self.con.execute("commit")
            self.done.clear()


class Deliverer:
    """Sends outbox rows from a thread: POST /v1/score to ``url`` (with ``token``), or appends
    JSON lines to ``path``. Rows that failed are kept and tried again with the next batch."""

    def __init__(
        self,
        url: str | None = None,
        path: Path | None = None,
        token: str | None = None,
        wait: bool = False,
    ):
        if (url is None) == (path is None):
            raise ValueError("give a service URL or a file")
        self.url = url.rstrip("/") if url else None
        self.path = Path(path) if path else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.token = token
        self.wait = wait  # submit returns when its rows have been tried (replays)
        self.counts = {"delivered": 0, "rejected": 0, "failed": 0}
        self._done: list[int] = []
        self._retry: list[tuple] = []
        self._lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="rescore-deliver", daemon=True)
        self._thread.start()

    def submit(self, rows: list[tuple]) -> None:
        self._queue.put(rows)
        if self.wait:
            self._queue.join()

    def take_done(self) -> list[int]:
        with self._lock:
            done, self._done = self._done, []
        return done

    def close(self) -> list[int]:
        """Deliver what is queued (one more try for failed rows); the seqs delivered since the
        last :meth:`take_done`."""
        self._queue.put([])
        self._queue.put(None)
        self._thread.join()
        return self.take_done()

    def _run(self) -> None:
        while True:
            rows = self._queue.get()
            try:
                if rows is None:
                    return
                self._deliver(rows)
            finally:
                self._queue.task_done()

    def _deliver(self, rows: list[tuple]) -> None:
        batch, self._retry = self._retry + rows, []
        if not batch:
            return
        try:
            done = self._write(batch) if self.path else self._post(batch)
        except Exception:  # never let the thread die: keep the rows for the next try
            log.exception("re-score delivery failed; %d requests kept for retry", len(batch))
            done = []
        sent = set(done)
        self._retry = [r for r in batch if r[0] not in sent]
        with self._lock:
            self._done.extend(done)

    def _write(self, batch: list[tuple]) -> list[int]:
        with self.path.open("a", encoding="utf-8") as f:
            for _seq, post_id, at_ms, trigger in batch:
                f.write(json.dumps({"post_id": post_id, "at_ms": at_ms, "trigger": trigger}) + "\n")
        self.counts["delivered"] += len(batch)
        return [r[0] for r in batch]

    def _post(self, batch: list[tuple]) -> list[int]:
        done = []
        for i, (seq, post_id, at_ms, trigger) in enumerate(batch):
            # the trigger's event time: the decision's event_at, the spare calls' day
            body = json.dumps({"post_id": post_id, "trigger": trigger, "at_ms": at_ms}).encode()
            req = urllib.request.Request(f"{self.url}/v1/score", data=body, method="POST")
            req.add_header("Content-Type", "application/json")
            if self.token:
                req.add_header("Authorization", f"Bearer {self.token}")
            try:
                with urllib.request.urlopen(req, timeout=10) as response:
                    response.read()
                self.counts["delivered"] += 1
            except urllib.error.HTTPError as exc:
                if exc.code >= 500:
                    return self._failed(done, batch, i, f"HTTP {exc.code}")
                self.counts["rejected"] += 1  # 4xx: the service refused this request for good
            except (urllib.error.URLError, OSError) as exc:
                return self._failed(done, batch, i, str(exc))
            done.append(seq)
        log.info("re-score: %d requests sent; totals %s", len(batch), self.counts)
        return done

    def _failed(self, done: list[int], batch: list[tuple], i: int, why: str) -> list[int]:
        self.counts["failed"] += len(batch) - i
        log.warning(
            "re-score service %s failed (%s): %d requests kept for retry; totals %s",
            self.url,
            why,
            len(batch) - i,
            self.counts,
        )
        return done
