"""Fault injection helpers (tests/faults): run, kill and compare vigil commands.

Every command runs as a user runs it (``python -m vigil.cli ...`` in its own process group, with
its own data root), so a SIGKILL hits the real process and a damaged file meets the real reader.
A small simulated world (seeded) is generated once per session and copied into each case.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

# process groups started by kill_after; tests/faults/conftest.py kills what is left after each case
GROUPS: list[int] = []
WORLD = {"users": 400, "days": 3, "start": date(2026, 10, 1), "seed": 5}
# columns that hold the time a row was written, not data: equal runs differ only there
WRITE_TIME_COLUMNS = {"built_at", "written_at", "exported_at", "ingested_at", "loaded_at"}
TRACEBACK = "Traceback (most recent call last)"


def env_for(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["VIGIL_HOME"] = str(home)
    return env


def vigil(home: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run one vigil command to completion in its own process group."""
    return subprocess.run(
        [sys.executable, "-m", "vigil.cli", *args],
        env=env_for(home),
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
        check=False,
    )


def kill_after(home: Path, args: list[str], delay: float) -> int | None:
    """Start ``vigil ARGS``, SIGKILL the vigil process (only it, as `kill -9 PID` does) after
    ``delay`` seconds; return the exit code if it finished first, None if it was killed. Any
    child it leaves behind is killed with its process group once the caller is done with it
    (tests/faults/conftest.py)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigil.cli", *args],
        env=env_for(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    GROUPS.append(proc.pid)
    try:
        return proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return None


def assert_clear_error(proc: subprocess.CompletedProcess, *names: str) -> str:
    """Exit 2, no traceback, and an error sentence that names each of ``names``."""
    assert TRACEBACK not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    errors = [line for line in proc.stderr.splitlines() if ": error: " in line]
    assert errors, proc.stderr[-3000:]
    for name in names:
        assert any(name in line for line in errors), (name, errors)
    return errors[-1]


def file_digest(root: Path, skip: tuple[str, ...] = ("_state",)) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not set(p.relative_to(root).parts) & set(skip)
    }


def parquet_rows(path: Path, home: Path | None = None) -> list[tuple]:
    """The file's rows, sorted, write-time columns left out; the data root's own path (which
    differs between the runs compared) reads as <home>."""
    table = pq.read_table(path)
    keep = [c for c in table.column_names if c not in WRITE_TIME_COLUMNS]
    rows = [tuple(r.values()) for r in table.select(keep).to_pylist()]
    if home is not None:
        rows = [
            tuple(v.replace(str(home), "<home>") if isinstance(v, str) else v for v in r)
            for r in rows
        ]
    return sorted(rows, key=repr)


def warehouse_tables(db: Path) -> dict[str, list[tuple]]:
    """Every table and view in the warehouse, rows sorted, write-time columns left out."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        names = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables "
                "where table_schema = 'main' order by 1"
            ).fetchall()
        ]
        out = {}
        for name in names:
            columns = [r[0] for r in con.execute(f'describe "{name}"').fetchall()]
            keep = ", ".join(f'"{c}"' for c in columns if c not in WRITE_TIME_COLUMNS)
            out[name] = con.execute(f'select {keep} from "{name}" order by all').fetchall()
    finally:
        con.close()
    return out


def fresh_home(tmp_path: Path, world: Path, name: str = "home") -> Path:
    """A data root whose raw folder is a copy of the world (no lake yet)."""
    home = tmp_path / name
    shutil.copytree(world, home / "raw")
    return home


def timed(home: Path, *args: str) -> float:
    started = time.monotonic()
    proc = vigil(home, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return time.monotonic() - started


TESTS = Path(__file__).resolve().parents[1]
# `vigil train`'s own code (training.train.train) on the hand-made training set of tests/training
# (no Feast needed), promoting what it trains: the registry writes are the real ones.
TRAIN_SCRIPT = f"""
import sys
sys.path.insert(0, {str(TESTS / "training")!r})
from conftest import make_training_set
from training.config import load
from training.train import train
train(load(epochs=1, target_precision=0.8, promote="always"), training_set=make_training_set(300))
"""
# registry writes alone: a large model saved (with an extra file, as train's snapshot) and promoted
SAVE_SCRIPT = """
import os, sys
from training import registry
blob = {"weights": os.urandom(8_000_000)}
registry.save(sys.argv[1], blob, {"feature_service": "moderation_v1"},
              extra=lambda d: (d / "training_set.parquet").write_bytes(os.urandom(2_000_000)))
registry.promote(sys.argv[1])
"""


def start_python(home: Path, script: str, *args: str) -> subprocess.Popen:
    """``python -c SCRIPT ARGS`` with ``home`` as data root, in its own process group."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        env=env_for(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    GROUPS.append(proc.pid)
    return proc


def kill_when(proc: subprocess.Popen, pattern: str, delay: float, timeout: float = 600) -> bool:
    """SIGKILL ``proc`` ``delay`` seconds after a path matching ``pattern`` (a glob, absolute)
    exists; False if it finished first."""
    folder = Path(pattern).parent
    deadline = time.monotonic() + timeout
    while not any(folder.glob(Path(pattern).name)):
        if proc.poll() is not None:
            return False
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing matched {pattern} in {timeout:.0f} s")
        time.sleep(0.01)
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True


def _digest(value) -> str:
    import joblib
    import torch

    if isinstance(value, torch.nn.Module):  # by its weights: its pickle differs call to call
        return joblib.hash({k: t.detach().cpu().numpy() for k, t in value.state_dict().items()})
    if hasattr(value, "__dict__") and any(
        isinstance(v, torch.nn.Module) for v in vars(value).values()
    ):
        return joblib.hash({k: _digest(v) for k, v in sorted(vars(value).items())})
    return joblib.hash(value)


def bundle_digest(bundle: dict) -> dict[str, str]:
    """A digest per fitted object of a model bundle (training.registry.load), equal for equal
    objects in any process."""
    return {k: _digest(v) for k, v in sorted(bundle.items()) if k not in ("meta", "model_id")}
