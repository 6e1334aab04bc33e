"""int_user_active_minutes_daily has two definitions: the portable SQL model (Spark, or DuckDB with
``uam_daily_engine=sql``) and, on DuckDB, a Python model whose per-day kernel is polars or DuckDB
(vigil/uam_daily.py): ``sorted`` (numpy over the lake's sort order), polars or DuckDB. Every
engine must give the same table: hand-computed cases, a brute-force recount in plain Python, an
incremental run, a day file out of order, and nothing left behind in the warehouse.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from datetime import date

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lakefiles import TS, event, random_views, utc, write_events, write_lake

from vigil import config
from vigil.uam import daily as uam_daily
from vigil.warehouse import dbt as warehouse

ENGINES = ("sorted", "polars", "duckdb", "sql")
MODELS = ["stg_lake__event_activity", "stg_lake__event_partitions", "int_user_active_minutes_daily"]


def _build(engine: str, *, full_refresh: bool = True) -> dict:
    return warehouse.run_dbt(
        "run", MODELS, full_refresh=full_refresh, dbt_vars={"uam_daily_engine": engine}
    )


def _daily() -> set[tuple]:
    con = duckdb.connect(str(config.paths().warehouse), read_only=True)
    rows = con.execute(
        "select user_id, active_minutes, partition_rows, cast(activity_date as varchar) "
        "from int_user_active_minutes_daily"
    ).fetchall()
    con.close()
    return set(rows)


def _tables() -> list[str]:
    con = duckdb.connect(str(config.paths().warehouse), read_only=True)
    names = [
        r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()
    ]
    con.close()
    return sorted(names)


def test_hand_computed_minutes_per_utc_day(tmp_path, monkeypatch):
    """The dbt unit test's cases (dbt/models/intermediate/_intermediate__models.yml), on a real lake."""
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    write_lake(
        config.paths().lake,
        [
            # user 1, 2026-10-01: minutes 10:00 (x3 actions), 10:01, 23:59 -> 3
            event("2026-10-01T10:00:00Z", 1),
            event("2026-10-01T10:00:30Z", 1),
            event("2026-10-01T10:00:59.999Z", 1),
            event("2026-10-01T10:01:00Z", 1),
            event("2026-10-01T23:59:30Z", 1),
            # user 1, 2026-10-02: 00:00 -> 1 (the day boundary splits 23:59:30 / 00:00:10)
            event("2026-10-02T00:00:10Z", 1),
            # user 2, 2026-10-02: the same instant twice and 00:00:59 -> 1
            event("2026-10-02T00:00:00Z", 2),
            event("2026-10-02T00:00:00Z", 2),
            event("2026-10-02T00:00:59Z", 2),
        ],
    )
    expected = {
        (1, 3, 5, "2026-10-01"),
        (1, 1, 4, "2026-10-02"),
        (2, 1, 4, "2026-10-02"),
    }
    for engine in ENGINES:
        _build(engine)
        assert _daily() == expected, engine
    # the SQL model's dbt unit test (the same cases as fixtures) runs on DuckDB too, not only on Spark
    summary = warehouse.run_dbt(
        "test",
        ["test_type:unit,int_user_active_minutes_daily"],
        dbt_vars={"uam_daily_engine": "sql"},
    )
    assert summary["unit_tests"] == 1 and not summary["failures"] and not summary["errors"]


def _brute_force(events: list[dict]) -> set[tuple]:
    """Distinct (user, minute) per UTC day, by Python's datetime, and the lake rows per day."""
    minutes: dict[tuple, set] = defaultdict(set)
    rows_per_day: dict[str, int] = defaultdict(int)
    for e in events:
        ts = e["event_ts"]
        day = ts.date().isoformat()
        rows_per_day[day] += 1
        minutes[(e["user_id"], day)].add(ts.replace(second=0, microsecond=0))
    return {(u, len(m), rows_per_day[d], d) for (u, d), m in minutes.items()}


