"""The kernel of dbt model ``int_user_active_minutes_daily`` on DuckDB: distinct active minutes per
(user, UTC day), one lake day partition at a time.

Why a Python model on DuckDB: the 30-day UAM is a sum of per-day distinct-minute counts (days are
disjoint sets of minutes), so the work is one distinct count of (user, minute) per day, and the lake
contract (docs/contracts.md) writes each day's file sorted by (user_id, event_ts). On sorted rows
no hash table is needed: a user's distinct minutes are the rows whose (user, minute) differs from
the row before, counted over the user's run of rows, a few linear numpy passes (``sorted``).
It is faster than polars' hash aggregation and than DuckDB in every formulation tried
(docs/decisions.md, "UAM daily kernel"; figures in docs/benchmarks.md). The order is checked, not
trusted: a day whose file is not sorted (a file written by hand, say) is counted by polars' hash
aggregation instead, and said so.
The SQL model of the same name (dbt/models/intermediate/activity/) stays the definition for Spark
and is tested against these kernels (tests/uam/test_uam_daily_engines.py).

Memory: the kernel holds one day in memory, outside DuckDB's ``memory_limit``. A day whose
estimated working set (``POLARS_BYTES_PER_ROW`` per lake row, measured) exceeds half of DuckDB's
memory_limit is computed by DuckDB instead, which spills to temp_directory under the limit: the
limit stays the process's budget at any volume. ``engine`` forces one side: ``sorted``,
``polars``, ``duckdb`` or ``auto``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ENGINES = ("auto", "sorted", "polars", "duckdb")
# Peak resident memory of the polars day aggregation per lake row, above an interpreter with polars
# and pyarrow loaded, measured on bench/bench_uam.py days: 52 bytes/row at 3.3M rows (175 MB),
# 65 at 10M rows (653 MB); the estimate carries a margin. The sorted kernel needs less (the two
# columns, 16 bytes/row, and its boolean and int64 passes), and falls back to polars per day.
POLARS_BYTES_PER_ROW = 80
_UNITS = {
    "B": 1, "BYTES": 1,
    "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40,
}  # fmt: skip


def parse_bytes(text: str) -> int:
    """'4GB', '953.6 MiB', '80MB' -> bytes (DuckDB's memory_limit spellings)."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", text)
    if not match or match.group(2).upper() not in _UNITS:
        raise ValueError(f"cannot read a memory size from {text!r}: use e.g. 4GB or 512MiB")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def days_to_process(
    con: Any, partitions: str, this: str | None, days_table: str | None = None
) -> list[tuple[str, int]]:
    """(day 'YYYY-MM-DD', lake rows) of the days to (re)compute: all lake days on a full refresh;
    otherwise days that are new or whose partition's row count changed (late events; the lake only
    appends). Same rule as the SQL model's ``uam_days_to_process()``. ``days_table`` (one row per
    computed day, kept in step with ``this`` by the model's post-hook) spares a scan of ``this``."""
    if this is None:
        sql = f"select cast(event_date as varchar), row_count from {partitions} order by 1"
    else:
        done = days_table or (
            f"(select activity_date, max(partition_rows) as partition_rows "
            f"from {this} group by activity_date)"
        )
        sql = f"""
            select cast(p.event_date as varchar), p.row_count
            from {partitions} as p
            left join {done} as done on done.activity_date = p.event_date
            where done.partition_rows is null or done.partition_rows <> p.row_count
            order by 1
        """
    return [(str(day), int(rows)) for day, rows in con.execute(sql).fetchall()]


def choose_engine(engine: str, days: list[tuple[str, int]], memory_limit: int) -> str:
    if engine not in ENGINES:
        raise ValueError(
            f"uam_daily_engine must be one of {', '.join(ENGINES)}, not {engine!r} "
            "(dbt var, e.g. --vars '{uam_daily_engine: duckdb}')"
        )
    if engine != "auto":
        return engine
    if not days:
        return "duckdb"  # nothing to count: an empty relation, without importing polars
    largest = max((rows for _, rows in days), default=0)
    return "sorted" if largest * POLARS_BYTES_PER_ROW <= memory_limit // 2 else "duckdb"


def daily_counts(con: Any, lake: Path, days: list[tuple[str, int]], engine: str = "auto") -> tuple:
    """(engine chosen, the daily rows of ``days``): an Arrow RecordBatchReader for ``sorted`` and
    ``polars``, a DuckDB relation on ``con`` for ``duckdb``. What the dbt model returns, and what
    ``vigil uam-update`` inserts (vigil/uam_update.py)."""
    memory_limit = parse_bytes(
        con.execute("select current_setting('memory_limit')").fetchall()[0][0]
    )
    engine = choose_engine(engine, days, memory_limit)
    if engine == "sorted":
        return engine, daily_sorted(lake, days)
    if engine == "polars":
        return engine, daily_polars(lake, days)
    return engine, con.sql(daily_duckdb_sql(lake, days))


def _day_file(lake: Path, day: str) -> str:
    return str(lake / "events" / f"dt={day}" / "events.parquet")


_MINUTE = {"s": 60, "ms": 60_000, "us": 60_000_000, "ns": 60_000_000_000}


def _int64_values(column: Any) -> Any:
    """A non-null int64/timestamp Arrow column as a numpy int64 view, without a copy when it is
    one chunk and without pandas (pyarrow's numpy and list conversions import it: 0.45 s)."""
    import numpy as np
    import pyarrow as pa

    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(array) == 0:
        return np.zeros(0, dtype=np.int64)
    if pa.types.is_timestamp(array.type):
        width = 8
    elif pa.types.is_signed_integer(array.type):
        width = array.type.bit_width // 8
    else:
        raise TypeError(f"expected a signed integer or timestamp column, got {array.type}")
    values = np.frombuffer(
        array.buffers()[1],
        dtype=np.dtype(f"int{width * 8}"),
        count=len(array),
        offset=array.offset * width,
    )
    return values.astype(np.int64, copy=False)


def count_sorted_minutes(user_id: Any, event_ts: Any) -> tuple[Any, Any] | None:
    """(users, distinct minutes) of one day's rows sorted by (user_id, event_ts), as numpy int64
    arrays in user order; None when the rows are not so sorted or hold nulls (the caller then
    counts with a hash aggregation). Minutes are floor(epoch / 60 s), as in the SQL model."""
    import numpy as np
    import pyarrow as pa

    if (
        user_id.null_count
        or event_ts.null_count
        or not pa.types.is_signed_integer(user_id.type)
        or not pa.types.is_timestamp(event_ts.type)
    ):
        return None
    users = _int64_values(user_id)
    minutes = _int64_values(event_ts) // _MINUTE[event_ts.type.unit]
    if len(users) == 0:
        return users, minutes
    same_user = users[1:] == users[:-1]
    in_order = (users[1:] >= users[:-1]).all() and (
        ~same_user | (minutes[1:] >= minutes[:-1])
    ).all()
    if not in_order:
        return None
    # a row opens a new (user, minute) unless it repeats the previous row's
    new_minute = np.ones(len(users), dtype=np.int64)
    new_minute[1:] = ~(same_user & (minutes[1:] == minutes[:-1]))
    starts = np.flatnonzero(np.concatenate(([True], ~same_user)))
    return users[starts], np.add.reduceat(new_minute, starts)


def _int_array(values: Any, type_: Any) -> Any:
    import numpy as np
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(type_, len(values), [None, pa.py_buffer(values)])


def daily_sorted(lake: Path, days: list[tuple[str, int]], log: Any = None) -> Any:
    """Like :func:`daily_polars` (same schema, one day at a time), counting each day with
    :func:`count_sorted_minutes` over the lake's sort order; a day whose file is not sorted by
    (user_id, event_ts) is counted by polars instead and reported through ``log``."""
    from datetime import date

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _daily_schema()
    epoch = date(1970, 1, 1)
    log = log or (lambda line: print(line, flush=True))  # dbt shows a Python model's stdout

    def batches():
        for day, rows in days:
            # ParquetFile.read, not pq.read_table: the dataset layer costs 0.45 s on first use;
            # pre_buffer coalesces the column chunks' reads: a 3.3M-event day reads in 0.048-0.057 s
            # over 15 tries, against 0.048-0.146 s without
            table = pq.ParquetFile(_day_file(lake, day), pre_buffer=True).read(
                columns=["user_id", "event_ts"]
            )
            counted = count_sorted_minutes(table.column("user_id"), table.column("event_ts"))
            del table
            if counted is None:
                log(
                    f"int_user_active_minutes_daily: {day}: the lake file is not sorted by "
                    "(user_id, event_ts) as the lake contract says; counted by hash aggregation "
                    "(polars) instead"
                )
                yield from daily_polars(lake, [(day, rows)])
                continue
            users, minutes = counted
            n = len(users)
            day_number = (date.fromisoformat(day) - epoch).days
            yield pa.RecordBatch.from_arrays(
                [
                    _int_array(users, pa.int64()),
                    _int_array(minutes, pa.int64()),
                    _int_array(np.full(n, rows, dtype=np.int64), pa.int64()),
                    _int_array(np.full(n, day_number, dtype=np.int32), pa.date32()),
                ],
                schema=schema,
            )

    return pa.RecordBatchReader.from_batches(schema, batches())


def _daily_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("user_id", pa.int64()),
            ("active_minutes", pa.int64()),
            ("partition_rows", pa.int64()),
            ("activity_date", pa.date32()),
        ]
    )


