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
tests/uam/test_uam_update.py checks both against a brute-force count and against dbt's own
full refresh, table by table. A run stopped between the window and the histogram (dbt commits
each model on its own) is finished by the next update, which finds the histogram behind the window.

``--watch`` is the resident form: one process, imports loaded once, polling the lake's day files
and applying each change. It holds the warehouse only while applying (DuckDB allows one process per
file while one writes; ``warehouse_lock.access`` makes Vigil's processes take turns): when dbt, a gate or
any other process holds it, the update waits for the next poll and says so (what the resident
process keeps ready: :mod:`vigil.uam.resident`; the window and histogram steps:
:mod:`vigil.uam.window`).
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
from vigil.lake.store import check_readable
from vigil.uam import daily as uam_daily
from vigil.uam import resident
from vigil.uam.window import (
    DAILY,
    DAYS,
    HISTOGRAM,
    STATE,
    UAM,
    WINDOW_DAYS,
    Totals,
    histogram_is_current,
    move_window,
    rebuild_histogram,
)
from vigil.warehouse import dbt as warehouse
from vigil.warehouse import lock as warehouse_lock

log = logging.getLogger(__name__)

PARTITIONS = "stg_lake__event_partitions"
REQUIRED = (PARTITIONS, DAILY, DAYS, UAM, STATE, HISTOGRAM)
DBT_MODELS = [DAILY, UAM, HISTOGRAM]


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
        if not histogram_is_current(con, interval):
            # an earlier run stopped after moving the window, before the histogram: redo the
            # (empty) move, which rebuilds the histogram in the delta's transaction
            return Plan("delta", f"uam_histogram is behind user_active_minutes (window ends {a}; "
                        "an earlier run stopped between them)", [], (a, b), interval)  # fmt: skip
        return Plan("noop", f"nothing new in the lake (window ends {a})", window=(a, b),
                    interval=interval)  # fmt: skip
    return Plan("delta", f"window {a} -> {b}", days, (a, b), interval)


def _count_days(con: Any, lake: Path, days: list[tuple[str, int]], engine: str) -> tuple[str, Any]:
    """Count ``days``' distinct active minutes per user: (the engine that counted, its rows)."""
    # DuckDB and Polars do not verify the lake's page checksums: read the counted columns through
    # Arrow first, so a damaged day file is one error naming it, not wrong counts.
    check_readable(
        [lake / "events" / f"dt={day}" / "events.parquet" for day, _ in days],
        columns=["user_id", "event_ts"],
    )
    chosen, rows = uam_daily.daily_counts(con, lake, days, engine)
    if chosen != "duckdb":  # count here (the daily rows are small: ~1/4 of a day's events)
        rows = rows.read_all()
    return chosen, rows


def _replace_days(con: Any, days: list[tuple[str, int]], chosen: str, rows: Any) -> None:
    """Replace the counted days' rows in the daily table and in ``__days`` (delete+insert on
    activity_date, as the incremental model)."""
    listed = ", ".join(f"date '{day}'" for day, _ in days)
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


def apply_delta(
    con: Any, lake: Path, p: Plan, engine: str = "auto", totals: Totals | None = None
) -> dict:
    """Count ``p.days`` and move the window, in one transaction (from ``totals`` when they are
    the table's). Returns counts and timings."""
    a, b = p.window
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[step] = now - clock
        clock = now

    con.execute("begin transaction")
    try:
        chosen, rows = _count_days(con, lake, p.days, engine) if p.days else ("-", None)
        lap("count")
        if p.days:
            _replace_days(con, p.days, chosen, rows)
        lap("insert")
        moved_in_memory = move_window(con, a, b, totals)
        lap("window")
        rebuild_histogram(con, p.interval)
        lap("histogram")
        con.execute("commit")
        lap("commit")
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

    if not resident.keep_freed_memory():
        log.info("uam-update: no glibc mallopt here: each day's arrays are mapped afresh")
    resident.warm_up(lake)
    totals = resident.load_totals()
    log.info("uam-update: watching %s every %.1f s (Ctrl-C to stop)", lake / "events", poll)
    seen: tuple | None = None
    applied = 0
    while not stop.is_set():
        signature = resident.lake_signature(lake)
        if signature != seen:
            try:
                result = update_once(engine, wait=False, totals=totals)
            except Exception as exc:
                if isinstance(exc, warehouse_lock.WarehouseBusy) or resident.is_lock_conflict(exc):
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
