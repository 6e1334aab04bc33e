"""Where ``vigil stream`` reads events from: the raw hour files, or Redis Streams.

files  tail ``<raw>/events/dt=*/hour=*.jsonl`` as files appear and grow; the input position is
       (file, byte offset) per file. Files are read in name order, each to its last complete
       line, so a replay of the same files is deterministic.
redis  Redis Streams at ``vigil.config.redis_url()``. Events are spread over ``partitions``
       streams ``<key>:<p>`` by a hash of the user; consumer k of M reads partitions p with
       p % M == k through XREADGROUP in the consumer group ``vigil-stream``.

A source's ``pump(state, max_lines)`` applies new lines to the state and records its input
position in ``state.positions`` (committed with the state at the next checkpoint); ``committed()``
is called once that checkpoint is durable.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_right
from collections import deque
from itertools import chain
from pathlib import Path

import numpy as np

from vigil import config
from vigil.errors import UserError
from vigil.stream.events import NO_LIMIT_US, file_limit_us
from vigil.stream.state import StreamState

GROUP = "vigil-stream"
DEFAULT_STREAM_KEY = "vigil:events"
DEFAULT_PARTITIONS = 8
CHUNK_BYTES = 1 << 20


def partition_of(user_id: int, partitions: int) -> int:
    """Stable hash partition of a user (Fibonacci hashing; the same in every process)."""
    return (((user_id * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF) >> 32) % partitions


def event_files(raw_dir: Path) -> list[str]:
    """Hour files in (day, hour) order, named as the raw contract says (others are ignored)."""
    return [rel for rel, _ in _hour_files(Path(raw_dir))]


def _hour_files(raw_dir: Path) -> list[tuple[str, int]]:
    """(relative path, latest acceptable event_ts in µs) of every hour file, in (day, hour)
    order: one ``scandir`` of ``events/`` and of each ``dt=`` folder, no glob."""
    out = []
    try:
        days = [e for e in os.scandir(raw_dir / "events") if e.name.startswith("dt=")]
    except FileNotFoundError:
        return out
    for d in days:
        try:
            if not d.is_dir():
                continue
            names = [e.name for e in os.scandir(d.path) if e.name.startswith("hour=")]
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name in names:
            rel = f"events/{d.name}/{name}"
            limit = _limit_of(rel)
            if limit != NO_LIMIT_US:
                out.append((rel, limit))
    out.sort()
    return out


_limits: dict[str, int] = {}


def _limit_of(rel: str) -> int:
    limit = _limits.get(rel)
    if limit is None:
        if len(_limits) >= 100_000:
            _limits.clear()
        limit = _limits[rel] = file_limit_us(rel)
    return limit


class FileSource:
    """Tails the raw events directory; position per file = byte offset after the last line used."""

    def __init__(self, raw_dir: Path, final: bool = False) -> None:
        self.raw_dir = Path(raw_dir)
        # final: the files are complete, so a last line without a newline is a line (as ingest
        # reads it); when tailing, it is a line still being written.
        self.final = final

    def pump(self, state: StreamState, max_lines: int) -> int:
        """Apply up to about ``max_lines`` new complete lines (whole chunks), first file first,
        as one batch: the chunks of several files go together, each line with its file's limit."""
        parts: list[list[bytes]] = []
        limits: list[int] = []
        positions: dict[str, str] = {}
        done = 0
        for rel, limit_us in _hour_files(self.raw_dir):  # listed once per pump
            if done >= max_lines:
                break
            key = "file:" + rel
            pos = int(state.positions.get(key, "0"))
            path = os.path.join(self.raw_dir, rel)
            try:
                size = os.stat(path).st_size
            except FileNotFoundError:
                continue
            if size <= pos:
                continue
            with open(path, "rb") as f:
                f.seek(pos)
                while done < max_lines:
                    data = f.read(CHUNK_BYTES)
                    cut = data.rfind(b"\n")
                    while cut < 0 and len(data) > 0:  # a line longer than a chunk
                        more = f.read(CHUNK_BYTES)
                        if not more:
                            break
                        data += more
                        cut = data.rfind(b"\n")
                    consumed = cut + 1
                    if cut < 0 and self.final and data:
                        consumed = len(data)  # the file's last line has no newline
                        cut = len(data)
                    if cut < 0:
                        break  # only a partial last line: wait for the writer
                    parts.append(data[:cut].split(b"\n"))
                    limits.append(limit_us)
                    done += len(parts[-1])
                    pos += consumed
                    f.seek(pos)
                    positions[key] = str(pos)
        if parts:
            if len(parts) == 1:
                state.apply_lines(parts[0], limits[0], time.time())
            else:
                sizes = [len(p) for p in parts]
                state.apply_lines(
                    list(chain.from_iterable(parts)),
                    np.repeat(np.array(limits, dtype=np.int64), sizes),
                    time.time(),
                )
            state.positions.update(positions)
        return done

    def committed(self) -> None:
        pass

    def close(self) -> None:
        pass


