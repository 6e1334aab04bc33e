"""``vigil stream``: keep every user's UAM and creator tallies current as events arrive.

Sources
  files (default)  tail ``<raw>/events/dt=*/hour=*.jsonl`` as files appear and grow; the input
                   position is (file, byte offset) per file. Files are read in name order, each
                   to its last complete line, so a replay of the same files is deterministic.
  redis            (production profile, ``--source redis`` or ``VIGIL_STREAM_SOURCE=redis``)
                   Redis Streams at ``vigil.config.redis_url()``. Events are spread over
                   ``--partitions`` streams ``<key>:<p>`` by a hash of the user; consumer k of M
                   (``--consumer k --consumers M``) reads partitions p with p % M == k through
                   XREADGROUP in the consumer group ``vigil-stream``, so adding consumers scales
                   the processor out. An event that touches two users (an actor and the author of
                   the post acted on) is written to both users' partitions; each consumer applies
                   only the parts for the users it owns.

State, exactly-once and memory: see :mod:`vigil.stream.state`. Every checkpoint commits state and
input position together; the changed users' features are then pushed to the Feast online store
through the push sources ``user_activity_push`` and ``creator_context_push``, and the lag from an
event's arrival (file read, or XADD time for Redis) to its pushed feature is recorded.

``vigil stream --replay DIR --rate N`` feeds a source from simulated logs at N events/s.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vigil import config
from vigil.errors import UserError
from vigil.stream.state import DAY_MS, NO_LIMIT_US, StreamState, date_of, file_limit_us, read_status

log = logging.getLogger(__name__)

GROUP = "vigil-stream"
DEFAULT_STREAM_KEY = "vigil:events"
DEFAULT_PARTITIONS = 8
CHUNK_BYTES = 1 << 20
USER_ACTIVITY_PUSH = "user_activity_push"
CREATOR_CONTEXT_PUSH = "creator_context_push"
# creator_context features the stream cannot compute (they need users, labels or batch priors):
# a push carries their latest batch value, read from the online store.
BATCH_ONLY_CREATOR = (
    "account_age_days",
    "removals_total",
    "report_rate_bayes",
    "dislike_rate_bayes",
    "block_rate_bayes",
)


def partition_of(user_id: int, partitions: int) -> int:
    """Stable hash partition of a user (Fibonacci hashing; the same in every process)."""
    return (((user_id * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF) >> 32) % partitions


def _event_files(raw_dir: Path) -> list[str]:
    """Hour files in (day, hour) order, named as the raw contract says (others are ignored)."""
    out = []
    for p in raw_dir.glob("events/dt=*/hour=*.jsonl"):
        rel = str(p.relative_to(raw_dir)).replace(os.sep, "/")
        if file_limit_us(rel) != NO_LIMIT_US:
            out.append(rel)
    return sorted(out)


# ---------------------------------------------------------------------------------------------
# sources


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
        for rel in _event_files(self.raw_dir):
            key = "file:" + rel
            pos = int(state.positions.get(key, "0"))
            path = self.raw_dir / rel
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            if size <= pos:
                continue
            limit_us = file_limit_us(rel)
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
                    arrival = time.time()
                    apply = state.apply_line
                    lines = data[:cut].split(b"\n")
                    for line in lines:
                        apply(line, limit_us, arrival)
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


def _redis_client():
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
        self.client = _redis_client()
        self.partitions = partitions
        self.owned = [p for p in range(partitions) if p % consumers == consumer]
        owned = set(self.owned)
        self.owns = lambda uid: partition_of(uid, partitions) in owned
        self.keys = [f"{stream_key}:{p}" for p in self.owned]
        self.name = f"consumer-{consumer}"
        self.block_ms = block_ms
        self.pending_phase = {k: True for k in self.keys}
        self.pending_cursor = {k: "0" for k in self.keys}
        self.more = {k: True for k in self.keys}
        self.buf: dict[str, deque] = {k: deque() for k in self.keys}
        self.count = 500
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
        """Apply up to ``max_lines`` entries, merged across partitions in entry-id (arrival) order.

        Merging keeps event time nearly monotonic when one consumer reads several partitions,
        so the lateness bound means the same as for one ordered log.
        """
        done = 0
        while done < max_lines:
            need = [k for k in self.keys if not self.buf[k] and self.more[k]]
            if need:
                idle = not any(self.buf.values())
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
            if idt <= _id_tuple(state.positions.get("redis:" + key, "0-0")):
                continue  # already in the checkpointed state
            file_ = _s(fields.get(b"file", b""))
            state.apply_line(fields[b"line"], file_limit_us(file_), idt[0] / 1000)
            state.positions["redis:" + key] = _s(entry_id)
            done += 1
        return done

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


# ---------------------------------------------------------------------------------------------
# pushing to Feast


class FeastPusher:
    """Pushes changed users' features to the online store in batches and measures the lag."""

    def __init__(self, seed: int = 0) -> None:
        try:
            from vigil.serving import features
        except ModuleNotFoundError as exc:
            raise UserError(f"Feast integration missing ({exc}): pass --no-push.") from None
        from feast.data_source import PushMode

        self.mode = PushMode.ONLINE
        self.store = features.store()
        try:
            names = {ds.name for ds in self.store.list_data_sources()}
        except Exception as exc:  # noqa: BLE001 - any registry failure means "not applied"
            raise UserError(
                f"Feast registry not readable ({exc}): run `vigil features apply`."
            ) from None
        missing = {USER_ACTIVITY_PUSH, CREATOR_CONTEXT_PUSH} - names
        if missing:
            raise UserError(
                f"push sources {sorted(missing)} are not in the Feast registry: run "
                "`vigil features apply` first, or pass --no-push."
            )
        self.lags: list[float] = []
        self.n_lags = 0
        self.rng = random.Random(seed)
        self.rows_pushed = 0

    def _record_lags(self, arrivals: list[float], done: float) -> None:
        for a in arrivals:  # reservoir sample of at most 200k lags
            self.n_lags += 1
            if len(self.lags) < 200_000:
                self.lags.append(done - a)
            else:
                j = self.rng.randrange(self.n_lags)
                if j < 200_000:
                    self.lags[j] = done - a

    def push(self, state: StreamState, users: list[int], arrivals: list[float]) -> None:
        import pandas as pd

        if not users:
            self._record_lags(arrivals, time.time())
            return
        rows = state.features_for(users)
        df = pd.DataFrame(rows)
        wm = pd.Timestamp(state.watermark_iso() or pd.Timestamp.now(tz="UTC"))
        df["event_timestamp"] = wm
        ua = df[["user_id", "event_timestamp", "uam_30d", "active_days_30d", "uam_1d"]].copy()
        for c in ("uam_30d", "uam_1d"):
            ua[c] = ua[c].astype("float64")
        batch_only = self._batch_only(users)
        cc = df.drop(columns=["uam_30d", "active_days_30d", "uam_1d"]).merge(
            batch_only, on="user_id", how="left"
        )
        self.store.push(USER_ACTIVITY_PUSH, ua, to=self.mode)
        self.store.push(CREATOR_CONTEXT_PUSH, cc, to=self.mode)
        self.rows_pushed += len(df)
        self._record_lags(arrivals, time.time())

    def _batch_only(self, users: list[int]):
        """The latest batch values of the creator features the stream does not compute."""
        import pandas as pd

        resp = self.store.get_online_features(
            features=[f"creator_context:{c}" for c in BATCH_ONLY_CREATOR],
            entity_rows=[{"user_id": int(u)} for u in users],
        ).to_dict()
        out = pd.DataFrame({"user_id": users})
        for c in BATCH_ONLY_CREATOR:
            vals = resp.get(c, [None] * len(users))
            if c == "removals_total":
                out[c] = pd.array([0 if v is None else int(v) for v in vals], dtype="int64")
            else:
                out[c] = pd.array(
                    [float("nan") if v is None else float(v) for v in vals], dtype="float64"
                )
        return out

    def lag_summary(self) -> dict[str, float | int]:
        if not self.lags:
            return {"events": 0}
        s = sorted(self.lags)
        pick = lambda q: s[min(len(s) - 1, int(q * len(s)))]
        return {
            "events": self.n_lags,
            "p50_s": round(pick(0.5), 4),
            "p99_s": round(pick(0.99), 4),
            "max_s": round(s[-1], 4),
        }


