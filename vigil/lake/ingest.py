"""`vigil ingest`: load raw log files into the Parquet lake, quarantining bad rows.

Reads the raw-log contract (docs/contracts.md section 1) and writes the lake (section 2):

- every event line is validated (:mod:`vigil.lake.validation` defines a valid row,
  :mod:`vigil.lake.bulk` checks hour files at Arrow speed); a bad line goes to
  ``lake/quarantine/quarantine.parquet`` (:mod:`vigil.lake.quarantine`) with its raw folder, source
  file, 1-based line number and a reason, and the run goes on;
- events are partitioned by the UTC day of ``event_ts`` (``lake/events/dt=YYYY-MM-DD/events.parquet``,
  sorted by user_id, event_ts); an ``event_id`` already in its day's partition, or seen
  earlier in the same run, is counted as a duplicate and not loaded again, so a second run over the
  same input changes no byte of the lake; late events merge into their day's existing partition
  (read, union, dedupe, write to a temp file, rename: :mod:`vigil.lake.store`);
- ``users.jsonl`` and ``labels.jsonl`` are snapshots: validated, deduplicated by key (last line
  wins) and written as full files. An empty file is an empty snapshot; a file whose every line is
  rejected keeps the lake's previous snapshot.
- ``enforcement.jsonl`` and ``devices.jsonl`` (accounts, section 1.1) are snapshots the same way
  (keys ``enforcement_id``, ``seen_id``), read only when the raw folder has them.
- the scoring service's own logs, under the data root (section 1.2): the decision log
  (``decisions/dt=*/decisions-*.jsonl`` -> ``lake/decisions``, :mod:`vigil.lake.service_logs`)
  and the appeal verdicts (``appeals/labels.jsonl`` -> ``lake/appeal_labels``, a snapshot keyed
  by ``appeal_id``).
- the rules engine's effects log and the account reviewers' verdicts, under the data root
  (section 1.3, :mod:`vigil.lake.rule_logs`): ``lake/rule_effects``, ``lake/account_verdicts``.

Counts per stream and in total: ``read = loaded + quarantined + duplicates``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from vigil import config
from vigil.contracts import (
    label_schema,
    user_schema,
)
from vigil.errors import UserError
from vigil.lake.bulk import read_event_batch
from vigil.lake.manifest import QUARANTINE_KEY, Manifest
from vigil.lake.quarantine import write_quarantine
from vigil.lake.rule_logs import ingest_rule_logs
from vigil.lake.snapshots import (
    Counts,
    ingest_account_streams,
    ingest_service_logs,
    ingest_snapshot,
    parquet_rows,
)
from vigil.lake.store import DayWriter, remove_orphan_temp_files
from vigil.lake.validation import (
    check_label,
    check_user,
)

log = logging.getLogger(__name__)

# Validated rows held in memory before the oldest pending day is written early.
PENDING_ROWS_CAP = 6_000_000
# Hour files are validated in batches of about this many bytes (one bulk parse each).
BATCH_BYTES = 32 << 20
_HOUR_FILE_RE = re.compile(r"dt=([0-9]{4}-[0-9]{2}-[0-9]{2})/hour=([0-9]{2})\.jsonl", re.ASCII)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _parse_day(value: date | str | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"--day {value!r} is not a date: use YYYY-MM-DD.") from None


def _check_raw_dir(raw: Path) -> None:
    if not raw.exists():
        raise UserError(
            f"raw directory {raw} does not exist: run `vigil simulate --out {raw}` or pass --raw DIR."
        )
    if not raw.is_dir():
        raise UserError(f"raw directory {raw} is not a directory: pass --raw DIR.")
    if not os.access(raw, os.R_OK | os.X_OK):
        raise UserError(f"raw directory {raw} is not readable: fix its permissions.")
    if not any((raw / name).exists() for name in ("events", "users.jsonl", "labels.jsonl")):
        raise UserError(
            f"raw directory {raw} has no events/, users.jsonl or labels.jsonl: "
            "point --raw at a `vigil simulate` output."
        )


def discover_event_files(
    raw: Path, day: date | None
) -> tuple[list[tuple[date, int, Path]], list[str]]:
    """Hour files as (dt, hour, path) sorted by dt, hour; plus .jsonl files with unusable names."""
    events = raw / "events"
    found, skipped = [], []
    if day is not None:
        pattern = f"dt={day.isoformat()}/*.jsonl"
        if not (events / f"dt={day.isoformat()}").is_dir():
            raise UserError(
                f"no raw events for {day}: {events / f'dt={day.isoformat()}'} is missing."
            )
    else:
        pattern = "**/*.jsonl"
    for path in events.glob(pattern) if events.is_dir() else []:
        rel = path.relative_to(events).as_posix()
        m = _HOUR_FILE_RE.fullmatch(rel)
        try:
            dt, hour = date.fromisoformat(m.group(1)), int(m.group(2))
            if hour > 23:
                raise ValueError(hour)
        except (AttributeError, ValueError):
            skipped.append(path.relative_to(raw).as_posix())
            continue
        found.append((dt, hour, path))
    found.sort()
    return found, sorted(skipped)


def _hour_start_us(dt: date, hour: int) -> int:
    start = datetime(dt.year, dt.month, dt.day, hour, tzinfo=UTC)
    return (start - _EPOCH) // timedelta(microseconds=1)


@contextlib.contextmanager
def _lake_lock(state_dir: Path):
    import fcntl

    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / "ingest.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"another `vigil ingest` is writing this lake ({state_dir.parent}): wait for it."
            ) from None
        yield


# ---------------------------------------------------------------------------------------------
# Snapshots: users.jsonl and labels.jsonl.


# ---------------------------------------------------------------------------------------------
# The run.


@dataclass
class _Run:
    """What one ingest run gathers: the raw folder, rejected rows and the sources read."""

    raw: Path
    fast: bool
    # (stream, raw_dir, source_file, line_number, reason, raw)
    quarantine: list[tuple] = field(default_factory=list)
    sources: set[tuple[str, str, str]] = field(default_factory=set)  # (raw_dir, stream, file)
    events: Counts = field(default_factory=Counts)
    days_written: set[date] = field(default_factory=set)
    manifest: Manifest | None = None
    output: Any = None  # manifest output name -> its file (see _outputs)
    hashes: dict[Path, str] = field(default_factory=dict)  # hour files to read, hashed first
    unchanged_files: int = 0


def _read_day(run: _Run, dt: date, hours: list[tuple[int, Path]], pending: dict) -> tuple:
    """Validate one raw day's hour files into ``pending``. Returns (lines, quarantined, slow)."""
    raw = str(run.raw)
    day_read = day_bad = day_slow = 0
    for batch in _batches(hours, BATCH_BYTES):
        items = [
            (path, path.relative_to(run.raw).as_posix(), _hour_start_us(dt, hour))
            for hour, path in batch
        ]
        try:
            digests = run.hashes if run.manifest is not None else None
            result = read_event_batch(items, fast=run.fast, digests=digests)
        except PermissionError as exc:
            raise UserError(
                f"cannot read {exc.filename}: {exc.strerror}; fix its permissions."
            ) from None
        run.sources.update((raw, "events", name) for _, name, _ in items)
        _record(run, items, result, _split_by_day(result.table, pending))
        day_read += sum(result.read)
        day_bad += len(result.quarantine)
        day_slow += result.slow_lines
        run.quarantine.extend(("events", raw, *q) for q in result.quarantine)
    return day_read, day_bad, day_slow


