"""vigil_accounts' steps reuse their last result when inputs, parameters and code are unchanged
(vigil.accounts.reuse), and config.using_home runs a block in another data root."""

import os
import time

import pytest

from vigil import config
from vigil.accounts import reuse


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    (tmp_path / "lake" / "events").mkdir(parents=True)
    (tmp_path / "lake" / "events" / "a.parquet").write_bytes(b"one")
    return tmp_path


def _step(home, calls, **kw):
    out = home / "out.txt"

    def compute():
        calls.append(1)
        out.write_text("x")
        return {"rows": len(calls), "score": 0.5}

    return reuse.run("demo", compute, inputs=[home / "lake" / "events"], outputs=[out], **kw)


def test_unchanged_inputs_are_reused_and_any_change_recomputes(home):
    calls = []
    first = _step(home, calls, params={"seed": 0})
    assert first == {"rows": 1, "score": 0.5, "reused": False}
    again = _step(home, calls, params={"seed": 0})
    assert again == {"rows": 1, "score": 0.5, "reused": True}
    assert len(calls) == 1

    _step(home, calls, params={"seed": 1})  # another parameter
    assert len(calls) == 2
    f = home / "lake" / "events" / "a.parquet"
    f.write_bytes(b"two")  # same size, new bytes (and mtime)
    os.utime(f, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert _step(home, calls, params={"seed": 1})["reused"] is False
    (home / "lake" / "events" / "b.parquet").write_bytes(b"new day")  # a new input file
    assert _step(home, calls, params={"seed": 1})["rows"] == 4
    (home / "out.txt").unlink()  # the output is gone
    assert _step(home, calls, params={"seed": 1})["reused"] is False
    assert _step(home, calls, params={"seed": 1}, force=True)["reused"] is False
    assert _step(home, calls, params={"seed": 1})["reused"] is True
    assert len(calls) == 6


def test_a_failing_step_leaves_no_stamp(home):
    def boom():
        raise RuntimeError("gate failed")

    with pytest.raises(RuntimeError):
        reuse.run("gate", boom, inputs=[home / "lake"])
    assert not reuse.stamp_path("gate").exists()
    calls = []
    assert (
        reuse.run("gate", lambda: calls.append(1) or {"ok": 1}, inputs=[home / "lake"])["reused"]
        is False
    )


def test_the_fingerprint_covers_the_code():
    base = reuse.fingerprint([], {})
    assert base == reuse.fingerprint([], {})
    extra = config.REPO_ROOT / "expectations" / "accounts"
    assert reuse.fingerprint([], {}, code=[extra]) != base


def test_using_home_switches_the_data_root_and_restores_it(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "main"))
    with config.using_home(tmp_path / "accounts_world") as root:
        assert root == (tmp_path / "accounts_world").resolve()
        assert config.paths().lake == root / "lake"
    assert config.paths().home == (tmp_path / "main").resolve()
    with config.using_home(None) as root:
        assert root == (tmp_path / "main").resolve()
    monkeypatch.delenv("VIGIL_HOME")
    with pytest.raises(KeyError), config.using_home(tmp_path / "x"):
        raise KeyError("inside")
    assert "VIGIL_HOME" not in os.environ
