"""Pairs of commands run at once (marker dbt): each either succeeds or stops with one clear
sentence, never a traceback, and the state after them (and after the command that recovers, when
one stopped) is the state of the same commands run one after the other: never a wrong table."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest
from faultlib import GROUPS, env_for, fresh_home, vigil, warehouse_tables

pytestmark = pytest.mark.dbt


def start(home, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigil.cli", *args],
        env=env_for(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    GROUPS.append(proc.pid)
    return proc


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=900)
    assert "Traceback" not in err, err[-3000:]
    assert proc.returncode == 0 or (proc.returncode == 2 and ": error: " in err), err[-3000:]
    return proc.returncode, out, err


def _histogram(proc_or_out) -> dict:
    return json.loads(proc_or_out.strip().splitlines()[-1])


def test_ingest_and_dbt_at_once_then_dbt_equals_the_sequential_build(tmp_path, world, dbt_built):
    _, ref_home, _ = dbt_built
    reference = warehouse_tables(ref_home / "warehouse" / "vigil.duckdb")
    home = fresh_home(tmp_path, world)
    for day in ("2026-10-01", "2026-10-02"):
        assert vigil(home, "ingest", "--day", day).returncode == 0
    dbt = start(home, "dbt", "all")
    time.sleep(2)  # dbt is importing when the ingest of every day starts
    ingest = start(home, "ingest")
    codes = [finish(ingest)[0], finish(dbt)[0]]
    assert 0 in codes
    # dbt saw the lake before or after the new day: the next build catches up either way
    again = vigil(home, "dbt", "all")
    assert again.returncode == 0, again.stderr[-3000:]
    got = warehouse_tables(home / "warehouse" / "vigil.duckdb")
    assert sorted(got) == sorted(reference)
    for name in reference:
        assert got[name] == reference[name], name


def test_uam_query_during_dbt_marts_answers_its_own_interval(tmp_path, dbt_built):
    """Issue 19 item 1: a histogram asked for while `dbt marts` runs is of the width asked for,
    and a later request of another width too; the marts equal the quiet build's."""
    _, ref_home, _ = dbt_built
    expected = {
        width: _histogram(vigil(ref_home, "uam", "--interval", width, "--json").stdout)
        for width in ("7", "1")
    }
    reference = warehouse_tables(ref_home / "warehouse" / "vigil.duckdb")
    home = tmp_path / "home"
    shutil.copytree(ref_home, home)
    marts = start(home, "dbt", "marts")
    time.sleep(6)  # dbt is building when the query arrives (the reproduction)
    query = start(home, "uam", "--interval", "7", "--json")
    code, out, _ = finish(query)
    assert finish(marts)[0] == 0
    if code == 0:
        assert _histogram(out) == expected["7"]
    later = vigil(home, "uam", "--interval", "1", "--json")
    assert later.returncode == 0, later.stderr[-3000:]
    assert _histogram(later.stdout) == expected["1"]
    got = warehouse_tables(home / "warehouse" / "vigil.duckdb")
    for name in reference:
        assert got[name] == reference[name], name