# ---------------------------------------------------------------------------------------------
# the processing loop


@dataclass
class RunOptions:
    source: str = "files"
    raw_dir: Path | None = None
    state_path: Path | None = None
    once: bool = False
    push: bool = True
    lateness_hours: float = 48.0
    memory_budget_mb: int = 2048
    checkpoint_seconds: float = 1.0
    checkpoint_events: int = 50_000
    poll_seconds: float = 0.2
    stream_key: str = DEFAULT_STREAM_KEY
    partitions: int = DEFAULT_PARTITIONS
    consumer: int = 0
    consumers: int = 1
    max_seconds: float | None = None
    stats: dict = field(default_factory=dict)


def default_state_path(opts: RunOptions) -> Path:
    base = config.paths().stream_state
    if opts.source == "redis":
        return base / f"state-redis-{opts.consumer}-of-{opts.consumers}.sqlite"
    return base / "state.sqlite"


def _open_source(opts: RunOptions) -> FileSource | RedisSource:
    """The event source ``opts`` names: the raw folder's hour files, or a Redis stream."""
    if opts.source == "files":
        raw_dir = Path(opts.raw_dir or config.paths().raw)
        if not (raw_dir / "events").is_dir() and opts.once:
            raise UserError(
                f"no events directory under {raw_dir}: run `vigil simulate` or pass --raw DIR."
            )
        return FileSource(raw_dir, final=opts.once)
    if opts.source == "redis":
        return RedisSource(opts.stream_key, opts.partitions, opts.consumer, opts.consumers)
    raise UserError(f"unknown source {opts.source!r}: use 'files' or 'redis'.")


