"""Lake files: atomic Parquet writes, checked reads, day partitions merged, snapshots replaced."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from datetime import date
from pathlib import Path

from vigil import config
from vigil.contracts import ADDED_DECISION_COLUMNS, ADDED_EVENT_COLUMNS, event_schema
from vigil.errors import UserError
from vigil.lake.arrays import from_numpy, to_numpy

log = logging.getLogger(__name__)
_ADDED_COLUMNS = tuple((name, "string") for name in ADDED_EVENT_COLUMNS) + ADDED_DECISION_COLUMNS

# Dictionary-encode only low-cardinality columns: trying it on ids and text costs time.
LOW_CARDINALITY = frozenset(
    (
        "action",
        "country",
        "source_file",
        "home_country",
        "harm_types",
        "queue",
        "stream",
        "reason",
        "raw_dir",
    )
)


def write_parquet(table, dest: Path) -> None:
    """Write atomically: a temp file in the same directory (not matching *.parquet), then rename."""
    import pyarrow.parquet as pq

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.{os.getpid()}.tmp"
    try:
        dictionary = [c for c in table.column_names if c in LOW_CARDINALITY]
        # A CRC32 in every page header: a byte that changes later fails the read (read_parquet,
        # check_readable) instead of decoding into other values.
        pq.write_table(
            table,
            tmp,
            compression="zstd",
            use_dictionary=dictionary,
            row_group_size=128 * 1024,
            write_page_checksum=True,
        )
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def remove_orphan_temp_files(root: Path) -> int:
    """Delete the temp files of writers that died before their rename (call with the lake lock
    held: then no live writer owns one). They never match ``*.parquet``, so readers never saw them.
    """
    removed = 0
    for tmp in root.rglob(".*.parquet.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed += 1
    if removed:
        log.warning("lake: removed %d temp file(s) left by an interrupted writer", removed)
    return removed


def read_parquet(path: Path, schema, columns=None):
    """A lake Parquet file in ``schema`` (or only ``columns``). A damaged or foreign file is one
    clear error naming it and the fix."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # ParquetFile, not pq.read_table: the dataset reader behind read_table imports pandas.
        with pq.ParquetFile(path, page_checksum_verification=True) as parquet:
            table = parquet.read(columns=columns)
        if columns is None:
            # a file written before the column existed (an event partition, a decisions file)
            for name, kind in _ADDED_COLUMNS:
                if name in schema.names and name not in table.column_names:
                    nulls = pa.nulls(table.num_rows, pa.type_for_alias(kind))
                    table = table.append_column(name, nulls)
            table = table.select(schema.names).cast(schema)
    # a changed byte in the footer can also surface as a UnicodeDecodeError (a ValueError)
    except (pa.ArrowException, OSError, KeyError, ValueError) as exc:
        raise damaged(path, exc) from None
    return table


def check_readable(paths, columns: list[str] | None = None) -> None:
    """Raise the :func:`damaged` error for the first of ``paths`` that cannot be read whole: a
    truncated or foreign file (its footer), or a page whose bytes changed after it was written
    (the page checksums :func:`write_parquet` stores). Reads every page of ``columns`` (default:
    all), one row group at a time. For readers outside ingest (the raw gate, dbt, uam-update)
    whose engines (DuckDB, Polars) do not verify page checksums and would otherwise fail with a
    low-level error or read wrong values."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    started, groups_read = time.perf_counter(), 0
    for path in paths:
        try:
            with pq.ParquetFile(path, page_checksum_verification=True) as parquet:
                for i in range(parquet.num_row_groups):
                    parquet.read_row_group(i, columns=columns)
                    groups_read += 1
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise damaged(Path(path), exc) from None
    if groups_read:
        log.debug(
            "lake: %d row group(s) of %d file(s) read and checked in %.2f s",
            groups_read,
            len(paths),
            time.perf_counter() - started,
        )


def damaged(path: Path, exc: Exception) -> UserError:
    """The error for a lake file that cannot be read as its contract says: it names the file and
    the command that rebuilds it from the raw folder(s) the lake was loaded from."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return UserError(
        f"lake file {path} is damaged or not in the lake's format ({reason}): delete it and run "
        f"{_rebuild_command(path)} (without --day) to rebuild it from the raw logs."
    )


def _rebuild_command(path: Path) -> str:
    """`vigil ingest --raw DIR` with the raw folder(s) the ingest log names for ``path``: the runs
    that wrote its day for a day partition, every run for the other files (RAW when none)."""
    import json

    day = path.parent.name.removeprefix("dt=") if path.parent.name.startswith("dt=") else None
    every: list[str] = []
    wrote_day: list[str] = []
    with contextlib.suppress(OSError):
        log_file = config.paths().ingest_state / "ingest_log.jsonl"
        for line in log_file.read_text(encoding="utf-8", errors="replace").splitlines():
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                entry = json.loads(line)
                raw_dir = entry.get("raw_dir")
                if not isinstance(raw_dir, str):
                    continue
                if raw_dir not in every:
                    every.append(raw_dir)
                if day in (entry.get("days") or ()) and raw_dir not in wrote_day:
                    wrote_day.append(raw_dir)
    raw_dirs = wrote_day or every
    if len(raw_dirs) == 1:
        return f"`vigil ingest --raw {raw_dirs[0]}`"
    if raw_dirs:
        return (
            "`vigil ingest --raw DIR` for each raw folder it was loaded from "
            f"({', '.join(raw_dirs)})"
        )
    return "`vigil ingest --raw RAW` (RAW: the raw folder it was loaded from)"


