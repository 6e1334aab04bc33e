"""State of the stream processor: per-user active-minute bitmaps and creator tallies.

One record per (user, UTC day) holds a 1440-bit bitmap of the minutes the user was active plus the
tallies the user *received* that day (reports, dislikes, blocks, mutes, shares, views), the posts
they authored and the countries they logged in from. Windowed features are sums over day records,
so a 30-day window is "the current UTC day and the 29 before it" -- exactly the window of the
batch row ``user_activity``/``creator_context`` whose ``event_timestamp`` is the next midnight.

Durability: the whole state, the set of event_ids seen within the lateness horizon, the counters
and the input position live in one SQLite file (``stream/state.sqlite``). A checkpoint writes what
changed plus the input position in ONE transaction, so after a crash (kill -9 at any point) the
restarted processor resumes from a position that matches its state exactly: every event takes
effect once. The in-memory copy is a write-back cache bounded by a memory budget; beyond it, user
records are evicted after a checkpoint and read back from SQLite on their next event.

Memory (measured by ``python -m bench stream``, figures in docs/benchmarks.md): most of a user's
state is the day lists and their 1440-bit ints. Seen event_ids in the lateness horizon are kept as
16-byte digests in sorted arrays per day (:mod:`vigil.stream.seen`).
Default budget ``VIGIL_STREAM_MEMORY_BUDGET_MB=2048``: seen ids may use a quarter of it, beyond
that duplicates are looked up in the checkpoint's (day, digest) index; users fill the rest, and
the least recently used records beyond it live only in SQLite.

Lines are applied a batch at a time (:meth:`StreamState.apply_lines`): parsed and validated by
:mod:`vigil.stream.columns` into columns, then applied by :func:`vigil.stream.apply.apply_bulk`: id codes, the
seen check, the lateness bound and the state updates per batch, grouped by (user, day), with the
same result as applying the events one by one in order (:func:`vigil.stream.apply.apply_reference`).

The day record's layout and the features over it: :mod:`vigil.stream.features`; the line
validator: :mod:`vigil.stream.events`.
"""

from __future__ import annotations

import gc
import json
import logging
import sqlite3
import sys
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path

import numpy as np

from vigil.stream.apply import apply_bulk, apply_reference
from vigil.stream.columns import parse_columns
from vigil.stream.events import DAY_MS, NO_LIMIT_US, day_of, ms_to_datetime
from vigil.stream.features import (
    BITMAP_BYTES,
    COUNTRIES,
    WINDOW_DAYS,
    countries_text,
    features_of,
)
from vigil.stream.seen import (
    DIGEST_BYTES,
    DIGEST_VERSION,
    SeenIds,
    as_bytes,
    blocks_to_rows,
    count_seen,
    digest,
    digest_of,
    load_seen,
    write_seen_blocks,
)

log = logging.getLogger(__name__)


_SCHEMA = """
create table if not exists user_day (
    user_id integer not null, day integer not null, minutes blob not null,
    reports integer not null, dislikes integer not null, blocks integer not null,
    mutes integer not null, shares integer not null, views integer not null,
    posts integer not null, countries text,
    primary key (user_id, day)) without rowid;
create table if not exists user_total (user_id integer primary key, posts_total integer not null);
create table if not exists seen (day integer not null, digest blob not null,
    primary key (day, digest)) without rowid;
create table if not exists seen_block (day integer not null, seq integer not null,
    digests blob not null, primary key (day, seq)) without rowid;
create table if not exists offsets (source text primary key, position text not null);
create table if not exists meta (key text primary key, value text not null);
create table if not exists push_pending (user_id integer primary key);
"""

COUNTER_NAMES = ("read", "applied", "bad", "duplicates", "too_late")
# Memory of one remembered event_id: a 16-byte digest in a sorted array, plus the set of recent
# ones (bounded by SeenIds.compact); seen ids may use up to a quarter of the memory budget,
# beyond it they are looked up in the checkpoint's index instead.
SEEN_ID_BYTES = 24


