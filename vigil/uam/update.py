"""Keep the UAM tables current as lake days land: ``vigil uam-update [--watch [--poll S]] [--json]``.

dbt builds the UAM tables (``int_user_active_minutes_daily``, ``user_active_minutes``,
``uam_histogram``) and stays their definition: full refreshes, backfills, late events and Spark
all go through it. A daily run that only adds new days does little work: count the new days
(vigil/uam/daily.py), then move the 30-day window by old totals - the days that left + the days
that entered, and rebuild the histogram; dbt's per-run machinery (three nodes, a Python model's
imports, materializations) costs more than that work (docs/decisions.md, "A resident
vigil uam-update"; figures in docs/benchmarks.md).

This module does that common case without dbt, on the tables and state dbt keeps, with the same
rule as the model's ``vigil.uam_window_delta`` macro, in one DuckDB transaction:

- ``int_user_active_minutes_daily``: the new days' rows (delete+insert on activity_date) and
  ``__days`` (which days, from how many lake rows, written when);
- ``user_active_minutes``: the window moved from the state's as_of A to the latest lake day B;
- ``user_active_minutes__state``: (B, the newest daily write it has seen), as dbt's post-hook;
- ``uam_histogram``: rebuilt with the bucket width already in the table.

Anything the delta cannot do exactly (no state yet, a changed day on or before A, the window
moving by 30 days or more, an empty histogram) runs the same three dbt models instead and says
why. A later dbt run finds the new days already done (its incremental model selects none, and the
window moves by zero days), so dbt and this updater can alternate on one warehouse;
tests/dbt/test_uam_update.py checks both against a brute-force count and against dbt's own
full refresh, table by table.

``--watch`` is the resident form: one process, imports loaded once, polling the lake's day files
and applying each change. It holds the warehouse only while applying (DuckDB allows one process per
file while one writes; ``warehouse_lock.access`` makes Vigil's processes take turns): when dbt, a gate or
any other process holds it, the update waits for the next poll and says so.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from vigil import config
from vigil.errors import UserError
from vigil.uam import daily as uam_daily
from vigil.warehouse import dbt as warehouse
from vigil.warehouse import lock as warehouse_lock

log = logging.getLogger(__name__)

DAILY = "int_user_active_minutes_daily"
DAYS = f"{DAILY}__days"
UAM = "user_active_minutes"
STATE = f"{UAM}__state"
HISTOGRAM = "uam_histogram"
PARTITIONS = "stg_lake__event_partitions"
REQUIRED = (PARTITIONS, DAILY, DAYS, UAM, STATE, HISTOGRAM)
DBT_MODELS = [DAILY, UAM, HISTOGRAM]
WINDOW_DAYS = 30


@dataclass
class Plan:
    """What one update does: ``noop`` (nothing new), ``delta`` (move the window here) or ``dbt``
    (run the dbt models, for ``reason``)."""

    kind: str
    reason: str
    days: list[tuple[str, int]] = field(default_factory=list)  # (day, lake rows) to count
    window: tuple[str, str] | None = None  # (A, B): old and new as_of, 'YYYY-MM-DD'
    interval: int | None = None  # the histogram's bucket width, minutes


def _require_warehouse() -> config.Paths:
    paths = config.paths()
    if not paths.warehouse.exists():
        raise UserError(
            f"no warehouse at {paths.warehouse}: build it first with `vigil dbt all` "
            "(or `make run`), then `vigil uam-update` keeps its UAM tables current."
        )
    return paths


def connect() -> Any:
    """The warehouse with the settings dbt's profile gives it (memory limit, threads, temp
    directory, UTC)."""
    import duckdb

    paths = _require_warehouse()
    paths.duckdb_temp.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(
        str(paths.warehouse),
        config={
            "memory_limit": config.duckdb_memory_limit(),
            "threads": config.duckdb_threads(),
            "temp_directory": str(paths.duckdb_temp),
        },
    )
    con.execute("set TimeZone = 'UTC'; set preserve_insertion_order = false")
    return con


def plan(con: Any) -> Plan:
    """Decide the update from the warehouse's state, with the rule of ``vigil.uam_window_delta``
    (dbt/macros/vars.sql) plus one more condition: every day to count lies after A."""
    present = {
        row[0]
        for row in con.execute(
            "select table_name from information_schema.tables "
            "where table_catalog = current_database() and table_schema = 'main'"
        ).fetchall()
    }
    missing = [name for name in REQUIRED if name not in present]
    if PARTITIONS in missing:
        raise UserError(
            f"the warehouse has no {PARTITIONS} (the staging views over the lake): build them with "
            "`vigil dbt staging` (or `vigil dbt all`) first."
        )
    if missing:
        return Plan("dbt", f"the warehouse has no {', '.join(missing)} yet")
    # the lake's days and row counts, read once (the view reads every day file's footer)
    con.execute(f"create or replace temp table __vigil_partitions as select * from {PARTITIONS}")
    days = uam_daily.days_to_process(con, "__vigil_partitions", DAILY, DAYS)
    interval = con.execute(f"select min(upper - lower) from {HISTOGRAM}").fetchone()[0]
    row = con.execute(
        f"""
        select
            cast(state.as_of as varchar),
            cast((select max(event_date) from __vigil_partitions) as varchar),
            (select cast(min(activity_date) as varchar) from {DAYS}
             where written_at > state.built_at),
            state.built_at is null
        from {STATE} as state
        """
    ).fetchall()
    if len(row) != 1 or row[0][0] is None or row[0][1] is None or row[0][3]:
        return Plan("dbt", "user_active_minutes has no delta state yet", days, interval=interval)
    a, b, first_changed, _ = row[0]
    shift = (date.fromisoformat(b) - date.fromisoformat(a)).days
    if interval is None:
        return Plan("dbt", "uam_histogram is empty (no bucket width to keep)", days)
    if shift < 0 or shift >= WINDOW_DAYS:
        return Plan("dbt", f"the window moves {a} -> {b} ({shift} days)", days, interval=interval)
    if first_changed is not None and first_changed <= a:
        return Plan("dbt", f"day {first_changed} was rewritten after the table was built", days,
                    interval=interval)  # fmt: skip
    changed_early = [day for day, _ in days if day <= a]
    if changed_early:
        return Plan(
            "dbt",
            f"lake day {changed_early[0]} changed on or before the window's end {a} (late events)",
            days,
            interval=interval,
        )
    if not days and shift == 0:
        return Plan("noop", f"nothing new in the lake (window ends {a})", window=(a, b),
                    interval=interval)  # fmt: skip
    return Plan("delta", f"window {a} -> {b}", days, (a, b), interval)


def _state_key(con: Any) -> tuple | None:
    row = con.execute(f"select cast(as_of as varchar), epoch_us(built_at) from {STATE}").fetchall()
    return tuple(row[0]) if len(row) == 1 else None


class Totals:
    """The window's per-user totals as this process last wrote them (an int64 array indexed by
    user_id), and the ``user_active_minutes__state`` row they belong to.

    A resident process keeps them between days, so moving the window reads only the daily rows of
    the days that left and entered (1.8M rows at 100M events) and writes the new totals, instead
    of summing every user's old total again in DuckDB (0.13-0.21 s at 1M users; fetching the old
    totals back each time would cost as much). Any other writer (dbt) rewrites the state row, which
    invalidates them; ids outside [0, MAX_ID) are not kept (the SQL path handles any id)."""

    MAX_ID = 1 << 25  # 256 MB of int64 at most

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.values: Any = None

    def _fits(self, ids: Any) -> bool:
        return not len(ids) or (int(ids.min()) >= 0 and int(ids.max()) < self.MAX_ID)

    def load(self, con: Any) -> None:
        """Take the totals from ``user_active_minutes`` as it is on ``con``."""
        import numpy as np

        self.key = None
        got = con.execute(f"select user_id, uam from {UAM}").fetchnumpy()
        ids, uam = got["user_id"], got["uam"]
        if not self._fits(ids):
            return
        values = np.zeros(int(ids.max()) + 1 if len(ids) else 1, dtype=np.int64)
        values[ids] = uam
        self.values, self.key = values, _state_key(con)

    def move(self, con: Any, a: str, b: str) -> bool:
        """Write ``user_active_minutes`` for the window moved from A to B, as the delta SQL does
        (old totals - days that left + days that entered, users above 0); False, having written
        nothing, when these totals are not the table's."""
        import numpy as np
        import pyarrow as pa

        if self.key is None or self.key != _state_key(con):
            return False
        got = con.execute(
            f"""
            select user_id,
                   case when activity_date > date '{a}' then active_minutes
                        else -active_minutes end as minutes
            from {DAILY}
            where activity_date between cast(date '{a}' - 29 as date)
                                    and cast(date '{b}' - 30 as date)
               or activity_date between cast(date '{a}' + 1 as date) and date '{b}'
            """
        ).fetchnumpy()
        ids, minutes = got["user_id"], got["minutes"]
        if not self._fits(ids):
            self.key = None
            return False
        values = self.values
        if len(ids) and int(ids.max()) >= len(values):
            values = np.concatenate([values, np.zeros(int(ids.max()) + 1 - len(values), np.int64)])
        # a user's minutes per day are below 1441 and a window holds 30 days: exact in float64
        values += np.bincount(ids, weights=minutes, minlength=len(values)).astype(np.int64)
        np.maximum(values, 0, out=values)  # a user whose total falls to 0 leaves the table
        kept = np.flatnonzero(values)
        # Arrow arrays over the numpy buffers: pyarrow's numpy conversion imports pandas (0.26 s)
        table = pa.Table.from_arrays(
            [
                uam_daily._int_array(kept, pa.int64()),
                uam_daily._int_array(values[kept], pa.int64()),
            ],
            names=["user_id", "uam"],
        )
        con.register("__vigil_totals", table)
        con.execute(
            f"create or replace table {UAM} as select cast(user_id as bigint) as user_id, "
            f"cast(date '{b}' as date) as as_of, cast(uam as bigint) as uam from __vigil_totals"
        )
        con.unregister("__vigil_totals")
        self.values = values
        return True


