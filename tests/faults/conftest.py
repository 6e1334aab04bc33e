"""Fault injection (marker `faults`): the seeded world every case copies, and no process left
behind. Helpers live in tests/support/faultlib.py."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from faultlib import GROUPS, WORLD, fresh_home, timed, vigil


@pytest.fixture(autouse=True)
def reap():
    """After each case: kill whatever is left of the process groups it started."""
    yield
    while GROUPS:
        pgid = GROUPS.pop()
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> Path:
    """A seeded simulated raw folder (users, labels, hour files), generated once."""
    from sim.world import simulate

    raw = tmp_path_factory.mktemp("faults-world") / "raw"
    simulate(raw, **WORLD)
    return raw


@pytest.fixture(scope="session")
def dbt_built(tmp_path_factory, world) -> tuple[Path, Path, float]:
    """(a data root after `vigil ingest`, a copy of it after `vigil dbt all`, that run's seconds),
    built once: the dbt kill cases and the Feast cases start from them."""
    import shutil

    lake_home = fresh_home(tmp_path_factory.mktemp("dbt-lake"), world)
    assert vigil(lake_home, "ingest").returncode == 0
    ref_home = tmp_path_factory.mktemp("dbt-ref") / "home"
    shutil.copytree(lake_home, ref_home)
    return lake_home, ref_home, timed(ref_home, "dbt", "all")
