"""`warehouse_lock.access`: Vigil's processes take turns on the DuckDB warehouse (one writer, or any
number of readers), wait for each other instead of failing, and say who holds it."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

from vigil.warehouse import lock as warehouse_lock

HOLDER = textwrap.dedent(
    """
    import pathlib, sys, time
    from vigil.warehouse import dbt as warehouse
    from vigil.warehouse import lock as warehouse_lock
    exclusive, released = sys.argv[1] == "write", pathlib.Path(sys.argv[2])
    with warehouse_lock.access(exclusive, "test holder"):
        print("held", flush=True)
        sys.stdin.readline()  # until the test says go
        time.sleep(0.3)  # long enough for a waiter to be waiting
        released.write_text("released")
    """
)


def _hold(mode: str, released) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, mode, str(released)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_writer_makes_others_wait_and_names_itself(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    released = tmp_path / "released"
    holder = _hold("write", released)
    try:
        busy = pytest.raises(warehouse_lock.WarehouseBusy, match=r"held by pid \d+ \(test holder\)")
        with busy, warehouse_lock.access(False, "reader", wait=False):
            pass
        holder.stdin.write("go\n")
        holder.stdin.flush()
        with caplog.at_level(logging.INFO, logger="vigil.warehouse.lock"), warehouse_lock.access(False, "r"):
            # got in only once the holder had finished its block
            assert released.read_text() == "released"
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
    assert "r: waiting for the warehouse (held by pid" in caplog.text


def test_readers_share_and_a_writer_waits_for_them(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    released = tmp_path / "released"
    holder = _hold("read", released)
    try:
        with warehouse_lock.access(False, "second reader", wait=False):
            pass  # two readers at once
        busy = pytest.raises(warehouse_lock.WarehouseBusy, match="held by a reader")
        with busy, warehouse_lock.access(True, "writer", wait=False):
            pass
        holder.stdin.write("go\n")
        holder.stdin.flush()
        with warehouse_lock.access(True, "writer"):
            assert released.read_text() == "released"
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0


def test_nested_use_in_one_process_passes_through(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    with (
        warehouse_lock.access(True, "outer"),
        warehouse_lock.access(False, "inner read", wait=False),
        warehouse_lock.access(True, "inner write", wait=False),
    ):
        pass
    # released: another process can take it at once
    code = "from vigil.warehouse import lock as warehouse_lock\nwith warehouse_lock.access(True, 'after', wait=False): pass"
    subprocess.run([sys.executable, "-c", code], check=True)