def _log_checkpoint(n_ckpt: int, state: StreamState) -> None:
    c = state.counters
    log.info(
        "checkpoint %d: read %d applied %d bad %d duplicates %d too_late %d; %d users cached; "
        "watermark %s",
        n_ckpt,
        c["read"],
        c["applied"],
        c["bad"],
        c["duplicates"],
        c["too_late"],
        len(state.users),
        state.watermark_iso(),
    )


def _summary(state, state_path, pusher, elapsed: float, read0: int, n_ckpt: int) -> dict:
    """The run's figures; closes the state and writes them beside it (``.metrics.json``)."""
    read = state.counters["read"] - read0
    result = {
        "state": str(state_path),
        "seconds": round(elapsed, 3),
        "read": read,
        "events_per_s": round(read / elapsed, 1) if elapsed > 0 else None,
        "checkpoints": n_ckpt,
        "counters": dict(state.counters),
        "bad_reasons": dict(state.bad_reasons),
        "watermark": state.watermark_iso(),
        "users_cached": len(state.users),
        "bytes_per_user": round(state.bytes_per_user, 1),
    }
    if pusher is not None:
        result["rows_pushed"] = pusher.rows_pushed
        result["lag"] = pusher.lag_summary()
        log.info("push lag (arrival -> online): %s", result["lag"])
    state.close()
    metrics = Path(state_path).with_suffix(".metrics.json")
    metrics.write_text(json.dumps(result, indent=2))
    return result


