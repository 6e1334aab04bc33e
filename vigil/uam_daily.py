"""The kernel of dbt model ``int_user_active_minutes_daily`` on DuckDB: distinct active minutes per
(user, UTC day), one lake day partition at a time.

Why a Python model on DuckDB: the 30-day UAM is a sum of per-day distinct-minute counts (days are
disjoint sets of minutes), so the work is one hash aggregation of (user, minute) per day. polars
does that aggregation about twice as fast as DuckDB's ``count(distinct)`` on this machine (one
3.3M-event day: polars 0.20-0.29 s, DuckDB 0.37-0.52 s in every formulation tried: count(distinct),
two-phase distinct, bitstring_agg, bit_or bitmaps, perfect hash tables; see README "How the daily
UAM model runs on DuckDB"), and 30 days of it, written to the warehouse, take less than polars' own one-pass
query over the window. The SQL model of the same name (dbt/models/intermediate/activity/) stays the
definition for Spark and is tested against this kernel (tests/dbt/test_uam_daily_engines.py).

Memory: polars holds one day in memory, outside DuckDB's ``memory_limit``. A day whose estimated
working set (``POLARS_BYTES_PER_ROW`` per lake row, measured) exceeds half of DuckDB's memory_limit
is computed by DuckDB instead, which spills to temp_directory under the limit: the limit stays
the process's budget at any volume. ``engine`` forces one side: ``polars``, ``duckdb`` or ``auto``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ENGINES = ("auto", "polars", "duckdb")
# Peak resident memory of the polars day aggregation per lake row, above an interpreter with polars
# and pyarrow loaded, measured on bench/bench_uam.py days: 52 bytes/row at 3.3M rows (175 MB),
# 65 at 10M rows (653 MB); the estimate carries a margin.
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
    return "polars" if largest * POLARS_BYTES_PER_ROW <= memory_limit // 2 else "duckdb"


def _day_file(lake: Path, day: str) -> str:
    return str(lake / "events" / f"dt={day}" / "events.parquet")


def daily_polars(lake: Path, days: list[tuple[str, int]]) -> Any:
    """A pyarrow RecordBatchReader of (user_id, active_minutes, partition_rows, activity_date) that
    computes one day when DuckDB pulls it: each day's hash table and result are dropped before the
    next day's, so memory follows a day's volume, not the lake's (DuckDB consumes it once)."""
    from datetime import date

    import polars as pl
    import pyarrow as pa

    schema = pa.schema(
        [
            ("user_id", pa.int64()),
            ("active_minutes", pa.int64()),
            ("partition_rows", pa.int64()),
            ("activity_date", pa.date32()),
        ]
    )

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