def daily_polars(lake: Path, days: list[tuple[str, int]]) -> Any:
    """A pyarrow RecordBatchReader of (user_id, active_minutes, partition_rows, activity_date) that
    computes one day when DuckDB pulls it: each day's hash table and result are dropped before the
    next day's, so memory follows a day's volume, not the lake's (DuckDB consumes it once)."""
    from datetime import date

    import polars as pl
    import pyarrow as pa

    schema = _daily_schema()

    def batches():
        for day, rows in days:
            frame = (
                pl.scan_parquet(_day_file(lake, day))
                .group_by(pl.col("user_id").cast(pl.Int64))
                .agg(
                    (pl.col("event_ts").dt.epoch("us") // 60_000_000)
                    .n_unique()
                    .cast(pl.Int64)
                    .alias("active_minutes")
                )
                .with_columns(
                    pl.lit(rows, dtype=pl.Int64).alias("partition_rows"),
                    pl.lit(date.fromisoformat(day), dtype=pl.Date).alias("activity_date"),
                )
                .collect()
            )
            yield from frame.to_arrow().cast(schema).to_batches(max_chunksize=1 << 20)

    return pa.RecordBatchReader.from_batches(schema, batches())


def daily_duckdb_sql(lake: Path, days: list[tuple[str, int]]) -> str:
    """The same counts in DuckDB SQL (spills under memory_limit): one UNION ALL branch per day, as
    the SQL model does."""
    if not days:
        return (
            "select cast(null as bigint) as user_id, cast(null as bigint) as active_minutes, "
            "cast(null as bigint) as partition_rows, cast(null as date) as activity_date "
            "where false"
        )
    return "\nunion all\n".join(
        f"select cast(user_id as bigint) as user_id, "
        f"count(distinct epoch_us(cast(event_ts as timestamptz)) // 60000000) as active_minutes, "
        f"cast({rows} as bigint) as partition_rows, cast('{day}' as date) as activity_date "
        f"from read_parquet('{_day_file(lake, day)}') group by 1"
        for day, rows in days
    )