def _record(run: _Run, items: list[tuple], result, event_days: list[date]) -> None:
    """Note in the manifest what each file of a batch gave (the batch's days for each file)."""
    if run.manifest is None:
        return
    days = {d.isoformat() for d in event_days}
    bad = Counter(q[0] for q in result.quarantine)
    for (path, name, _), read in zip(items, result.read, strict=True):
        run.manifest.record(_manifest_key(run, name), run.hashes[path], read, bad[name], days)


def _manifest_key(run: _Run, name: str) -> str:
    return f"{run.raw}/{name}"


def _skip_unchanged(run: _Run, files: list[tuple[date, int, Path]], paths) -> list:
    """Take the content hash of every hour file the manifest knows (from the stat cache, or
    by hashing it before reading it); drop those the lake already holds as they are, counting
    them as a re-read would. Returns the files still to read. A file the manifest does not know
    is hashed as it is read (the bytes read: one read, not two); its stat is taken before."""
    if run.manifest is None:
        return files
    output = run.output
    keys = {path: _manifest_key(run, _rel(run, path)) for _, _, path in files}
    known = [(key, path) for path, key in keys.items() if key in run.manifest.files]
    for path, key in keys.items():
        if key not in run.manifest.files:
            run.manifest.note_stat(key, path)
    digests = run.manifest.digests(known)
    run.hashes.update((path, digests[key]) for key, path in known)
    todo = []
    for dt, hour, path in files:
        key = keys[path]
        if key not in run.manifest.files:
            todo.append((dt, hour, path))
            continue
        rec = run.manifest.unchanged(key, run.hashes[path], output)
        if rec is None:
            todo.append((dt, hour, path))
            continue
        run.unchanged_files += 1
        run.events.read += rec["read"]
        run.events.quarantined += rec["quarantined"]
        run.events.duplicates += rec["read"] - rec["quarantined"]
    if run.unchanged_files:
        log.info(
            "ingest: %d of %d hour files unchanged since their last ingest (same content hash, "
            "lake partitions intact): skipped; %d known files hashed (the others' stat vouched for "
            "their content)",
            run.unchanged_files,
            len(files),
            run.manifest.hashed,
        )
    return todo


