"""Fault injection (marker `faults`): the seeded world every case copies, and no process left
behind. Helpers live in tests/support/faultlib.py."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from faultlib import GROUPS, WORLD


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
