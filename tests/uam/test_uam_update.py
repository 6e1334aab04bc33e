"""`vigil uam-update` applies new lake days to the UAM tables without dbt, and leaves them exactly
as dbt would: every step is checked against a brute-force count of distinct minutes over the lake
events (and the S=5 histogram hand-bucketed from it), and against a dbt full refresh of the same
lake, table by table. dbt runs after the updater must find nothing to do."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from lakefiles import brute_force_uam, event, random_views, write_events, write_lake

from vigil import config
from vigil.errors import UserError
from vigil.uam import update as uam_update
from vigil.warehouse import dbt as warehouse
from vigil.warehouse import lock as warehouse_lock

START = date(2026, 10, 1)
INTERVAL = 5
MODELS = [
    "stg_lake__event_activity",
    "stg_lake__event_partitions",
    "int_user_active_minutes_daily",
    "user_active_minutes",
    "uam_histogram",
]
# what must be equal, row for row, to a dbt full refresh (written_at/built_at are write times)
COMPARED = {
    "int_user_active_minutes_daily": "select * from {t} order by activity_date, user_id",
    "int_user_active_minutes_daily__days": "select activity_date, partition_rows from {t} order by 1",
    "user_active_minutes": "select * from {t} order by user_id",
    "user_active_minutes__state": "select as_of from {t}",
    "uam_histogram": "select * from {t} order by lower",
}


def _histogram(uam: dict[int, int], s: int) -> list[tuple[int, int, int]]:
    counts = Counter(v // s for v in uam.values())
    return [(k * s, (k + 1) * s, counts.get(k, 0)) for k in range(max(counts) + 1)]


def _tables(db: Path) -> dict[str, list]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = {t: con.execute(q.format(t=t)).fetchall() for t, q in COMPARED.items()}
        out["schemas"] = {t: con.execute(f"describe {t}").fetchall() for t in COMPARED}
        out["tables"] = sorted(
            r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()
        )
    finally:
        con.close()
    return out


def _check(events: list[dict], as_of: date) -> None:
    got = _tables(config.paths().warehouse)
    expected = brute_force_uam(events, as_of)
    assert {u: n for u, _, n in got["user_active_minutes"]} == expected
    assert {a for _, a, _ in got["user_active_minutes"]} == {as_of}
    assert got["uam_histogram"] == _histogram(expected, INTERVAL)


def _dbt(**kw) -> str:
    warehouse.run_dbt("run", MODELS, dbt_vars={"uam_interval": INTERVAL}, **kw)
    return (warehouse.dbt_dirs()["logs"] / "last_stdout.log").read_text()


def _dbt_full_refresh_of(lake: Path, home: Path, monkeypatch) -> dict[str, list]:
    """A separate data root over a copy of ``lake``, built by a dbt full refresh."""
    shutil.copytree(lake, home / "lake")
    with monkeypatch.context() as m:
        m.setenv("VIGIL_HOME", str(home))
        _dbt(full_refresh=True)
        return _tables(config.paths().warehouse)


@pytest.mark.slow
def test_update_matches_brute_force_and_dbt(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "home"))
    lake = config.paths().lake
    days = [START + timedelta(days=d) for d in range(34)]
    events = random_views(3, [d.isoformat() for d in days[:30]], users=25, per_day=30)
    write_lake(lake, events)

    with pytest.raises(UserError, match="vigil dbt all"):
        uam_update.update_once()
    _dbt()
    _check(events, days[29])

    # two new days: counted and moved by the delta, no dbt
    new = random_views(4, [d.isoformat() for d in days[30:32]], users=25, per_day=30)
    write_events(lake, new)
    events += new
    result = uam_update.update_once()
    assert (result["kind"], result["days"], result["as_of"]) == (
        "delta",
        ["2026-10-31", "2026-11-01"],
        "2026-11-01",
    )
    assert result["lake_rows"] == 60
    _check(events, days[31])
    updated = _tables(config.paths().warehouse)
    assert updated == _dbt_full_refresh_of(lake, tmp_path / "reference", monkeypatch)

    # again: nothing new, nothing rewritten
    assert uam_update.update_once()["kind"] == "noop"
    assert _tables(config.paths().warehouse) == updated

    # dbt after the updater: its incremental model finds no day to do, the window moves by zero
    out = _dbt()
    assert "0 day(s) to (re)process" in out
    assert "window moved by delta 2026-11-01 -> 2026-11-01" in out
    assert _tables(config.paths().warehouse) == updated

    # a late event inside the window: the delta cannot be exact, so the dbt models run
    day15 = [e for e in events if e["event_ts"].date() == days[14]]
    late = [event(datetime(2026, 10, 15, 12, 34, 56, tzinfo=UTC), 1)]
    write_events(lake, day15 + late)
    events += late
    result = uam_update.update_once()
    assert result["kind"] == "dbt"
    assert (
        "lake day 2026-10-15 changed on or before the window's end 2026-11-01" in result["reason"]
    )
    _check(events, days[31])

    # and the next new day goes by the delta again; with totals kept between days (as --watch
    # does) the first update moves the window in SQL and keeps its totals, the next in memory
    totals = uam_update.Totals()
    for seed, day, in_memory in ((5, days[32], False), (6, days[33], True)):
        new = random_views(seed, [day.isoformat()], users=25, per_day=30)
        write_events(lake, new)
        events += new
        result = uam_update.update_once(totals=totals)
        assert (result["kind"], result["window_in_memory"]) == ("delta", in_memory)
        _check(events, day)
    reference = _dbt_full_refresh_of(lake, tmp_path / "reference2", monkeypatch)
    assert _tables(config.paths().warehouse) == reference

    # a run stopped after the window moved and before the histogram (dbt commits each model on
    # its own; CI killed `vigil uam-update` there): the state says up to date, the histogram is
    # the old one; the next update sees it and rebuilds it
    new = random_views(7, [(days[33] + timedelta(days=1)).isoformat()], users=25, per_day=30)
    write_events(lake, new)
    events += new
    warehouse.run_dbt("run", MODELS[:4], dbt_vars={"uam_interval": INTERVAL})
    stale = _tables(config.paths().warehouse)["uam_histogram"]
    assert stale != _histogram(brute_force_uam(events, days[33] + timedelta(days=1)), INTERVAL)
    result = uam_update.update_once()
    assert (result["kind"], result["days"]) == ("delta", [])
    assert "uam_histogram is behind user_active_minutes" in result["reason"]
    _check(events, days[33] + timedelta(days=1))
    assert uam_update.update_once()["kind"] == "noop"


def _write_day_atomically(lake: Path, events: list[dict], scratch: Path) -> None:
    """As ingest does: write elsewhere, then rename into the lake."""
    write_events(scratch, events)
    for src in sorted((scratch / "events").glob("dt=*/events.parquet")):
        dest = lake / "events" / src.parent.name / "events.parquet"
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)


def _next_json(proc: subprocess.Popen, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip().startswith("{"):
            return json.loads(line)
        if not line and proc.poll() is not None:
            raise AssertionError(f"uam-update --watch exited: {proc.stderr.read()[-2000:]}")
    raise AssertionError("no update from uam-update --watch")


@pytest.mark.slow
def test_watch_applies_days_as_they_land_and_waits_for_other_writers(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "home"))
    lake = config.paths().lake
    days = [START + timedelta(days=d) for d in range(33)]
    events = random_views(6, [d.isoformat() for d in days[:30]], users=20, per_day=25)
    write_lake(lake, events)
    _dbt()

    proc = subprocess.Popen(
        [sys.executable, "-m", "vigil.cli", "uam-update", "--watch", "--poll", "0.2", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        assert _next_json(proc)["kind"] == "noop"  # started on an up-to-date warehouse

        new = random_views(7, [days[30].isoformat()], users=20, per_day=25)
        _write_day_atomically(lake, new, tmp_path / "scratch1")
        events += new
        result = _next_json(proc)
        assert (result["kind"], result["days"]) == ("delta", ["2026-10-31"])
        assert result["window_in_memory"]  # from the totals it loaded at start
        _check(events, days[30])

        # another writer holds the warehouse (as dbt does during a run): the watcher waits
        holder = duckdb.connect(str(config.paths().warehouse))
        new = random_views(8, [days[31].isoformat()], users=20, per_day=25)
        _write_day_atomically(lake, new, tmp_path / "scratch2")
        events += new
        time.sleep(1.5)
        holder.close()
        result = _next_json(proc)
        assert (result["kind"], result["days"]) == ("delta", ["2026-11-01"])
        _check(events, days[31])

        # a Vigil process reading it (a gate, say) holds it through warehouse_lock.access: same
        with warehouse_lock.access(False, "test reader"):
            new = random_views(9, [days[32].isoformat()], users=20, per_day=25)
            _write_day_atomically(lake, new, tmp_path / "scratch3")
            events += new
            time.sleep(1.5)
        result = _next_json(proc)
        assert (result["kind"], result["days"]) == ("delta", ["2026-11-02"])
        _check(events, days[32])
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert "the warehouse is busy (IO Error: Could not set lock on file" in err
    assert "the warehouse is busy (the warehouse is held by a reader" in err
    assert "stopped after 3 update(s)" in err


def test_missing_warehouse_or_staging_views_name_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    # no warehouse: the resident form says so at once, before watching anything
    proc = subprocess.run(
        [sys.executable, "-m", "vigil.cli", "uam-update", "--watch"],
        check=False,
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=60,
    )
    assert proc.returncode == 2
    assert "no warehouse at" in proc.stderr and "vigil dbt all" in proc.stderr
    # a warehouse without the staging views: no dbt run could work either
    config.paths().warehouse.parent.mkdir(parents=True)
    duckdb.connect(str(config.paths().warehouse)).close()
    with pytest.raises(UserError, match="vigil dbt staging"):
        uam_update.update_once()
