"""user_active_minutes moves its 30-day window by a delta on daily runs (DuckDB) and falls back to
the full 30-day sum whenever a delta could be wrong. Every step is checked against a brute-force
count of distinct minutes over the lake events, and the path taken is read from dbt's log."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import duckdb
import pytest
from lakefiles import brute_force_uam, event, random_views, write_events, write_lake

from vigil import config
from vigil.warehouse import dbt as warehouse

MODELS = [
    "stg_lake__event_activity",
    "stg_lake__event_partitions",
    "int_user_active_minutes_daily",
    "user_active_minutes",
]
START = date(2026, 10, 1)


def _run(as_of: date | None = None, engine: str = "auto") -> str:
    dbt_vars = {"uam_daily_engine": engine}
    if as_of:
        dbt_vars["as_of"] = as_of.isoformat()
    warehouse.run_dbt("run", MODELS, dbt_vars=dbt_vars)
    log_text = (warehouse.dbt_dirs()["logs"] / "last_stdout.log").read_text()
    lines = [line for line in log_text.splitlines() if "user_active_minutes: " in line]
    return lines[-1] if lines else "user_active_minutes: full 30-day sum (first build)"


def _table(as_of: date) -> dict[int, int]:
    con = duckdb.connect(str(config.paths().warehouse), read_only=True)
    rows = con.execute("select user_id, as_of, uam from user_active_minutes").fetchall()
    con.close()
    assert {r[1] for r in rows} <= {as_of}
    return {u: n for u, _, n in rows}


@pytest.mark.slow
def test_window_moves_by_delta_only_when_exact(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    lake = config.paths().lake
    days = [START + timedelta(days=d) for d in range(32)]  # 2026-10-01 .. 2026-11-01
    events = random_views(3, [d.isoformat() for d in days[:30]], users=25, per_day=30)
    write_lake(lake, events)

    # first build: the full sum; as_of defaults to the latest lake day
    _run()
    assert _table(days[29]) == brute_force_uam(events, days[29])

    # two new days: the window moves 10-30 -> 11-01 by a delta (two days leave, two enter)
    new = random_views(4, [d.isoformat() for d in days[30:32]], users=25, per_day=30)
    write_events(lake, new)
    events += new
    assert "window moved by delta 2026-10-30 -> 2026-11-01" in _run()
    assert _table(days[31]) == brute_force_uam(events, days[31])

    # nothing new: a zero-day delta, same table
    assert "window moved by delta 2026-11-01 -> 2026-11-01" in _run()
    assert _table(days[31]) == brute_force_uam(events, days[31])

    # a late event for 10-15, inside the window: its old counts are gone, so the full sum
    day15 = [e for e in events if e["event_ts"].date() == days[14]]
    late = [event(datetime(2026, 10, 15, 12, 34, 56, tzinfo=UTC), 1)]
    write_events(lake, day15 + late)
    events += late
    assert "full 30-day sum" in _run()
    assert _table(days[31]) == brute_force_uam(events, days[31])

    # as_of moves back: full; then forward by 5 days with nothing rewritten: delta
    assert "full 30-day sum" in _run(as_of=days[19])
    assert _table(days[19]) == brute_force_uam(events, days[19])
    assert "window moved by delta 2026-10-20 -> 2026-10-25" in _run(as_of=days[24])
    assert _table(days[24]) == brute_force_uam(events, days[24])

    # the SQL daily model does not keep the days table: the next sums are full, until the Python
    # model has rebuilt it and user_active_minutes has seen it once
    _run(as_of=days[25], engine="sql")
    assert _table(days[25]) == brute_force_uam(events, days[25])
    assert "full 30-day sum" in _run(as_of=days[26])
    assert _table(days[26]) == brute_force_uam(events, days[26])
    assert "window moved by delta 2026-10-27 -> 2026-10-28" in _run(as_of=days[27])
    assert _table(days[27]) == brute_force_uam(events, days[27])