class UserState:
    """One user's day records (day -> list, see module doc) and all-time post count."""

    __slots__ = ("days", "posts_total")

    def __init__(self) -> None:
        self.days: dict[int, list] = {}
        self.posts_total = 0


def _deep_size(uid: int, u: UserState) -> int:
    """Bytes one cached user costs: object, dict, day lists, bitmaps, country sets, cache slot."""
    size = sys.getsizeof(u) + sys.getsizeof(u.days) + sys.getsizeof(uid) + 2 * 8 + 24
    for rec in u.days.values():  # day keys are shared ints
        size += sys.getsizeof(rec) + sys.getsizeof(rec[0])
        size += sum(sys.getsizeof(v) for v in rec[1:8] if v > 256)  # small ints are shared
        if rec[COUNTRIES] and len(rec[COUNTRIES]) > 2:  # one code: an interned, shared str
            size += sys.getsizeof(rec[COUNTRIES])
    return size


class StreamState:
    """The processor's state with its SQLite checkpoint.

    ``owns(user_id)`` restricts which users this processor keeps (one consumer of a partitioned
    group keeps the users hashed to its partitions); None keeps everyone.
    """

    def __init__(
        self,
        db_path: Path,
        *,
        lateness_ms: int = 2 * DAY_MS,
        memory_budget_bytes: int = 2 << 30,
        owns: Callable[[int], bool] | None = None,
        track_push: bool = False,
    ) -> None:
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.lateness_ms = int(lateness_ms)
        self.memory_budget_bytes = int(memory_budget_bytes)
        self.owns = owns
        self.track_push = track_push
        self.con = sqlite3.connect(self.db_path, isolation_level=None)
        self.con.execute("pragma journal_mode=wal")
        self.con.execute("pragma synchronous=full")  # a commit survives power loss, not only kill
        self.con.executescript(_SCHEMA)

        self.users: OrderedDict[int, UserState] = OrderedDict()
        self.complete = True  # every user in the checkpoint is also in self.users
        self.bytes_per_user = 1200.0  # refined from samples at every checkpoint
        self.seen = SeenIds()
        self._day_objs: dict[int, int] = {}
        self.seen_on_disk = False  # True: self.seen holds only ids since the last checkpoint
        self.new_seen: list[tuple[int, bytes]] = []  # applied by the reference loop
        self.new_seen_codes: list[tuple] = []  # (days, S16 codes) applied by the bulk path
        self.seen_blocks: dict[int, int] = {}  # blocks per day in the checkpoint
        self.digest_version = DIGEST_VERSION
        self.dirty: set[tuple[int, int]] = set()
        self.dirty_totals: set[int] = set()
        self.counters = Counter({name: 0 for name in COUNTER_NAMES})
        self.bad_reasons: Counter[str] = Counter()
        self.watermark_ms = -(1 << 62)  # max event_ts applied so far
        self.wm_day = -(1 << 40)
        self.positions: dict[str, str] = {}
        self.expired_through = -(1 << 40)  # days below this were deleted in memory, not yet on disk
        self._deleted_before: tuple[int, int] | None = None  # horizon of the last disk delete
        # arrival times of the events applied since the last push: [arrival (s), events] runs
        self.arrivals: list[list] = []
        self.pushed: list[int] = []  # users written to the online store: cleared at the checkpoint
        # re-score triggers (vigil.stream.rescore), None when off: on_applied(events) gets each
        # batch's applied events in order; on_checkpoint(con) writes inside the checkpoint's
        # transaction, so trigger state and requests commit with the events that caused them
        self.on_applied: Callable[[list[tuple]], None] | None = None
        self.on_checkpoint: Callable[[sqlite3.Connection], None] | None = None
        self._load()

    # -- loading ------------------------------------------------------------------------------
    def _load(self) -> None:
        con = self.con
        meta = dict(con.execute("select key, value from meta"))
        if "watermark_ms" in meta:
            self.watermark_ms = int(meta["watermark_ms"])
            self.wm_day = self.watermark_ms // DAY_MS
            self.counters.update(json.loads(meta["counters"]))
            self.bad_reasons.update(json.loads(meta["bad_reasons"]))
        self.positions = dict(con.execute("select source, position from offsets"))
        if "digest_version" in meta:
            self.digest_version = int(meta["digest_version"])
        elif "watermark_ms" in meta or con.execute("select 1 from seen limit 1").fetchone():
            self.digest_version = 1  # written before codes: every id as its BLAKE2b digest
        _migrate_seen(con)
        seen_from = self._seen_from_day()
        if count_seen(con, seen_from) * SEEN_ID_BYTES > self.memory_budget_bytes // 4:
            self.seen_on_disk = True
            blocks_to_rows(con)
        else:
            self.seen_blocks = load_seen(con, self.seen, seen_from)
        max_users = self._max_users()
        keep_from = self._keep_from_day()
        for uid, total in con.execute("select user_id, posts_total from user_total"):
            if len(self.users) >= max_users:
                self.complete = False
                break
            self.users.setdefault(uid, UserState()).posts_total = total
        rows = con.execute("select * from user_day where day >= ?", (keep_from,))
        for row in rows if self.complete else ():
            u = self.users.get(row[0])
            if u is None:
                if len(self.users) >= max_users:
                    self.complete = False
                    continue
                u = self.users[row[0]] = UserState()
            u.days[self._day_objs.setdefault(row[1], row[1])] = _rec_from_row(row)
        if not self.complete:  # drop the partly loaded users: they load whole on demand
            self.users.clear()
        log.info(
            "stream state %s: %d users loaded%s, %d seen ids, watermark %s",
            self.db_path,
            len(self.users),
            "" if self.complete else " (lazily loaded: over the memory budget)",
            len(self.seen),
            self.watermark_iso(),
        )

    def _max_users(self) -> int:
        users_budget = self.memory_budget_bytes - len(self.seen) * SEEN_ID_BYTES
        return max(1, int(users_budget / self.bytes_per_user))

    def _keep_from_day(self) -> int:
        """Oldest day still needed: in the window of the current day, or still open to late events."""
        return min(
            self.wm_day - (WINDOW_DAYS - 1), (self.watermark_ms - self.lateness_ms) // DAY_MS
        )

    def _seen_from_day(self) -> int:
        # an event older than watermark - lateness is rejected before dedup, so older ids can go
        return (self.watermark_ms - self.lateness_ms) // DAY_MS

    def _user(self, uid: int) -> UserState:
        u = self.users.get(uid)
        if u is not None:
            if not self.complete:
                self.users.move_to_end(uid)
            return u
        u = UserState()
        if not self.complete:
            keep_from = self._keep_from_day()
            for row in self.con.execute(
                "select * from user_day where user_id = ? and day >= ?", (uid, keep_from)
            ):
                u.days[self._day_objs.setdefault(row[1], row[1])] = _rec_from_row(row)
            total = self.con.execute(
                "select posts_total from user_total where user_id = ?", (uid,)
            ).fetchone()
            if total:
                u.posts_total = total[0]
        self.users[uid] = u
        return u

    def watermark_iso(self) -> str | None:
        if self.watermark_ms < 0:
            return None
        return ms_to_datetime(self.watermark_ms).isoformat(timespec="milliseconds")

    # -- applying events ----------------------------------------------------------------------
    def apply_line(self, raw: bytes, limit_us: int = NO_LIMIT_US, arrival: float = 0.0) -> None:
        """Validate one raw line and apply it (or count why not)."""
        self.apply_lines([raw], limit_us, arrival)

    def apply_lines(
        self,
        lines: list[bytes],
        limits: int | list[int] | np.ndarray = NO_LIMIT_US,
        arrivals: float | list[float] | np.ndarray = 0.0,
    ) -> None:
        """Validate raw lines and apply them in order (or count why not).

        ``limits`` (latest acceptable event_ts, µs) and ``arrivals`` (arrival time, s) are one
        value for all lines or one per line.
        """
        collect = gc.isenabled()
        gc.disable()  # a batch allocates many objects and no cycles: no collections meanwhile
        try:
            self._apply_lines(lines, limits, arrivals)
        finally:
            if collect:
                gc.enable()

    def _apply_lines(self, lines, limits, arrivals) -> None:
        counters = self.counters
        counters["read"] += len(lines)
        cols, bad, kept = parse_columns(lines, limits)
        if bad:
            counters["bad"] += len(bad)
            self.bad_reasons.update(bad)
        if not isinstance(arrivals, int | float):
            arrivals = np.asarray(arrivals, dtype=np.float64)
            if kept is not None:
                arrivals = arrivals[kept]
        if not self.seen_on_disk:
            apply_bulk(self, cols, arrivals)
            return
        # over the budget, ids are looked up in the checkpoint, one event at a time
        events = cols.tuples()
        dgs = [digest_of(ev[0], self.digest_version) for ev in events]
        per_event = (
            arrivals.tolist() if isinstance(arrivals, np.ndarray) else [arrivals] * len(events)
        )
        hits = self.seen.hits([ev[1] // DAY_MS for ev in events], dgs)
        self.apply_reference(events, dgs, hits, per_event)

    def apply_event(self, ev: tuple, arrival: float = 0.0) -> None:
        """Apply one validated event (see :func:`vigil.stream.batch.parse_lines`)."""
        dg = digest_of(ev[0], self.digest_version)
        self.apply_reference([ev], [dg], [self.seen.contains(ev[1] // DAY_MS, dg)], [arrival])

    def apply_reference(
        self, events: list[tuple], digests: list[bytes], hits: list[bool], arrivals: list[float]
    ) -> None:
        """Apply events one at a time (:func:`vigil.stream.apply.apply_reference`), then hand
        the applied ones, in order, to ``on_applied``."""
        applied = apply_reference(self, events, digests, hits, arrivals)
        if self.on_applied is not None and applied:
            self.on_applied(applied)

    def _advance_day(self, day: int) -> None:
        """The watermark entered a new day: forget day records and seen ids out of the horizon."""
        self.wm_day = day
        keep_from = self._keep_from_day()
        if keep_from > self.expired_through:
            for u in self.users.values():
                if u.days and min(u.days) < keep_from:
                    for d in [d for d in u.days if d < keep_from]:
                        del u.days[d]
            self.expired_through = keep_from
        self.seen.drop_before(self._seen_from_day())

    # -- checkpoint ---------------------------------------------------------------------------
    def checkpoint(self, positions: dict[str, str] | None = None) -> set[int]:
        """Write what changed, the counters and the input position in one transaction.

        Returns the users whose features changed (to push).
        """
        if positions:
            self.positions.update(positions)
        con = self.con
        keep_from = self._keep_from_day()
        seen_from = self._seen_from_day()
        rows = []
        changed_users: set[int] = set()
        for uid, day in sorted(self.dirty):  # in key order: SQLite's B-tree inserts stay local
            changed_users.add(uid)
            rec = self.users[uid].days.get(day)
            if rec is None:  # expired since it changed
                continue
            rows.append(
                (
                    uid,
                    day,
                    rec[0].to_bytes(BITMAP_BYTES, "little"),
                    *rec[1:8],
                    countries_text(rec[COUNTRIES]),
                )
            )
        totals = [(uid, self.users[uid].posts_total) for uid in sorted(self.dirty_totals)]
        new_seen = self._new_seen_by_day(seen_from)
        con.execute("begin immediate")
        try:
            con.executemany("insert or replace into user_day values (?,?,?,?,?,?,?,?,?,?,?)", rows)
            con.executemany("insert or replace into user_total values (?,?)", totals)
            if self.seen_on_disk:  # the indexed rows answer the per-event lookups
                con.executemany(
                    "insert or ignore into seen values (?,?)",
                    [(d, c) for d, codes in new_seen.items() for c in as_bytes(codes)],
                )
            else:
                write_seen_blocks(con, self.seen, new_seen, self.seen_blocks)
            if (keep_from, seen_from) != self._deleted_before:
                # user_day's key is (user_id, day): this delete scans the table, so only when
                # the horizon moved (a new day), not at every checkpoint
                con.execute("delete from user_day where day < ?", (keep_from,))
                con.execute("delete from seen where day < ?", (seen_from,))
                con.execute("delete from seen_block where day < ?", (seen_from,))
                for d in [d for d in self.seen_blocks if d < seen_from]:
                    del self.seen_blocks[d]
            con.executemany(
                "insert or replace into offsets values (?,?)", list(self.positions.items())
            )
            meta = {
                "watermark_ms": str(self.watermark_ms),
                "counters": json.dumps(dict(self.counters), sort_keys=True),
                "bad_reasons": json.dumps(dict(self.bad_reasons), sort_keys=True),
                "lateness_ms": str(self.lateness_ms),
                "digest_version": str(self.digest_version),
            }
            con.executemany("insert or replace into meta values (?,?)", list(meta.items()))
            if self.track_push:
                con.executemany(
                    "delete from push_pending where user_id = ?", [(u,) for u in self.pushed]
                )
                con.executemany(
                    "insert or ignore into push_pending values (?)", [(u,) for u in changed_users]
                )
            if self.on_checkpoint is not None:
                self.on_checkpoint(con)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        self._deleted_before = (keep_from, seen_from)
        self.dirty.clear()
        self.dirty_totals.clear()
        self.new_seen.clear()
        self.new_seen_codes.clear()
        self.pushed.clear()
        self._evict()
        return changed_users

    def _new_seen_by_day(self, seen_from: int) -> dict:
        """The codes applied since the last checkpoint, per day in the horizon (each applied
        event added its code once: they are distinct)."""
        days = [np.asarray([d for d, _ in self.new_seen], dtype=np.int64)]
        codes = [np.array([c for _, c in self.new_seen], dtype=f"S{DIGEST_BYTES}")]
        for d, c in self.new_seen_codes:
            days.append(d)
            codes.append(c)
        all_days, all_codes = np.concatenate(days), np.concatenate(codes)
        return {
            day: all_codes[all_days == day]
            for day in np.unique(all_days).tolist()
            if day >= seen_from
        }

    def _evict(self) -> None:
        """After a checkpoint everything in memory is clean: trim it to the memory budget."""
        if self.seen_on_disk or len(self.seen) * SEEN_ID_BYTES > self.memory_budget_bytes // 4:
            if not self.seen_on_disk:
                log.info(
                    "stream state: %d seen event ids exceed a quarter of the memory budget: "
                    "duplicates are now looked up in %s",
                    len(self.seen),
                    self.db_path,
                )
                blocks_to_rows(self.con)
                self.seen_blocks.clear()
            self.seen_on_disk = True
            self.seen.clear()  # all committed: the checkpoint's index answers from now on
        else:
            self.seen.compact()
        n = len(self.users)
        if n == 0:
            return
        step = max(1, n // 64)
        sample = [kv for i, kv in enumerate(self.users.items()) if i % step == 0][:64]
        self.bytes_per_user = sum(_deep_size(uid, u) for uid, u in sample) / len(sample)
        max_users = self._max_users()
        if n > max_users:
            for _ in range(n - max_users):
                self.users.popitem(last=False)  # least recently used first
            if self.complete:
                log.info(
                    "stream state over its memory budget (%d users x %.0f B > %d MB): "
                    "user records now spill to %s",
                    n,
                    self.bytes_per_user,
                    self.memory_budget_bytes >> 20,
                    self.db_path,
                )
            self.complete = False

    def pending_push(self) -> list[int]:
        return [r[0] for r in self.con.execute("select user_id from push_pending")]

    def clear_pushed(self, users: Iterable[int]) -> None:
        self.con.execute("begin immediate")
        self.con.executemany("delete from push_pending where user_id = ?", [(u,) for u in users])
        self.con.execute("commit")

    def features_for(self, uids: Iterable[int], last_day: int | None = None) -> list[dict]:
        """Features of the given users for the window ending with ``last_day`` (default: today)."""
        last_day = self.wm_day if last_day is None else last_day
        out = []
        for uid in uids:
            u = self._user(uid)
            row = {"user_id": uid}
            row.update(features_of(u.days, u.posts_total, last_day))
            out.append(row)
        return out

    def memory_bytes(self) -> dict[str, float]:
        """Measured memory of the cached state (deep size of every user, and of the seen ids)."""
        users = sum(_deep_size(uid, u) for uid, u in self.users.items())
        users += sys.getsizeof(self.users)
        return {
            "users": len(self.users),
            "user_bytes": users,
            "seen_ids": len(self.seen),
            "seen_bytes": self.seen.nbytes(),
        }

    def close(self) -> None:
        self.con.close()


def _migrate_seen(con: sqlite3.Connection) -> None:
    """Checkpoints written before ids were kept as digests hold (day, event_id text): convert
    them in place, in one transaction, so a restart keeps its duplicates exact."""
    columns = [r[1] for r in con.execute("pragma table_info(seen)")]
    if "event_id" not in columns:
        return
    rows = con.execute("select day, event_id from seen").fetchall()
    con.execute("begin immediate")
    try:
        con.execute("drop table seen")
        con.execute(
            "create table seen (day integer not null, digest blob not null, "
            "primary key (day, digest)) without rowid"
        )
        con.executemany(
            "insert or ignore into seen values (?,?)", [(d, digest(e)) for d, e in rows]
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    log.info("stream state: %d seen event ids converted to digests", len(rows))


def _rec_from_row(row: tuple) -> list:
    return [
        int.from_bytes(row[2], "little"),
        *row[3:10],
        sys.intern(row[10].replace(",", "")) if row[10] else None,
    ]


def read_features(db_path: Path, last_day: date | int) -> dict[int, dict[str, int]]:
    """Every user's features from a checkpoint file, for the window ending with ``last_day``.

    Users with no record in the window (and no post ever) are absent: all their counts are 0.
    """
    if isinstance(last_day, date):
        last_day = day_of(last_day)
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        users: dict[int, UserState] = {}
        for uid, total in con.execute("select user_id, posts_total from user_total"):
            users.setdefault(uid, UserState()).posts_total = total
        for row in con.execute(
            "select * from user_day where day between ? and ?",
            (last_day - WINDOW_DAYS + 1, last_day),
        ):
            users.setdefault(row[0], UserState()).days[row[1]] = _rec_from_row(row)
    finally:
        con.close()
    return {uid: features_of(u.days, u.posts_total, last_day) for uid, u in users.items()}


def read_status(db_path: Path) -> dict:
    """Counters, watermark and input positions of a checkpoint file."""
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        meta = dict(con.execute("select key, value from meta"))
        positions = dict(con.execute("select source, position from offsets"))
        n_users = con.execute("select count(distinct user_id) from user_day").fetchone()[0]
    finally:
        con.close()
    wm = int(meta["watermark_ms"]) if "watermark_ms" in meta else None
    return {
        "watermark": ms_to_datetime(wm).isoformat(timespec="milliseconds") if wm else None,
        "counters": json.loads(meta.get("counters", "{}")),
        "bad_reasons": json.loads(meta.get("bad_reasons", "{}")),
        "users_in_window": n_users,
        "sources": len(positions),
        "checked_at": time.time(),
    }
