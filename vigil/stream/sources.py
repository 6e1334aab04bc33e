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
from collections import deque
from pathlib import Path

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
        """Apply up to about ``max_lines`` new complete lines (whole chunks), first file first."""
        done = 0
        for rel, limit_us in _hour_files(self.raw_dir):  # listed once per pump
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
                    lines = data[:cut].split(b"\n")
                    state.apply_lines(lines, limit_us, time.time())
                    done += len(lines)
                    pos += consumed
                    f.seek(pos)
                    state.positions[key] = str(pos)
            if done >= max_lines:
                break
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


def _id_tuple(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


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
        self.owns = lambda uid: partition_of(uid, partitions) in owned
        # a line's copy in its target's partition (field ``copies``) is only needed by the
        # consumer that does not also read the line's own partition
        self.owns_all = len(owned) == partitions
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
                self.buf[key].extend(entries)

    def pump(self, state: StreamState, max_lines: int) -> int:
        """Apply up to about ``max_lines`` lines (whole entries), merged across partitions in
        entry-id (arrival) order, as one batch.

        Merging keeps event time nearly monotonic when one consumer reads several partitions,
        so the lateness bound means the same as for one ordered log. An entry holds one line
        (field ``line``) or a batch of newline-separated lines of one raw file (``lines``).
        """
        lines: list[bytes] = []
        limits: list[int] = []
        arrivals: list[float] = []
        last_id: dict[str, bytes] = {}
        checkpointed = {k: _id_tuple(state.positions.get("redis:" + k, "0-0")) for k in self.keys}
        while len(lines) < max_lines:
            need = [k for k in self.keys if not self.buf[k] and self.more[k]]
            if need:
                idle = not lines and not any(self.buf.values())
                self._fetch(
                    need, self.block_ms if idle and not any(self.pending_phase.values()) else None
                )
                continue
            heads = [(_id_tuple(_s(self.buf[k][0][0])), k) for k in self.keys if self.buf[k]]
            if not heads:
                for k in self.keys:  # all caught up: poll every partition next time
                    self.more[k] = True
                break
            idt, key = min(heads)
            entry_id, fields = self.buf[key].popleft()
            self.to_ack[key].append(entry_id)
            if not fields:  # a pending entry trimmed from the stream meanwhile
                continue
            if idt <= checkpointed[key]:
                continue  # already in the checkpointed state
            limit_us = _limit_of(_s(fields.get(b"file", b"")))
            batch = fields.get(b"lines")
            got = batch.split(b"\n") if batch is not None else []
            if b"line" in fields:
                got.append(fields[b"line"])
            copies = fields.get(b"copies")
            if copies is not None and not self.owns_all:
                got += copies.split(b"\n")
            if not got:
                last_id[key] = entry_id
                continue
            lines += got
            limits += [limit_us] * len(got)
            arrivals += [idt[0] / 1000] * len(got)
            last_id[key] = entry_id
        if lines:
            state.apply_lines(lines, limits, arrivals)
        for key, entry_id in last_id.items():
            state.positions["redis:" + key] = _s(entry_id)
        return len(lines)

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