def first_new_rows(ids, existing_ids=None):
    """Sorted indices of the rows whose id is not in ``existing_ids`` nor in an earlier row,
    or None when that is every row. ``ids``: non-null strings (an Array or ChunkedArray).

    Arrow's dictionary encoding numbers the distinct ids in order of first appearance, so a row
    is an id's first exactly when its code exceeds every earlier code (one hash pass and one
    running maximum; no sort, no DuckDB)."""
    import numpy as np
    import pyarrow.compute as pc

    n = len(ids)
    codes = _codes(ids)
    keep = None
    if n and codes.max() + 1 < n:  # some id repeats
        earlier_max = np.empty(n, dtype=np.int64)
        earlier_max[0] = -1
        np.maximum.accumulate(codes[:-1], out=earlier_max[1:])
        keep = codes > earlier_max
    if existing_ids is not None and len(existing_ids):
        known = to_numpy(pc.is_in(ids, value_set=existing_ids))
        keep = ~known if keep is None else keep & ~known
    if keep is None or keep.all():
        return None
    return np.flatnonzero(keep).astype(np.int64)


def keep_last(table, key: str):
    """The rows of ``table`` that are the last with their ``key`` (null is a key), in table order."""
    import numpy as np

    if table.num_rows == 0:
        return table
    codes = _codes(table[key])
    # np.unique's return_index gives first occurrences: in the reversed codes, the last ones.
    _, first_from_end = np.unique(codes[::-1], return_index=True)
    return table.take(from_numpy(np.sort(table.num_rows - 1 - first_from_end)))


def _codes(values):
    """int64 codes of ``values``, numbered by first appearance (equal values, and nulls, share one)."""
    import numpy as np
    import pyarrow as pa

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    encoded = values.dictionary_encode(null_encoding="encode")
    return to_numpy(encoded.indices).astype(np.int64)


def merge_day(lake_events: Path, day: date, new_tables: list) -> tuple[int, int]:
    """Merge validated rows into the day's partition. Returns (loaded, duplicates).

    Rows whose event_id is already in the partition, or earlier among the new rows, are
    duplicates. The partition is rewritten only when something new arrives.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    new = pa.concat_tables(new_tables).combine_chunks()  # take() on many chunks is slow
    offered = new.num_rows
    dest = lake_events / f"dt={day.isoformat()}" / "events.parquet"
    existing_ids = None
    if dest.exists():
        existing_ids = read_parquet(dest, None, columns=["event_id"])["event_id"]
    keep = first_new_rows(new["event_id"], existing_ids)
    loaded = offered if keep is None else len(keep)
    if not loaded:
        return 0, offered
    if dest.exists():
        if keep is not None:
            new = new.take(from_numpy(keep))
        existing = read_parquet(dest, event_schema())
        new = pa.concat_tables([existing, new]).combine_chunks()
        keep = None
    # Arrow's sort is stable: ties keep partition rows first, then file and line order.
    order = to_numpy(
        pc.sort_indices(new, sort_keys=[("user_id", "ascending"), ("event_ts", "ascending")])
    )
    if keep is not None:  # one take: the stable order of all rows, restricted to the kept ones
        kept = np.zeros(offered, dtype=bool)
        kept[keep] = True
        order = order[kept[order]]
    write_parquet(new.take(from_numpy(order)), dest)
    return loaded, offered - loaded


class DayWriter:
    """Runs :func:`merge_day` for each submitted day on one background thread, in submission
    order (a day merged twice sees its first write), so the dedupe, sort and Parquet write of
    finished days overlap the parsing of the next raw day (Arrow and the Parquet writer release
    the GIL). At most ``max_waiting`` merges wait; :meth:`close` returns every
    ``(day, loaded, duplicates)`` and raises the first error."""

    def __init__(self, lake_events: Path, max_waiting: int = 2) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._lake_events = lake_events
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lake-day-writer")
        self._waiting: list = []  # (day, future), oldest first
        self._done: list[tuple[date, int, int]] = []
        self._max_waiting = max_waiting

    def submit(self, day: date, tables: list) -> None:
        future = self._pool.submit(merge_day, self._lake_events, day, tables)
        self._waiting.append((day, future))
        while len(self._waiting) > self._max_waiting:
            self._collect_oldest()

    def _collect_oldest(self) -> None:
        day, future = self._waiting.pop(0)
        self._done.append((day, *future.result()))

    def close(self) -> list[tuple[date, int, int]]:
        try:
            while self._waiting:
                self._collect_oldest()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
        return self._done

    def abort(self) -> None:
        """Stop after the merge under way (on an error elsewhere); its own errors are dropped."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def write_snapshot(dest: Path, table, key: str) -> tuple[int, int]:
    """Replace a snapshot file. Returns (changed_or_new rows, rows identical to the lake's)."""
    table = table.sort_by([(key, "ascending")])
    if dest.exists():
        old = read_parquet(dest, table.schema)
        if old.equals(table):
            return 0, table.num_rows
        # Rows identical to an existing row are not "loaded" again.
        old_rows = set(zip(*[old[c].to_pylist() for c in old.column_names]))
        new_rows = list(zip(*[table[c].to_pylist() for c in table.column_names]))
        same = sum(1 for r in new_rows if r in old_rows)
    else:
        same = 0
    write_parquet(table, dest)
    return table.num_rows - same, same


def duckdb_connection(paths):
    """An in-memory DuckDB for deduplication, within the configured memory and temp folder."""
    import duckdb

    paths.duckdb_temp.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(
        config={
            "threads": 1,
            "memory_limit": config.duckdb_memory_limit(),
            "temp_directory": str(paths.duckdb_temp),
        }
    )
