"""Feast under faults (markers dbt, feast): a damaged registry or SQLite online store is one clear
error naming the file and the commands that rebuild it (and those commands do), also when the
damage is one page in the middle of the store that a read of one key never meets (materialize and
serve run SQLite's integrity_check first); `vigil features materialize` SIGKILLed at seeded points
then rerun, and two materializes at once, leave the online store holding the same rows as one
uninterrupted run."""

from __future__ import annotations

import random
import shutil
import socket
import sqlite3
import subprocess
import sys

import pytest
from faultlib import GROUPS, assert_clear_error, env_for, kill_after, timed, vigil

SEED = 19
KILL_CASES = 2
USER = "5"  # a user of the seeded world with features in every view


def _online_rows(home) -> dict[str, list[tuple]]:
    """Every online table's rows, without created_ts (the time of the write)."""
    con = sqlite3.connect(home / "feast" / "online_store.db")
    try:
        names = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        return {
            name: sorted(
                con.execute(
                    f'select entity_key, feature_name, value, event_ts from "{name}"'
                ).fetchall()
            )
            for name in sorted(names)
        }
    finally:
        con.close()


@pytest.fixture(scope="module")
def applied(tmp_path_factory, dbt_built):
    """A data root after dbt all and `vigil features apply` (nothing materialized yet)."""
    home = tmp_path_factory.mktemp("feast-applied") / "home"
    shutil.copytree(dbt_built[1], home)
    assert vigil(home, "features", "apply").returncode == 0
    return home


@pytest.fixture(scope="module")
def materialized(tmp_path_factory, applied):
    """(a data root after one uninterrupted materialize, its online rows, that run's seconds)."""
    home = tmp_path_factory.mktemp("feast-ref") / "home"
    shutil.copytree(applied, home)
    seconds = timed(home, "features", "materialize")
    rows = _online_rows(home)
    assert sum(len(r) for r in rows.values()) > 0
    return home, rows, seconds


def _cut(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path) -> None:
    """The first 4 KiB (SQLite's header and first page, protobuf's first fields) overwritten with
    seeded random bytes. (Flipped bytes inside SQLite's records are not detectable: SQLite keeps
    no page checksums.)"""
    data = bytearray(path.read_bytes())
    size = min(len(data), 4096)
    data[:size] = random.Random(SEED).randbytes(size)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_cut, _garbage], ids=["truncated", "corrupted"])
@pytest.mark.parametrize("name", ["registry.db", "online_store.db"])
def test_a_damaged_feast_file_is_one_clear_error_and_its_fix_recovers(
    tmp_path, materialized, name, damage
):
    reference, rows, _ = materialized
    home = tmp_path / "home"
    shutil.copytree(reference, home)
    path = home / "feast" / name
    damage(path)
    error = assert_clear_error(vigil(home, "features", "get", "--user-id", USER), str(path))
    assert "vigil features apply" in error and "vigil features materialize --full" in error
    if damage is _garbage:
        return  # the fix is the same for both kinds of damage: run it once per file (truncated)
    # the fix the sentence names
    path.unlink()
    assert vigil(home, "features", "apply").returncode == 0
    assert vigil(home, "features", "materialize", "--full").returncode == 0
    assert _online_rows(home) == rows


def _garbage_page(path) -> None:
    """One page in the middle of the SQLite file overwritten with seeded random bytes (the page
    size read from the header: bytes 16-17, big-endian); the header and first pages intact."""
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    middle = len(data) // page // 2 * page
    data[middle : middle + page] = random.Random(SEED).randbytes(page)
    path.write_bytes(bytes(data))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_damaged_page_inside_the_online_store_stops_materialize_and_serve(tmp_path, materialized):
    reference, rows, _ = materialized
    home = tmp_path / "home"
    shutil.copytree(reference, home)
    path = home / "feast" / "online_store.db"
    _garbage_page(path)
    # a read of one key does not meet the page; the commands that write or serve the store do
    assert vigil(home, "features", "get", "--user-id", USER).returncode == 0
    for command in (["materialize"], ["serve", "--port", str(_free_port())]):
        error = assert_clear_error(vigil(home, "features", *command, timeout=300), str(path))
        assert "integrity_check" in error and "vigil features materialize --full" in error
    path.unlink()
    assert vigil(home, "features", "apply").returncode == 0
    assert vigil(home, "features", "materialize", "--full").returncode == 0
    assert _online_rows(home) == rows


@pytest.mark.parametrize("case", range(KILL_CASES))
def test_materialize_killed_then_rerun_equals_an_uninterrupted_run(
    case, tmp_path, applied, materialized
):
    _, rows, seconds = materialized
    home = tmp_path / "home"
    shutil.copytree(applied, home)
    rng = random.Random(f"{SEED}-materialize")
    fractions = [rng.uniform(0.3, 1.0) for _ in range(KILL_CASES)]  # feast's import is ~30%
    kill_after(home, ["features", "materialize"], fractions[case] * seconds)
    rerun = vigil(home, "features", "materialize")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert _online_rows(home) == rows


def test_two_materializes_at_once_leave_the_same_online_store(tmp_path, applied, materialized):
    _, rows, _ = materialized
    home = tmp_path / "home"
    shutil.copytree(applied, home)
    procs = []
    for _ in range(2):
        proc = subprocess.Popen(
            [sys.executable, "-m", "vigil.cli", "features", "materialize"],
            env=env_for(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        GROUPS.append(proc.pid)
        procs.append(proc)
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    for code, err in results:  # both succeed, or one stops with one clear sentence
        assert "Traceback" not in err, err[-3000:]
        assert code == 0 or (code == 2 and ": error: " in err), err[-3000:]
    assert any(code == 0 for code, _ in results)
    assert _online_rows(home) == rows