def process(opts: RunOptions) -> dict:
    """Run the stream processor until stopped (SIGINT/SIGTERM) or, with ``once``, until idle."""
    state_path = opts.state_path or default_state_path(opts)
    source = _open_source(opts)
    owns = source.owns if isinstance(source, RedisSource) else None
    pusher = FeastPusher() if opts.push else None
    state = StreamState(
        state_path,
        lateness_ms=int(opts.lateness_hours * 3_600_000),
        memory_budget_bytes=opts.memory_budget_mb << 20,
        owns=owns,
        track_push=pusher is not None,
    )
    stop = {"flag": False}

    def _stop(signum, frame):
        stop["flag"] = True

    old = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    started = time.time()
    last_ckpt = time.time()
    since_ckpt = 0
    n_ckpt = 0
    read0 = state.counters["read"]
    if pusher is not None:
        leftover = state.pending_push()
        if leftover:  # pushes lost in a crash after their checkpoint committed
            pusher.push(state, leftover, [])
            state.clear_pushed(leftover)

    def _checkpoint() -> None:
        nonlocal last_ckpt, since_ckpt, n_ckpt
        changed = state.checkpoint()
        source.committed()
        n_ckpt += 1
        if pusher is not None:
            arrivals, state.arrivals = state.arrivals, []
            users = sorted(changed)
            pusher.push(state, users, arrivals)
            state.clear_pushed(users)
        last_ckpt = time.time()
        since_ckpt = 0
        _log_checkpoint(n_ckpt, state)

    try:
        while not stop["flag"]:
            n = source.pump(state, min(opts.checkpoint_events, 20_000))
            since_ckpt += n
            now = time.time()
            if since_ckpt and (
                since_ckpt >= opts.checkpoint_events or now - last_ckpt >= opts.checkpoint_seconds
            ):
                _checkpoint()
            if opts.max_seconds is not None and now - started >= opts.max_seconds:
                break
            if n == 0:
                if opts.once:
                    break
                if opts.source == "files":
                    time.sleep(opts.poll_seconds)
        if since_ckpt or n_ckpt == 0:
            _checkpoint()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        source.close()
    result = _summary(state, state_path, pusher, time.time() - started, read0, n_ckpt)
    opts.stats.update(result)
    return result


# ---------------------------------------------------------------------------------------------
# replay


def _iter_lines(src_dir: Path) -> Iterator[tuple[str, bytes]]:
    for rel in _event_files(src_dir):
        with open(src_dir / rel, "rb") as f:
            for line in f:
                yield rel, line.rstrip(b"\n")


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
    client = _redis_client() if sink == "redis" else None
    if sink == "files":
        if target_dir is None:
            raise UserError("replay into files needs a target directory (--raw DIR).")
        target_dir = Path(target_dir)
        if target_dir.resolve() == src_dir.resolve():
            raise UserError("replay target must differ from the source directory.")
    started = time.time()
    sent = 0
    last_ms = 0
    handles: dict[str, object] = {}
    pipe = client.pipeline(transaction=False) if client else None
    try:
        for rel, line in _iter_lines(src_dir):
            if client is not None:
                try:
                    obj = json.loads(line)
                except (ValueError, RecursionError):
                    obj = None
                users = [obj.get("user_id"), obj.get("target_user_id")] if type(obj) is dict else []
                parts = {partition_of(u, partitions) for u in users if type(u) is int and u > 0}
                # explicit id "<ms>-<line number>": the XADD time, plus the replay order across
                # partitions (consumers merge their partitions by id; "*" ids would tie within a ms)
                last_ms = max(last_ms, int(time.time() * 1000))
                for p in parts or {0}:  # unparseable lines go to partition 0, to be counted
                    pipe.xadd(
                        f"{stream_key}:{p}", {"line": line, "file": rel}, id=f"{last_ms}-{sent + 1}"
                    )
            else:
                f = handles.get(rel)
                if f is None:
                    for h in handles.values():
                        h.close()
                    handles.clear()
                    out = target_dir / rel
                    out.parent.mkdir(parents=True, exist_ok=True)
                    f = handles[rel] = open(out, "ab")  # noqa: SIM115 - closed in finally
                f.write(line + b"\n")
            sent += 1
            if sent % batch == 0:
                if pipe is not None:
                    pipe.execute()
                for h in handles.values():
                    h.flush()
                if rate > 0:
                    ahead = sent / rate - (time.time() - started)
                    if ahead > 0:
                        time.sleep(ahead)
            if limit is not None and sent >= limit:
                break
        if pipe is not None:
            pipe.execute()
    finally:
        for h in handles.values():
            h.close()
        if client is not None:
            client.close()
    elapsed = time.time() - started
    log.info("replayed %d events from %s into %s in %.1f s", sent, src_dir, sink, elapsed)
    return {
        "events": sent,
        "seconds": round(elapsed, 3),
        "events_per_s": round(sent / max(elapsed, 1e-9), 1),
    }