def apply_delta(
    con: Any, lake: Path, p: Plan, engine: str = "auto", totals: Totals | None = None
) -> dict:
    """Count ``p.days`` and move the window, in one transaction (from ``totals`` when they are
    the table's). Returns counts and timings."""
    a, b = p.window
    timings: dict[str, float] = {}
    started = time.perf_counter()
    con.execute("begin transaction")
    try:
        chosen = "-"
        if p.days:
            chosen, rows = uam_daily.daily_counts(con, lake, p.days, engine)
            if chosen != "duckdb":  # count here (the daily rows are small: ~1/4 of a day's events)
                rows = rows.read_all()
        timings["count"] = time.perf_counter() - started
        t0 = time.perf_counter()
        if p.days:
            listed = ", ".join(f"date '{day}'" for day, _ in p.days)
            con.execute(f"delete from {DAILY} where activity_date in ({listed})")
            if chosen == "duckdb":
                rows.insert_into(DAILY)
            else:
                con.register("__vigil_new_days", rows)
                con.execute(f"insert into {DAILY} by name select * from __vigil_new_days")
                con.unregister("__vigil_new_days")
            con.execute(f"delete from {DAYS} where activity_date in ({listed})")
            con.execute(
                f"insert into {DAYS} select activity_date, max(partition_rows), now() "
                f"from {DAILY} where activity_date in ({listed}) group by activity_date"
            )
        timings["insert"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        moved_in_memory = totals is not None and totals.move(con, a, b)
        if not moved_in_memory:
            _move_window_sql(con, a, b)
        # as the model's post-hook vigil.record_uam_state()
        con.execute(
            f"create or replace table {STATE} as select (select max(as_of) from {UAM}) as as_of, "
            f"(select max(written_at) from {DAYS}) as built_at"
        )
        if totals is not None:
            if moved_in_memory:
                totals.key = _state_key(con)
            else:
                totals.load(con)  # for the next day
        timings["window"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        s = int(p.interval)
        # as uam_histogram.sql: every bucket from 0 to the highest non-empty one
        con.execute(
            f"""
            create or replace table {HISTOGRAM} as
            with bucketed as (
                select cast(floor(uam / {s}) as bigint) as bucket, count(*) as users
                from {UAM} group by 1
            ),
            buckets as (
                select unnest(generate_series(cast(0 as bigint), cast(max(bucket) as bigint)))
                    as bucket
                from bucketed
            )
            select
                cast(buckets.bucket * {s} as bigint) as lower,
                cast((buckets.bucket + 1) * {s} as bigint) as upper,
                cast(coalesce(bucketed.users, 0) as bigint) as users
            from buckets
            left join bucketed on bucketed.bucket = buckets.bucket
            """
        )
        timings["histogram"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        con.execute("commit")
        timings["commit"] = time.perf_counter() - t0
    except BaseException:
        con.execute("rollback")
        if totals is not None:
            totals.key = None
        raise
    users, buckets = con.execute(
        f"select (select count(*) from {UAM}), (select count(*) from {HISTOGRAM})"
    ).fetchone()
    return {
        "engine": chosen,
        "lake_rows": sum(rows for _, rows in p.days),
        "users": users,
        "buckets": buckets,
        "window_in_memory": moved_in_memory,
        "timings": {k: round(v, 4) for k, v in timings.items()},
    }


def _move_window_sql(con: Any, a: str, b: str) -> None:
    """user_active_minutes for the window moved from A to B, with the SQL of the dbt model."""
    # as user_active_minutes.sql (its pre-hook): user ids spanning up to 2^22 values are summed
    # into an array indexed by user_id instead of a hash table (0.28 -> 0.14-0.17 s at 1M users)
    con.execute("set perfect_ht_threshold = 22")
    try:
        # as user_active_minutes.sql's delta branch: old totals - days that left + days that entered
        con.execute(
            f"""
            create or replace table {UAM} as
            select user_id, as_of, uam from (
                select user_id, cast(date '{b}' as date) as as_of, cast(sum(uam) as bigint) as uam
                from (
                    select user_id, uam from {UAM}
                    union all
                    select user_id, -active_minutes from {DAILY}
                    where activity_date between cast(date '{a}' - 29 as date)
                                            and cast(date '{b}' - 30 as date)
                    union all
                    select user_id, active_minutes from {DAILY}
                    where activity_date between cast(date '{a}' + 1 as date) and date '{b}'
                ) as moved
                group by user_id
            ) as windowed
            where uam > 0
            """
        )
    finally:
        con.execute("reset perfect_ht_threshold")


def update_once(engine: str = "auto", wait: bool = True, totals: Totals | None = None) -> dict:
    """One update of the UAM tables from the lake as it is now, holding the warehouse against
    Vigil's other writers and readers (``wait=False``: raise :class:`warehouse_lock.WarehouseBusy`
    instead of waiting). Returns what was done: {"kind", "reason", "days", "as_of", "seconds",
    ...}; ``seconds`` counts from holding the warehouse. ``totals``: what a resident process
    keeps between updates (:class:`Totals`)."""
    with warehouse_lock.access(exclusive=True, purpose="vigil uam-update", wait=wait):
        return _update(engine, totals)


def _update(engine: str, totals: Totals | None) -> dict:
    started = time.perf_counter()
    paths = config.paths()
    con = connect()
    opened = time.perf_counter()
    try:
        p = plan(con)
        planned = time.perf_counter()
        result: dict[str, Any] = {
            "kind": p.kind,
            "reason": p.reason,
            "days": [d for d, _ in p.days],
        }
        if p.kind == "delta":
            result.update(apply_delta(con, paths.lake, p, engine, totals))
        result["as_of"] = p.window[1] if p.window else None
    finally:
        closing = time.perf_counter()
        con.close()  # checkpoints: part of the update's cost
    if p.kind == "delta":
        result["timings"] = {
            "connect": round(opened - started, 4),
            "plan": round(planned - opened, 4),
            **result["timings"],
            "close": round(time.perf_counter() - closing, 4),
        }
    if p.kind == "dbt":
        log.info("uam-update: %s: running the dbt UAM models instead", p.reason)
        dbt_vars: dict[str, Any] = {"uam_daily_engine": engine}
        if p.interval:
            dbt_vars["uam_interval"] = p.interval
        summary = warehouse.run_dbt("run", DBT_MODELS, dbt_vars=dbt_vars, label="dbt run uam")
        result["dbt_seconds"] = summary["seconds"]
        with warehouse_lock.reading("vigil uam-update") as con:
            result["as_of"], result["users"] = con.execute(
                f"select cast(max(as_of) as varchar), count(*) from {UAM}"
            ).fetchone()
    result["seconds"] = round(time.perf_counter() - started, 4)
    if p.kind == "dbt":
        log.info(
            "uam-update: the dbt UAM models ran: window ends %s, %s users, %.2f s",
            result["as_of"],
            f"{result['users']:,}",
            result["seconds"],
        )
    if p.kind == "delta":
        log.info(
            "uam-update: %s, %d new day(s) (%s, %s lake rows, counted with %s): %s users, "
            "%d histogram buckets, %.2f s",
            p.reason,
            len(p.days),
            ", ".join(result["days"]) or "none",
            f"{result['lake_rows']:,}",
            result["engine"],
            f"{result['users']:,}",
            result["buckets"],
            result["seconds"],
        )
    elif p.kind == "noop":
        log.info("uam-update: %s; tables unchanged (%.2f s)", p.reason, result["seconds"])
    return result


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


def _is_lock_conflict(exc: BaseException) -> bool:
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


def _warm_up(lake: Path) -> None:
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


def _load_totals() -> Totals:
    """The window's totals as the warehouse has them now (empty when it has no UAM tables yet or
    another process holds it: the first update then loads them)."""
    totals = Totals()
    try:
        with warehouse_lock.reading("vigil uam-update", wait=False) as con:
            if _state_key(con) is not None:
                totals.load(con)
    except Exception as exc:  # noqa: BLE001 - a missing table or a busy file: load later
        log.info("uam-update: totals not loaded at start (%s)", str(exc).splitlines()[0][:160])
    if totals.key is not None:
        log.info("uam-update: %s users' totals in memory (window ends %s)",
                 f"{int((totals.values > 0).sum()):,}", totals.key[0])  # fmt: skip
    return totals


def watch(
    poll: float,
    engine: str = "auto",
    stop: threading.Event | None = None,
    emit: Any = None,
) -> int:
    """Resident loop: apply every change of the lake's day files until ``stop`` (SIGINT/SIGTERM
    from :func:`run`). Returns the number of updates that changed the tables."""
    stop = stop or threading.Event()
    lake = config.paths().lake
    _require_warehouse()  # say so now, not at the first lake change
    import numpy  # noqa: F401  the counting kernel's imports, loaded once for every update
    import pyarrow.parquet  # noqa: F401

    if not keep_freed_memory():
        log.info("uam-update: no glibc mallopt here: each day's arrays are mapped afresh")
    _warm_up(lake)
    totals = _load_totals()
    log.info("uam-update: watching %s every %.1f s (Ctrl-C to stop)", lake / "events", poll)
    seen: tuple | None = None
    applied = 0
    while not stop.is_set():
        signature = lake_signature(lake)
        if signature != seen:
            try:
                result = update_once(engine, wait=False, totals=totals)
            except Exception as exc:
                if isinstance(exc, warehouse_lock.WarehouseBusy) or _is_lock_conflict(exc):
                    # another process holds the file: retry at the next poll
                    log.info("uam-update: the warehouse is busy (%s); retrying in %.1f s",
                             str(exc).splitlines()[0][:160], poll)  # fmt: skip
                elif isinstance(exc, UserError):
                    # a failed dbt run, say: stay up, and try again when the lake changes
                    log.error("uam-update: %s (next try when the lake changes)", exc)
                    seen = signature
                else:
                    raise
            else:
                seen = signature
                applied += result["kind"] != "noop"
                if emit:
                    emit(result)
        stop.wait(poll)
    log.info("uam-update: stopped after %d update(s)", applied)
    return applied


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--watch", action="store_true", help="stay resident: apply each lake change as it lands"
    )
    parser.add_argument(
        "--poll", type=float, default=5.0, metavar="S", help="--watch: seconds between lake checks"
    )
    parser.add_argument(
        "--engine", default="auto", choices=uam_daily.ENGINES, help="daily counting engine"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line per update")


def run(args: argparse.Namespace) -> int:
    if args.poll <= 0:
        raise UserError(f"--poll {args.poll} must be a positive number of seconds, e.g. 5.")

    def emit(result: dict) -> None:
        if args.json:
            print(json.dumps(result), flush=True)

    if not args.watch:
        emit(update_once(args.engine))
        return 0
    stop = threading.Event()
    old = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        watch(args.poll, args.engine, stop, emit)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    return 0
