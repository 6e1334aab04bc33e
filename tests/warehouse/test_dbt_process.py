"""`vigil dbt` as a process: it reports each model as it finishes, its dbt child dies with it
(issue 19 item 5), and a damaged warehouse file is one clear error (issue 19 item 9)."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from lakefiles import random_views, write_lake

from vigil import cli, config
from vigil.errors import UserError
from vigil.warehouse import lock as warehouse_lock

VIGIL = Path(sys.executable).parent / "vigil"
MODEL_DONE = re.compile(r"dbt build all: \d+/\d+ model \w+ OK \(\d+\.\d s\)")


def _readline(stream, deadline: float) -> str | None:
    ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
    return stream.readline() if ready else None


def test_a_killed_vigil_dbt_takes_its_dbt_child_and_the_lock_with_it(tmp_path):
    env = {**os.environ, "VIGIL_HOME": str(tmp_path)}
    write_lake(tmp_path / "lake", random_views(3, ["2026-10-01", "2026-10-02"]))
    proc = subprocess.Popen(
        [str(VIGIL), "dbt", "all"], env=env, stderr=subprocess.PIPE, text=True, bufsize=1
    )
    try:
        # the first model is reported while dbt still runs (the old runner printed nothing until
        # the end), so the kill lands mid-build
        deadline, seen = time.monotonic() + 180, []
        while not any(MODEL_DONE.search(line) for line in seen):
            line = _readline(proc.stderr, deadline)
            assert line, f"no model reported as it finished; stderr so far: {seen}"
            seen.append(line)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "dbt should be running as a child of vigil"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, f"dbt outlived its parent: {[p.cmdline()[:3] for p in alive]}"
    finally:
        if proc.poll() is None:
            proc.kill()
    # nobody writes any more: a writer gets the warehouse at once
    mp = pytest.MonkeyPatch()
    mp.setenv("VIGIL_HOME", str(tmp_path))
    try:
        with warehouse_lock.access(True, "after the kill", wait=False):
            pass
    finally:
        mp.undo()


def test_a_damaged_warehouse_is_one_error_naming_the_file_and_the_fix(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    write_lake(tmp_path / "lake", random_views(4, ["2026-10-01"]))
    warehouse = config.paths().warehouse
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    warehouse.write_bytes(b"not a database " * 1000)
    with (
        pytest.raises(
            UserError, match=re.escape(str(warehouse)) + r".*vigil dbt all --full-refresh"
        ),
        warehouse_lock.reading("test"),
    ):
        pass
    capsys.readouterr()
    assert cli.main(["uam", "--interval", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert str(warehouse) in err and "damaged" in err and "--full-refresh" in err
