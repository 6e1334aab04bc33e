"""`python -m sim.sweep --graph`: its preconditions are one clear message each."""

from __future__ import annotations

import pytest

from sim import graph_sweep, sweep
from vigil.errors import UserError


def test_graph_without_retrain_is_refused_with_the_fix(capsys):
    assert sweep.main(["--seeds", "1", "--graph"]) == 2
    out = capsys.readouterr().out
    assert "--graph needs --retrain TAG" in out and "without --graph" in out


def test_graph_embeddings_need_a_finished_sweep_run(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    with pytest.raises(UserError, match="run the sweep without --graph first"):
        graph_sweep.ensure_embeddings(1)
