"""The resident ``vigil uam-update --watch`` process: what it watches and what it keeps ready.

It polls the lake's day files (:func:`lake_signature`), keeps large freed blocks in its heap
(:func:`keep_freed_memory`), counts one day at start so the first update finds its memory warm
(:func:`warm_up`), and holds the window's totals between days (:func:`load_totals`). The loop
itself is :func:`vigil.uam.update.watch`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from vigil import config
from vigil.uam import daily as uam_daily
from vigil.uam.window import Totals, state_key
from vigil.warehouse import lock as warehouse_lock

log = logging.getLogger(__name__)


def lake_signature(lake: Path) -> tuple:
    """What changes when ingest writes a day file (atomically, by rename)."""
    out = []
    for day_dir in sorted((lake / "events").glob("dt=*")):
        try:
            st = (day_dir / "events.parquet").stat()
        except FileNotFoundError:
            continue
        out.append((day_dir.name, st.st_size, st.st_mtime_ns))
    return tuple(out)


def is_lock_conflict(exc: BaseException) -> bool:
    """A DuckDB error saying another process holds the warehouse file."""
    import duckdb

    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def keep_freed_memory() -> bool:
    """Make glibc keep large freed blocks for reuse instead of returning them to the OS.

    Counting a day allocates a few arrays of tens of MB (3.3M events: 26 MB each). glibc maps such
    blocks afresh on every allocation and unmaps them on free, so each day faults its pages in
    again, and that costs more than the counting: 0.06-0.24 s against 0.04-0.06 s for the numpy
    passes of a 3.3M-event day, measured on this machine. A resident process serves them from its
    heap and keeps what it frees (``mallopt``), so its resident memory stays at the largest day's
    working set (RSS in ``make bench``). Returns False where there is no glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    if not (mallopt(m_mmap_threshold, 1 << 30) and mallopt(m_trim_threshold, 1 << 31)):
        return False
    import pyarrow as pa

    # pyarrow allocates from its own pool (mimalloc), which hands idle pages back after a moment:
    # between two days it would have, so Arrow uses glibc's heap too
    pa.set_memory_pool(pa.system_memory_pool())
    return True


def warm_up(lake: Path) -> None:
    """Count the lake's latest day once and drop the result: the first day the process applies
    then finds the kernel's memory in its heap (:func:`keep_freed_memory`) instead of faulting it
    in, as every later day does."""
    files = sorted((lake / "events").glob("dt=*/events.parquet"))
    if not files:
        return
    import pyarrow.parquet as pq

    started = time.perf_counter()
    day = files[-1].parent.name.removeprefix("dt=")
    rows = pq.ParquetFile(files[-1]).metadata.num_rows
    if (
        rows * uam_daily.POLARS_BYTES_PER_ROW
        > uam_daily.parse_bytes(config.duckdb_memory_limit()) // 2
    ):
        return  # such a day is counted by DuckDB, which keeps its own buffers
    users = sum(
        batch.num_rows for batch in uam_daily.daily_sorted(lake, [(day, rows)], log=log.info)
    )
    log.info(
        "uam-update: warmed up on %s (%s lake rows, %s users, %.2f s)",
        day,
        f"{rows:,}",
        f"{users:,}",
        time.perf_counter() - started,
    )


def load_totals() -> Totals:
    """The window's totals as the warehouse has them now (empty when it has no UAM tables yet or
    another process holds it: the first update then loads them)."""
    totals = Totals()
    try:
        with warehouse_lock.reading("vigil uam-update", wait=False) as con:
            if state_key(con) is not None:
                totals.load(con)
    except Exception as exc:  # noqa: BLE001 - a missing table or a busy file: load later
        log.info("uam-update: totals not loaded at start (%s)", str(exc).splitlines()[0][:160])
    if totals.key is not None:
        log.info("uam-update: %s users' totals in memory (window ends %s)",
                 f"{int((totals.values > 0).sum()):,}", totals.key[0])  # fmt: skip
    return totals
