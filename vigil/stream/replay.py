"""``vigil stream --replay DIR --rate N``: feed a source from simulated logs at N events/s.

``files``: appends each line to the same relative file under the target directory (what the file
source tails). ``redis``: XADDs it to the partition stream of its user, and also to the partition
of the event's target user when that differs; the lines of one flush (``batch`` lines) travel as
one entry per partition and raw file.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from vigil.errors import UserError
from vigil.stream.sources import (
    DEFAULT_PARTITIONS,
    DEFAULT_STREAM_KEY,
    event_files,
    partition_of,
    redis_client,
)

log = logging.getLogger(__name__)


def _iter_lines(src_dir: Path) -> Iterator[tuple[str, bytes]]:
    for rel in event_files(src_dir):
        with open(src_dir / rel, "rb") as f:
            for line in f:
                yield rel, line.rstrip(b"\n")


class _FileSink:
    """Appends lines to the same relative files under ``target_dir``, one file open at a time."""

    def __init__(self, src_dir: Path, target_dir: Path | None) -> None:
        if target_dir is None:
            raise UserError("replay into files needs a target directory (--raw DIR).")
        self.target_dir = Path(target_dir)
        if self.target_dir.resolve() == src_dir.resolve():
            raise UserError("replay target must differ from the source directory.")
        self.handles: dict[str, IO[bytes]] = {}

    def write(self, rel: str, line: bytes, line_no: int) -> None:
        f = self.handles.get(rel)
        if f is None:
            self.close()
            out = self.target_dir / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            f = self.handles[rel] = open(out, "ab")  # noqa: SIM115 - closed in close()
        f.write(line + b"\n")

    def flush(self) -> None:
        for h in self.handles.values():
            h.flush()

    def close(self) -> None:
        for h in self.handles.values():
            h.close()
        self.handles.clear()


class _RedisSink:
    """XADDs lines to their users' partition streams: at each flush, one entry per (partition,
    raw file) holding that batch's lines (field ``lines``, newline-separated), through a pipeline.

    Batched entries are what a log shipper sends (cf. Kafka's record batches): the consumer pays
    Redis's per-entry cost once per batch instead of once per event. A line goes to its actor's
    partition (field ``lines``) and, when the target user's partition differs, as a copy to that
    one too (field ``copies``): a consumer that owns every partition skips the copies.
    """

    def __init__(self, stream_key: str, partitions: int) -> None:
        self.client = redis_client()
        self.stream_key = stream_key
        self.partitions = partitions
        self.last_ms = 0
        # (partition, file) -> [lines, copies, number of the last line]
        self.pending: dict[tuple[int, str], list] = {}

    def write(self, rel: str, line: bytes, line_no: int) -> None:
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            obj = None
        users = [obj.get("user_id"), obj.get("target_user_id")] if type(obj) is dict else []
        parts = [partition_of(u, self.partitions) for u in users if type(u) is int and u > 0]
        for i, p in enumerate(dict.fromkeys(parts or [0])):  # unparseable: partition 0, counted
            group = self.pending.get((p, rel))
            if group is None:
                group = self.pending[(p, rel)] = [[], [], 0]
            group[0 if i == 0 else 1].append(line)  # the first partition holds the line
            group[2] = line_no

    def flush(self) -> None:
        if not self.pending:
            return
        # explicit ids "<ms>-<number of the batch's last line>": the XADD time, plus the replay
        # order across partitions (consumers merge their partitions by id)
        self.last_ms = max(self.last_ms, int(time.time() * 1000))
        pipe = self.client.pipeline(transaction=False)
        for (p, rel), (lines, copies, last_no) in sorted(
            self.pending.items(), key=lambda kv: kv[1][2]
        ):
            fields = {"file": rel}
            if lines:
                fields["lines"] = b"\n".join(lines)
            if copies:
                fields["copies"] = b"\n".join(copies)
            pipe.xadd(f"{self.stream_key}:{p}", fields, id=f"{self.last_ms}-{last_no}")
        pipe.execute()
        self.pending.clear()

    def close(self) -> None:
        self.client.close()


def _pace(sent: int, rate: float, started: float) -> None:
    """Sleep until ``sent`` events are due at ``rate`` events/s (0: never sleep)."""
    if rate > 0:
        ahead = sent / rate - (time.time() - started)
        if ahead > 0:
            time.sleep(ahead)


def replay(
    src_dir: Path,
    rate: float,
    *,
    sink: str = "files",
    target_dir: Path | None = None,
    stream_key: str = DEFAULT_STREAM_KEY,
    partitions: int = DEFAULT_PARTITIONS,
    batch: int = 500,
    limit: int | None = None,
) -> dict:
    """Feed simulated logs to a source at ``rate`` events/s (0: as fast as possible).

    ``files``: appends each line to the same relative file under ``target_dir`` (what the file
    source tails). ``redis``: XADDs it to the partition stream of its user, and also to the
    partition of the event's target user when that differs.
    """
    src_dir = Path(src_dir)
    if not (src_dir / "events").is_dir():
        raise UserError(f"no events directory under {src_dir}: pass the simulator's output dir.")
    if sink == "redis":
        out: _FileSink | _RedisSink = _RedisSink(stream_key, partitions)
    elif sink == "files":
        out = _FileSink(src_dir, target_dir)
    else:
        raise UserError(f"unknown replay sink {sink!r}: use 'files' or 'redis'.")
    started = time.time()
    sent = 0
    try:
        for rel, line in _iter_lines(src_dir):
            out.write(rel, line, sent + 1)
            sent += 1
            if sent % batch == 0:
                out.flush()
                _pace(sent, rate, started)
            if limit is not None and sent >= limit:
                break
        out.flush()
    finally:
        out.close()
    elapsed = time.time() - started
    log.info("replayed %d events from %s into %s in %.1f s", sent, src_dir, sink, elapsed)
    return {
        "events": sent,
        "seconds": round(elapsed, 3),
        "events_per_s": round(sent / max(elapsed, 1e-9), 1),
    }
