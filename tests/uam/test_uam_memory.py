"""UAM with DuckDB's memory_limit far below the data: the models complete and stay exact.

The lake holds more (user_id, event_ts) than DuckDB may keep in memory (``VIGIL_DUCKDB_MEMORY_LIMIT``
reaches DuckDB through dbt's profile), so the build spills to the temp directory
(``$VIGIL_HOME/tmp/duckdb``; ~75 MB at the peak, measured) and later models open new cursors after
that spill (which failed while temp_directory was a per-cursor dbt-duckdb `setting`). The expected histogram is counted by another
engine (polars, straight from the Parquet files, over the whole window at once).
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import polars as pl

from bench.bench_uam import generate
from vigil import config
from vigil.warehouse import dbt as warehouse

DAYS = [date(2026, 10, 1) + timedelta(days=d) for d in range(3)]
EVENTS_PER_DAY = 3_000_000
USERS = 50_000
MEMORY_LIMIT = "80MB"  # the 9M events are 144 MB of (user_id, event_ts) in memory


def test_uam_completes_exactly_under_a_small_memory_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    monkeypatch.setenv("VIGIL_DUCKDB_MEMORY_LIMIT", MEMORY_LIMIT)
    monkeypatch.setenv("VIGIL_DUCKDB_THREADS", "1")
    events_dir = config.paths().lake / "events"
    # skewed users (a few very active), times anywhere in the day, many repeats per minute
    generate(events_dir, EVENTS_PER_DAY * len(DAYS), USERS, DAYS, seed=1, row_group_size=100_000)

    warehouse.run_dbt("run", ["+uam_histogram"], dbt_vars={"as_of": DAYS[-1].isoformat()})

    per_user = (
        pl.scan_parquet(f"{events_dir}/dt=*/events.parquet")
        .group_by("user_id")
        .agg((pl.col("event_ts").dt.epoch("us") // 60_000_000).n_unique().alias("uam"))
    )
    expected = per_user.group_by("uam").agg(pl.len().alias("users")).sort("uam").collect().rows()
    con = duckdb.connect(str(config.paths().warehouse), read_only=True)
    got = con.execute(
        "select lower, users from uam_histogram where users > 0 order by lower"
    ).fetchall()
    con.close()
    assert got == [tuple(r) for r in expected]
    assert sum(users for _, users in got) == per_user.collect().height
    # a 3M-event day does not fit half of 80MB in polars (vigil/uam_daily.py): DuckDB counted it,
    # under the limit
    log_text = (warehouse.dbt_dirs()["logs"] / "last_stdout.log").read_text()
    assert "3 day(s) to compute (full refresh) with duckdb" in log_text