@pytest.mark.slow
def test_engines_agree_with_brute_force_and_increment_cleanly(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    lake = config.paths().lake
    days = ["2026-10-01", "2026-10-02", "2026-10-03"]
    events = random_views(11, days, users=60, per_day=400)
    write_lake(lake, events)
    expected = _brute_force(events)
    assert len(expected) > 150  # most users active most days, with repeated minutes
    for engine in ENGINES:
        _build(engine)
        assert _daily() == expected, engine

    # a late delivery for 2026-10-02 and a new day: an incremental run of each Python engine
    # recomputes exactly those days, and leaves no staging table behind
    late = random_views(12, ["2026-10-02"], users=60, per_day=50)
    new_day = random_views(13, ["2026-10-04"], users=60, per_day=300)
    day2 = [e for e in events if e["event_ts"].date() == date(2026, 10, 2)]
    expected_after = _brute_force(events + late + new_day)
    for engine in ("sorted", "polars", "duckdb"):
        write_events(lake, day2)  # the lake as it was: days 1-3, no late events
        shutil.rmtree(lake / "events" / "dt=2026-10-04", ignore_errors=True)
        _build(engine)
        assert _daily() == expected, engine
        write_events(lake, day2 + late)
        write_events(lake, new_day)
        _build(engine, full_refresh=False)
        assert _daily() == expected_after, engine
        log_text = (warehouse.dbt_dirs()["logs"] / "last_stdout.log").read_text()
        assert f"2 day(s) to (re)process with {engine}: 2026-10-02, 2026-10-04" in log_text
        assert not [t for t in _tables() if "__dbt_tmp" in t], _tables()


def test_memory_limit_spellings_and_engine_choice():
    assert uam_daily.parse_bytes("4GB") == 4_000_000_000
    assert uam_daily.parse_bytes("953.6 MiB") == int(953.6 * 1024**2)
    assert uam_daily.parse_bytes("80MB") == 80_000_000
    with pytest.raises(ValueError, match="e.g. 4GB"):
        uam_daily.parse_bytes("lots")
    # the in-memory kernel while the largest day's estimate (80 bytes per lake row) fits half the
    # limit, DuckDB (which spills) beyond
    limit = 1_000_000_000  # half: 500 MB = 6.25M rows
    assert uam_daily.choose_engine("auto", [("d1", 6_250_000)], limit) == "sorted"
    assert uam_daily.choose_engine("auto", [("d1", 10), ("d2", 6_250_001)], limit) == "duckdb"
    assert uam_daily.choose_engine("auto", [], limit) == "duckdb"  # no day: no polars import
    assert uam_daily.choose_engine("duckdb", [("d1", 1)], limit) == "duckdb"
    with pytest.raises(ValueError, match="uam_daily_engine"):
        uam_daily.choose_engine("spark", [], limit)


def _columns(rows: list[tuple[int, str]]) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """(user_id, event_ts) columns from (user, ISO time) rows, split into two chunks as a
    multi-row-group file reads."""
    half = len(rows) // 2
    users = pa.chunked_array(
        [
            pa.array([u for u, _ in rows[:half]], pa.int64()),
            pa.array([u for u, _ in rows[half:]], pa.int64()),
        ]
    )
    times = pa.chunked_array(
        [
            pa.array([utc(t) for _, t in rows[:half]], TS),
            pa.array([utc(t) for _, t in rows[half:]], TS),
        ]
    )
    return users, times


def test_sorted_kernel_hand_computed():
    users, times = _columns(
        [
            (1, "2026-10-01T10:00:00Z"),  # user 1: 10:00 (x3), 10:01, 23:59 -> 3
            (1, "2026-10-01T10:00:30Z"),
            (1, "2026-10-01T10:00:59.999Z"),
            (1, "2026-10-01T10:01:00Z"),
            (1, "2026-10-01T23:59:30Z"),
            (7, "2026-10-01T00:00:00Z"),  # user 7: one instant twice, 00:00:59 -> 1
            (7, "2026-10-01T00:00:00Z"),
            (7, "2026-10-01T00:00:59Z"),
            (9, "2026-10-01T12:00:00Z"),  # user 9: 12:00, 12:01 -> 2
            (9, "2026-10-01T12:01:00Z"),
        ]
    )
    got_users, got_minutes = uam_daily.count_sorted_minutes(users, times)
    assert got_users.tolist() == [1, 7, 9]
    assert got_minutes.tolist() == [3, 1, 2]
    # out of order (users, or minutes within a user), or a null: None, so the caller hashes
    for rows in (
        [(2, "2026-10-01T10:00:00Z"), (1, "2026-10-01T10:00:00Z")],
        [(1, "2026-10-01T10:05:00Z"), (1, "2026-10-01T10:00:00Z")],
    ):
        assert uam_daily.count_sorted_minutes(*_columns(rows)) is None
    nulls = pa.chunked_array([pa.array([1, None], pa.int64())])
    assert (
        uam_daily.count_sorted_minutes(nulls, _columns([(1, "2026-10-01T10:00:00Z")] * 2)[1])
        is None
    )
    empty_users, empty_minutes = uam_daily.count_sorted_minutes(*_columns([]))
    assert len(empty_users) == 0 and len(empty_minutes) == 0


def test_sorted_kernel_matches_brute_force_on_random_days():
    events = random_views(21, ["2026-10-05"], users=300, per_day=5000)
    events.sort(key=lambda e: (e["user_id"], e["event_ts"]))
    users, times = _columns([(e["user_id"], e["event_ts"].isoformat()) for e in events])
    got = dict(zip(*(a.tolist() for a in uam_daily.count_sorted_minutes(users, times))))
    expected = {u: n for u, n, _, _ in _brute_force(events)}
    assert got == expected and len(expected) > 250


def test_unsorted_day_file_is_counted_by_hash_and_reported(tmp_path, monkeypatch):
    """A day file not in (user_id, event_ts) order (written by hand, not by vigil ingest) gives the
    same counts through the hash fallback, and the run log says which day and why."""
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    lake = config.paths().lake
    events = random_views(31, ["2026-10-01", "2026-10-02"], users=50, per_day=300)
    write_lake(lake, events)
    shuffled = pq.read_table(lake / "events" / "dt=2026-10-02" / "events.parquet")
    pq.write_table(
        shuffled.take(pa.array(list(range(len(shuffled)))[::-1])),
        lake / "events" / "dt=2026-10-02" / "events.parquet",
    )
    _build("sorted")
    assert _daily() == _brute_force(events)
    log_text = (warehouse.dbt_dirs()["logs"] / "last_stdout.log").read_text()
    assert "2026-10-02: the lake file is not sorted by (user_id, event_ts)" in log_text
    assert "2026-10-01: the lake file is not sorted" not in log_text
