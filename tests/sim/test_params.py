"""The simulator's probabilities and rates live in one table, sim.params.WorldParams (``P``)."""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

import sim
from sim import params
from sim.world import simulate

SIM_DIR = Path(sim.__file__).parent


def test_every_parameter_is_read_by_the_simulator():
    source = "\n".join(p.read_text() for p in sorted(SIM_DIR.glob("*.py")) if p.name != "params.py")
    unused = [
        f.name
        for f in dataclasses.fields(params.WorldParams)
        if not re.search(rf"\bP\.{f.name}\b", source)
    ]
    assert unused == []


def test_the_table_drives_the_world(tmp_path, monkeypatch):
    # Nobody logs in and nothing is harmful: the files must say so, whatever the seed.
    quiet = dataclasses.replace(
        params.P,
        p_login_attacker=0.0,
        p_login_bot=0.0,
        p_login_human=0.0,
        p_harmful_attacker=0.0,
        p_harmful_bot=0.0,
        p_harmful_abuser=0.0,
        p_harmful_ordinary=0.0,
    )
    table = params.P
    for name, module in list(sys.modules.items()):
        if name.startswith("sim.") and getattr(module, "P", None) is table:
            monkeypatch.setattr(module, "P", quiet)
    r = simulate(tmp_path / "raw", users=300, days=2, seed=3, corrupt_rate=0.0, progress=False)
    assert r["posts"] > 0 and r["actions"]["view"] > 0
    assert r["actions"]["login"] == 0
    assert r["harmful_posts"] == 0
    lines = "".join(p.read_text() for p in sorted((tmp_path / "raw" / "events").rglob("*.jsonl")))
    assert '"action":"login"' not in lines