def _rel(run: _Run, path: Path) -> str:
    return path.relative_to(run.raw).as_posix()


def _outputs(paths):
    """name -> file of the outputs the manifest tracks: a day partition, a snapshot (users,
    labels) or the quarantine."""

    def output(name: str) -> Path:
        if name == QUARANTINE_KEY:
            return paths.quarantine / "quarantine.parquet"
        if name == "users":
            return paths.lake_users / "users.parquet"
        if name == "labels":
            return paths.lake_labels / "labels.parquet"
        if name == "enforcement":
            return paths.lake_enforcement / "enforcement.parquet"
        if name == "devices":
            return paths.lake_devices / "devices.parquet"
        if name == "decisions":
            return paths.lake_decisions / "decisions.parquet"
        if name == "appeal_labels":
            return paths.lake_appeal_labels / "appeal_labels.parquet"
        if name == "rule_effects":
            return paths.lake_rule_effects / "rule_effects.parquet"
        if name == "account_verdicts":
            return paths.lake_account_verdicts / "account_verdicts.parquet"
        return paths.lake_events / f"dt={name}" / "events.parquet"

    return output


def _ingest_events(run: _Run, files: list[tuple[date, int, Path]], paths) -> None:
    """Validate the hour files day by day and merge each event day into its partition."""
    files = _skip_unchanged(run, files, paths)
    if not files:
        return
    pending: dict[date, list] = {}
    writer = DayWriter(paths.lake_events)  # partitions are merged while the next day is read

    def flush(before: date | None) -> None:
        for d in sorted(pending):
            if before is None or d < before:
                writer.submit(d, pending.pop(d))

    by_dt: dict[date, list[tuple[int, Path]]] = {}
    for dt, hour, path in files:
        by_dt.setdefault(dt, []).append((hour, path))
    try:
        _read_days(run, by_dt, pending, flush)
    except BaseException:
        writer.abort()
        raise
    for d, loaded, dups in writer.close():
        run.events.loaded += loaded
        run.events.duplicates += dups
        if loaded:
            run.days_written.add(d)