def redis_client():
    import redis

    host, _, port = config.redis_url().replace("redis://", "").partition(":")
    port = port.split("/")[0] or "6379"
    client = redis.Redis(host=host, port=int(port))
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        raise UserError(
            f"cannot reach Redis at {config.redis_url()} ({exc}): start it or set VIGIL_REDIS_URL."
        ) from None
    return client


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry_lines(fields: dict, owns_all: bool) -> list[bytes]:
    """The lines of one stream entry: its batch (``lines``), its single ``line``, and the
    copies of two-user lines (``copies``) unless this consumer reads every partition."""
    batch = fields.get(b"lines")
    got = batch.split(b"\n") if batch is not None else []
    if b"line" in fields:
        got.append(fields[b"line"])
    copies = fields.get(b"copies")
    if copies is not None and not owns_all:
        got += copies.split(b"\n")
    return got


def _id_tuple(entry_id: str | bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-" if isinstance(entry_id, str) else b"-")
    return int(ms), int(seq or 0)


def _first(entry: tuple) -> tuple[int, int]:
    return entry[0]


_raw_limits: dict[bytes, int] = {}


def _limit_of_raw(rel: bytes) -> int:
    """:func:`_limit_of` of a file name as a stream entry holds it (bytes)."""
    limit = _raw_limits.get(rel)
    if limit is None:
        if len(_raw_limits) >= 100_000:
            _raw_limits.clear()
        limit = _raw_limits[rel] = _limit_of(_s(rel))
    return limit


class RedisSource:
    """Reads this consumer's partitions of the event stream through a consumer group.

    Exactly-once: the last entry id applied per partition is part of the checkpoint. Entries are
    XACKed only after the checkpoint that covers them commits; on restart, this consumer's pending
    entries are read again from Redis and those at or below the checkpointed id are skipped.
    """

    def __init__(
        self, stream_key: str, partitions: int, consumer: int, consumers: int, block_ms: int = 200
    ) -> None:
        if not 0 <= consumer < consumers <= partitions:
            raise UserError(
                f"--consumer {consumer} --consumers {consumers} --partitions {partitions}: need "
                "0 <= consumer < consumers <= partitions."
            )
        self.client = redis_client()
        self.partitions = partitions
        self.owned = [p for p in range(partitions) if p % consumers == consumer]
        owned = set(self.owned)
        # a line's copy in its target's partition (field ``copies``) is only needed by the
        # consumer that does not also read the line's own partition
        self.owns_all = len(owned) == partitions
        # which users this consumer keeps; None: all of them (no per-user check)
        self.owns = None if self.owns_all else lambda uid: partition_of(uid, partitions) in owned
        self.keys = [f"{stream_key}:{p}" for p in self.owned]
        self.name = f"consumer-{consumer}"
        self.block_ms = block_ms
        self.pending_phase = {k: True for k in self.keys}
        self.pending_cursor = {k: "0" for k in self.keys}
        self.more = {k: True for k in self.keys}
        self.buf: dict[str, deque] = {k: deque() for k in self.keys}
        self.count = 1000
        self.to_ack: dict[str, list[bytes]] = {k: [] for k in self.keys}
        import redis

        for key in self.keys:
            try:
                self.client.xgroup_create(key, GROUP, id="0", mkstream=True)
            except redis.exceptions.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def _fetch(self, keys: list[str], block: int | None) -> None:
        """Refill the buffers of ``keys``: this consumer's pending entries first, then new ones."""
        pend = {k: self.pending_cursor[k] for k in keys if self.pending_phase[k]}
        new = {k: ">" for k in keys if not self.pending_phase[k]}
        for streams, blk in ((pend, None), (new, block)):
            if not streams:
                continue
            reply = self.client.xreadgroup(GROUP, self.name, streams, count=self.count, block=blk)
            got = {
                (k.decode() if isinstance(k, bytes) else k): entries for k, entries in reply or []
            }
            for key in streams:
                entries = got.get(key, [])
                if streams is pend:
                    if entries:
                        last = entries[-1][0]
                        self.pending_cursor[key] = (
                            last.decode() if isinstance(last, bytes) else last
                        )
                    else:
                        self.pending_phase[key] = False  # re-delivery done: now new entries
                    self.more[key] = True
                else:
                    self.more[key] = len(entries) >= self.count
                # buffered as (id tuple, key, entry id, fields): ordered by id, then stream key
                self.buf[key].extend((_id_tuple(eid), key, eid, f) for eid, f in entries)

    def pump(self, state: StreamState, max_lines: int) -> int:
        """Apply up to about ``max_lines`` lines (whole entries), merged across partitions in
        entry-id (arrival) order, as one batch.

        Merging keeps event time nearly monotonic when one consumer reads several partitions,
        so the lateness bound means the same as for one ordered log. An entry holds one line
        (field ``line``) or a batch of newline-separated lines of one raw file (``lines``).
        The merge is done for all buffered entries at once (:meth:`_mergeable`): the entries up
        to the first point where a partition's buffer runs out, in id order.
        """
        parts: list[list[bytes]] = []
        limits: list[int] = []
        times: list[float] = []
        last_id: dict[str, bytes] = {}
        checkpointed = {k: _id_tuple(state.positions.get("redis:" + k, "0-0")) for k in self.keys}
        done = 0
        while done < max_lines:
            need = [k for k in self.keys if not self.buf[k] and self.more[k]]
            if need:
                idle = not done and not any(self.buf.values())
                self._fetch(
                    need, self.block_ms if idle and not any(self.pending_phase.values()) else None
                )
                continue
            merged = self._mergeable()
            if not merged:
                for k in self.keys:  # all caught up: poll every partition next time
                    self.more[k] = True
                break
            owns_all = self.owns_all
            for n_taken, entry in enumerate(merged):
                if done >= max_lines:  # the rest go back, in order, for the next pump
                    for rest in reversed(merged[n_taken:]):
                        self.buf[rest[1]].appendleft(rest)
                    break
                idt, key, entry_id, fields = entry
                self.to_ack[key].append(entry_id)
                if not fields or idt <= checkpointed[key]:
                    continue  # trimmed from the stream meanwhile, or already checkpointed
                got = _entry_lines(fields, owns_all)
                last_id[key] = entry_id
                if got:
                    parts.append(got)
                    limits.append(_limit_of_raw(fields.get(b"file", b"")))
                    times.append(idt[0] / 1000)
                    done += len(got)
        if parts:
            sizes = [len(p) for p in parts]
            state.apply_lines(
                list(chain.from_iterable(parts)),
                np.repeat(np.array(limits, dtype=np.int64), sizes),
                np.repeat(np.array(times, dtype=np.float64), sizes),
            )
        for key, entry_id in last_id.items():
            state.positions["redis:" + key] = _s(entry_id)
        return done

    def _mergeable(self) -> list[tuple]:
        """Take from the buffers, in entry-id order, every entry that no later fetch can
        precede: those up to the last buffered id of each partition that may have more.
        Returns ``(id tuple, key, entry_id, fields)`` in merge order."""
        live = [k for k in self.keys if self.buf[k]]
        bounds = [self.buf[k][-1][0] for k in live if self.more[k]]
        bound = min(bounds) if bounds else None
        out: list[tuple] = []
        for k in live:
            buf = self.buf[k]
            if bound is None or buf[-1][0] <= bound:
                out += buf
                buf.clear()
                continue
            entries = list(buf)
            cut = bisect_right(entries, bound, key=_first)
            out += entries[:cut]
            self.buf[k] = deque(entries[cut:])
        out.sort()  # by (id, stream key): unique, so the fields are never compared
        return out

    def committed(self) -> None:
        """The checkpoint covering everything read so far committed: acknowledge it."""
        pipe = self.client.pipeline(transaction=False)
        for key, ids in self.to_ack.items():
            if ids:
                pipe.xack(key, GROUP, *ids)
                ids.clear()
        pipe.execute()

    def close(self) -> None:
        self.client.close()