# ---------------------------------------------------------------------------------------------
# CLI


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        choices=("files", "redis"),
        default=None,
        help="files: tail the raw events dir (default); redis: Redis Streams "
        "(production profile; default from VIGIL_STREAM_SOURCE)",
    )
    parser.add_argument(
        "--raw",
        type=Path,
        default=None,
        help="raw dir to tail (files source) or to replay into (default: <data>/raw)",
    )
    parser.add_argument(
        "--state", type=Path, default=None, help="checkpoint file (default: <data>/stream/)"
    )
    parser.add_argument("--once", action="store_true", help="stop when no new events are available")
    parser.add_argument(
        "--no-push", action="store_true", help="do not push to the Feast online store"
    )
    parser.add_argument(
        "--lateness-hours",
        type=float,
        default=None,
        help="apply events up to this far behind the newest one (default 48)",
    )
    parser.add_argument(
        "--memory-budget-mb",
        type=int,
        default=None,
        help="user state kept in memory; beyond it, records spill to SQLite (default 2048)",
    )
    parser.add_argument("--checkpoint-seconds", type=float, default=1.0)
    parser.add_argument("--checkpoint-events", type=int, default=50_000)
    parser.add_argument("--stream-key", default=DEFAULT_STREAM_KEY, help="Redis stream key prefix")
    parser.add_argument(
        "--partitions", type=int, default=DEFAULT_PARTITIONS, help="Redis partition streams"
    )
    parser.add_argument("--consumer", type=int, default=0, help="this consumer's index (0-based)")
    parser.add_argument("--consumers", type=int, default=1, help="consumers in the group")
    parser.add_argument(
        "--replay",
        type=Path,
        default=None,
        metavar="DIR",
        help="feed the source from simulated logs in DIR instead of processing",
    )
    parser.add_argument("--rate", type=float, default=0.0, help="replay speed, events/s (0: max)")
    parser.add_argument(
        "--status", action="store_true", help="print the checkpoint's counters and exit"
    )
    parser.add_argument(
        "--features",
        metavar="YYYY-MM-DD",
        default=None,
        help="print every user's features for the window ending that day (JSON lines)",
    )


def run(args: argparse.Namespace) -> int:
    source = args.source or config.stream_source()
    opts = RunOptions(
        source=source,
        raw_dir=args.raw,
        state_path=args.state,
        once=args.once,
        push=not args.no_push,
        lateness_hours=args.lateness_hours
        if args.lateness_hours is not None
        else config.stream_lateness_hours(),
        memory_budget_mb=args.memory_budget_mb or config.stream_memory_budget_mb(),
        checkpoint_seconds=args.checkpoint_seconds,
        checkpoint_events=args.checkpoint_events,
        stream_key=args.stream_key,
        partitions=args.partitions,
        consumer=args.consumer,
        consumers=args.consumers,
    )
    state_path = opts.state_path or default_state_path(opts)
    if args.status or args.features:
        if not Path(state_path).exists():
            raise UserError(f"no stream state at {state_path}: run `vigil stream` first.")
        if args.status:
            print(json.dumps(read_status(state_path), indent=2))
        else:
            from datetime import date

            from vigil.stream.state import read_features

            try:
                last_day = date.fromisoformat(args.features)
            except ValueError:
                raise UserError(
                    f"--features {args.features!r}: give a date as YYYY-MM-DD."
                ) from None
            for uid, feats in sorted(read_features(state_path, last_day).items()):
                print(json.dumps({"user_id": uid, **feats}))
        return 0
    if args.replay is not None:
        result = replay(
            args.replay,
            args.rate,
            sink=source,
            target_dir=args.raw or config.paths().raw,
            stream_key=args.stream_key,
            partitions=args.partitions,
        )
    else:
        result = process(opts)
    print(json.dumps(result, indent=2))
    return 0


__all__ = ["DAY_MS", "RunOptions", "date_of", "partition_of", "process", "replay"]
