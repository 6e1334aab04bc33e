"""`python -m bench uam`'s no-dbt bound (bench/uam_bound.py) computes the right answer.

The bound times a full 30-day recompute and a one-new-day update (append the day, move the window
by old - day that left + day that entered). Its figures only mean something if the update ends
where a recount of the new window ends: here the expected histogram is counted in plain Python from
the Parquet files (a set of minutes per user over the 30 days ending on the new day), with no
daily decomposition and no DuckDB.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta

import pyarrow.parquet as pq

from bench import uam_bound
from bench.bench_uam import generate

FIRST = date(2026, 10, 1)
DAYS = [FIRST + timedelta(days=d) for d in range(30)]
NEW_DAY = FIRST + timedelta(days=30)
EVENTS_PER_DAY = 400
USERS = 60


def _brute_force_histogram(events_dir, first: date, last: date) -> list[tuple[int, int]]:
    minutes: dict[int, set[int]] = {}
    day = first
    while day <= last:
        table = pq.read_table(events_dir / f"dt={day.isoformat()}" / "events.parquet")
        for user, ts in zip(
            table.column("user_id").to_pylist(), table.column("event_ts").to_pylist()
        ):
            minutes.setdefault(user, set()).add(int(ts.timestamp()) // 60)
        day += timedelta(days=1)
    return sorted(Counter(len(m) for m in minutes.values()).items())


def test_no_dbt_bound_update_equals_a_recount_of_the_new_window(tmp_path):
    events_dir = tmp_path / "lake" / "events"
    generate(events_dir, EVENTS_PER_DAY * len(DAYS), USERS, DAYS, seed=3)
    generate(events_dir, EVENTS_PER_DAY, USERS, [NEW_DAY], seed=4)
    expired = NEW_DAY - timedelta(days=30)
    assert expired == DAYS[0]  # the first day leaves the window, the new day enters it

    result = uam_bound.main(
        [
            str(events_dir.parent),
            str(tmp_path / "bound.duckdb"),
            json.dumps([[d.isoformat(), EVENTS_PER_DAY] for d in DAYS]),
            NEW_DAY.isoformat(),
            str(EVENTS_PER_DAY),
            expired.isoformat(),
            "1GB",
            "1",
        ]
    )

    expected = _brute_force_histogram(events_dir, DAYS[1], NEW_DAY)
    assert [tuple(r) for r in result["histogram"]] == expected
    assert sum(users for _, users in expected) == USERS  # 400 events a day reach every user
    # the window really moved: the 30 original days give another histogram
    assert _brute_force_histogram(events_dir, DAYS[0], DAYS[-1]) != expected
    assert result["full"] > 0 and result["inc"] > 0 and result["imports"] >= 0