def _read_days(run: _Run, by_dt: dict, pending: dict, flush) -> None:
    """Read the raw days in order into ``pending``, flushing the days that are complete."""
    for n_dt, (dt, hours) in enumerate(sorted(by_dt.items()), start=1):
        t0 = time.perf_counter()
        day_read, day_bad, day_slow = _read_day(run, dt, hours, pending)
        run.events.read += day_read
        run.events.quarantined += day_bad
        # Late deliveries land up to about a day later: after dt=D, days before D-1 are
        # complete. D-1 waits for dt=D+1's stragglers too unless memory says otherwise
        # (then its stragglers are merged into the written partition: one more rewrite).
        flush(before=dt - timedelta(days=1))
        if sum(t.num_rows for tables in pending.values() for t in tables) > PENDING_ROWS_CAP:
            flush(before=dt)
        elapsed = time.perf_counter() - t0
        log.info(
            "ingest: dt=%s (%d/%d): %d files, %d lines, %d quarantined, %d checked line by line"
            ", %.0f lines/s",
            dt,
            n_dt,
            len(by_dt),
            len(hours),
            day_read,
            day_bad,
            day_slow,
            day_read / elapsed if elapsed else 0.0,
        )
    flush(before=None)


def ingest(
    raw_dir: str | os.PathLike,
    day: date | str | None = None,
    *,
    fast: bool = True,
    manifest: bool = True,
    verify: bool = False,
) -> dict:
    """Load ``raw_dir`` (all of events/, or only events/dt=<day>/, plus users and labels).

    Returns ``{"read", "loaded", "quarantined", "duplicates"}`` summed over the streams, plus
    ``streams`` (the same per stream), ``days`` (partitions written), ``files``,
    ``skipped_files``, ``reasons`` (quarantine reason -> count) and ``seconds``.
    ``fast=False`` validates every line with the per-line path (the benchmark's baseline).
    ``manifest=False`` reads every hour file even if the lake holds it unchanged
    (:mod:`vigil.lake.manifest`; ``unchanged_files`` counts those skipped). ``verify=True``
    hashes every file the manifest knows instead of trusting its recorded stat
    (``hashed_files`` counts the known files hashed).
    """
    started = time.perf_counter()
    raw = Path(raw_dir).expanduser().resolve()
    day = _parse_day(day)
    _check_raw_dir(raw)
    paths = config.paths()
    run = _Run(raw=raw, fast=fast)
    with _lake_lock(paths.ingest_state):
        if manifest:
            run.manifest = Manifest.load(
                paths.ingest_state / "manifest.json", config.max_event_age_days(), verify=verify
            )
            run.output = _outputs(paths)
        remove_orphan_temp_files(paths.lake)
        files, skipped = discover_event_files(raw, day)
        for name in skipped:
            log.warning("ingest: skipping %s: not named events/dt=YYYY-MM-DD/hour=HH.jsonl", name)
        _ingest_events(run, files, paths)
        users = ingest_snapshot(
            raw, "users.jsonl", check_user, user_schema, "user_id", paths.lake_users, run
        )
        labels = ingest_snapshot(
            raw, "labels.jsonl", check_label, label_schema, "post_id", paths.lake_labels, run
        )
        accounts = ingest_account_streams(raw, paths, run)
        service = ingest_service_logs(paths, run)
        rules = {name: Counts(**c) for name, c in ingest_rule_logs(paths, run).items()}
        quarantine_total = _write_quarantine(run, paths)
        if run.manifest is not None:
            run.manifest.save(_outputs(paths), quarantine_total)
        streams = {"events": run.events, "users": users, "labels": labels} | accounts | service
        streams |= rules
        result = _summary(run, streams, files, skipped, quarantine_total, started)
        _append_log(paths.ingest_state / "ingest_log.jsonl", raw, day, result)
    log.info(
        "ingest: read %d, loaded %d, quarantined %d, duplicates %d (%d files, %d partitions written) "
        "in %.1f s",
        result["read"],
        result["loaded"],
        result["quarantined"],
        result["duplicates"],
        len(files),
        len(run.days_written),
        result["seconds"],
    )
    return result


def _write_quarantine(run: _Run, paths) -> int:
    """Replace the quarantine rows of the sources read; its row count. When nothing was read
    the file stays as it is, and its count is the manifest's if the file is as that run left it
    (no Parquet read: a re-ingest of unchanged input does not import pyarrow)."""
    dest = paths.quarantine / "quarantine.parquet"
    if run.sources:
        return write_quarantine(dest, run.quarantine, run.sources)
    if not dest.exists():  # nothing read and no rejected row yet: no file (write_quarantine's)
        return 0
    recorded = run.manifest.recorded_quarantine_rows(dest) if run.manifest is not None else None
    return parquet_rows(dest) if recorded is None else recorded


