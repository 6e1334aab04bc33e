"""Moving the 30-day UAM window by a delta, as dbt's ``user_active_minutes`` model does.

The UAM tables dbt keeps, and the steps ``vigil uam-update`` (:mod:`vigil.uam.update`) applies to
them inside its transaction: move ``user_active_minutes`` from as_of A to B (old totals - the days
that left + the days that entered; from a resident process's in-memory :class:`Totals` when they
are the table's, else with the model's SQL), record the state row as the model's post-hook does,
and rebuild ``uam_histogram`` with its bucket width.
"""

from __future__ import annotations

from typing import Any

from vigil.uam import daily as uam_daily

DAILY = "int_user_active_minutes_daily"
DAYS = f"{DAILY}__days"
UAM = "user_active_minutes"
STATE = f"{UAM}__state"
HISTOGRAM = "uam_histogram"
WINDOW_DAYS = 30


def state_key(con: Any) -> tuple | None:
    """(as_of, built_at in µs) of ``user_active_minutes__state``: what any writer changes."""
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
        self.values, self.key = values, state_key(con)

    def move(self, con: Any, a: str, b: str) -> bool:
        """Write ``user_active_minutes`` for the window moved from A to B, as the delta SQL does
        (old totals - days that left + days that entered, users above 0); False, having written
        nothing, when these totals are not the table's."""
        import numpy as np
        import pyarrow as pa

        if self.key is None or self.key != state_key(con):
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


def move_window_sql(con: Any, a: str, b: str) -> None:
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


def move_window(con: Any, a: str, b: str, totals: Totals | None) -> bool:
    """Move ``user_active_minutes`` from A to B and record its state row (the model's post-hook
    ``vigil.record_uam_state()``). True when ``totals`` did it in memory; they are kept in step
    with the table for the next day either way."""
    moved_in_memory = totals is not None and totals.move(con, a, b)
    if not moved_in_memory:
        move_window_sql(con, a, b)
    con.execute(
        f"create or replace table {STATE} as select (select max(as_of) from {UAM}) as as_of, "
        f"(select max(written_at) from {DAYS}) as built_at"
    )
    if totals is not None:
        if moved_in_memory:
            totals.key = state_key(con)
        else:
            totals.load(con)  # for the next day
    return moved_in_memory


def histogram_sql(interval: int) -> str:
    """The select of uam_histogram.sql over ``user_active_minutes``: every bucket of width
    ``interval`` from 0 to the highest non-empty one."""
    s = int(interval)
    return f"""
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


def rebuild_histogram(con: Any, interval: int) -> None:
    """``uam_histogram`` as uam_histogram.sql builds it, from ``user_active_minutes``."""
    con.execute(f"create or replace table {HISTOGRAM} as {histogram_sql(interval)}")


def histogram_is_current(con: Any, interval: int) -> bool:
    """Whether ``uam_histogram`` holds exactly the buckets ``user_active_minutes`` gives now.

    dbt builds the two in separate transactions, so a run stopped between them (a kill, a crash)
    leaves the window moved and its state recorded, but the old histogram: the state alone would
    call the warehouse up to date. Grouping the window's users is cheap (one pass over one row per
    user)."""
    differing = con.execute(
        f"""
        with expected as materialized ({histogram_sql(interval)})
        select count(*) from (
            (select lower, upper, users from {HISTOGRAM} except all select * from expected)
            union all
            (select * from expected except all select lower, upper, users from {HISTOGRAM})
        )
        """
    ).fetchone()[0]
    return differing == 0