def _summary(run: _Run, streams: dict, files, skipped, quarantine_total: int, started) -> dict:
    for name, c in streams.items():
        assert c.read == c.loaded + c.quarantined + c.duplicates, (name, c)
    total = Counts(*(sum(getattr(c, f) for c in streams.values()) for f in Counts().as_dict()))
    return total.as_dict() | {
        "streams": {name: c.as_dict() for name, c in streams.items()},
        "days": [d.isoformat() for d in sorted(run.days_written)],
        "files": len(files),
        "unchanged_files": run.unchanged_files,
        "hashed_files": run.manifest.hashed if run.manifest is not None else 0,
        "skipped_files": skipped,
        "reasons": dict(Counter(q[4] for q in run.quarantine).most_common()),
        "quarantine_rows": quarantine_total,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _batches(hours: list[tuple[int, Path]], budget: int):
    """Consecutive hour files, grouped until their size reaches ``budget`` bytes."""
    batch, size = [], 0
    for hour, path in hours:
        batch.append((hour, path))
        size += path.stat().st_size
        if size >= budget:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _split_by_day(table, pending: dict) -> list[date]:
    """Add the table's rows to ``pending`` by UTC day of event_ts; returns those days."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if table.num_rows == 0:
        return []
    days = pc.cast(table["event_ts"], pa.date32())
    unique = pc.unique(days)
    if len(unique) == 1:
        pending.setdefault(unique[0].as_py(), []).append(table)
        return [unique[0].as_py()]
    for i in range(len(unique)):
        day = unique[i]  # an Arrow scalar: pa.scalar(...) would import pandas
        pending.setdefault(day.as_py(), []).append(table.filter(pc.equal(days, day)))
    return unique.to_pylist()


def _append_log(path: Path, raw: Path, day: date | None, result: dict) -> None:
    entry = {
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "raw_dir": str(raw),
        "day": day.isoformat() if day else None,
    } | {k: v for k, v in result.items() if k != "skipped_files"}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")


# ---------------------------------------------------------------------------------------------
# CLI.


def _day_arg(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date: use YYYY-MM-DD") from None


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--raw",
        type=Path,
        default=None,
        help="raw log directory written by `vigil simulate` (default: $VIGIL_HOME/raw)",
    )
    parser.add_argument(
        "--day",
        type=_day_arg,
        default=None,
        help="only load events/dt=YYYY-MM-DD/ (plus users and labels); default: every day",
    )
    parser.add_argument("--json", action="store_true", help="print the counts as one JSON object")
    parser.add_argument(
        "--verify",
        action="store_true",
        help="hash every raw file the manifest knows instead of trusting its recorded size, "
        "mtime, ctime and inode (a full check; still skips files whose content is unchanged)",
    )


def run(args: argparse.Namespace) -> int:
    raw = args.raw if args.raw is not None else config.paths().raw
    result = ingest(raw, day=args.day, verify=args.verify)
    if args.json:
        print(json.dumps(result))
        return 0
    lake = config.paths().lake
    print(f"Ingested {raw} into {lake} in {result['seconds']:.1f} s ({result['files']} hour files)")
    print(f"{'stream':<8} {'read':>12} {'loaded':>12} {'quarantined':>12} {'duplicates':>12}")
    rows = list(result["streams"].items()) + [("total", {k: result[k] for k in Counts().as_dict()})]
    for name, c in rows:
        print(
            f"{name:<8} {c['read']:>12,} {c['loaded']:>12,} {c['quarantined']:>12,} "
            f"{c['duplicates']:>12,}"
        )
    if result["days"]:
        print(
            f"partitions written: {len(result['days'])} ({result['days'][0]} .. {result['days'][-1]})"
        )
    else:
        print("partitions written: none (nothing new)")
    if result["reasons"]:
        print("quarantine reasons:")
        for reason, count in result["reasons"].items():
            print(f"  {count:>10,}  {reason}")
    if result["skipped_files"]:
        print(f"skipped (badly named) files: {', '.join(result['skipped_files'])}")
    return 0
