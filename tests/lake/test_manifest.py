"""The ingest manifest: a re-ingest skips hour files the lake already holds unchanged, and gives
the same counts and the same lake, byte for byte, as reading everything again
(``ingest(..., manifest=False)`` is the reference: it reads every file). A changed file, a deleted
partition (the fix for a damaged one) or a deleted quarantine file make the files concerned read
again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from sim.world import simulate
from vigil.lake.ingest import ingest

COUNTS = ("read", "loaded", "quarantined", "duplicates")


@pytest.fixture
def raw(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "home"))
    out = tmp_path / "raw"
    simulate(out, users=60, days=4, start=date(2026, 10, 1), seed=5, corrupt_rate=0.01)
    return out


def _lake_digest(home: Path) -> dict[str, str]:
    lake = home / "lake"
    return {
        p.relative_to(lake).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(lake.rglob("*.parquet"))
    }


def _events_only(digests: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in digests.items() if k.startswith("events/")}


def _counts(result: dict) -> dict:
    return {k: result["streams"]["events"][k] for k in COUNTS}


def test_reingest_skips_every_unchanged_file_with_the_same_counts_and_lake(raw, tmp_path):
    home = tmp_path / "home"
    first = ingest(raw)
    assert first["unchanged_files"] == 0
    lake_after_first = _lake_digest(home)
    again = ingest(raw)
    assert again["unchanged_files"] == again["files"] == first["files"]
    assert again["days"] == []
    assert _lake_digest(home) == lake_after_first
    # the reference: reading every file again
    reread = ingest(raw, manifest=False)
    assert reread["unchanged_files"] == 0
    assert _counts(again) == _counts(reread)
    assert again["streams"] == reread["streams"]  # users and labels too (skipped as well)
    assert {k: again[k] for k in COUNTS} == {k: reread[k] for k in COUNTS}
    assert again["quarantine_rows"] == reread["quarantine_rows"] > 0
    ev = _counts(first)
    # hand check: a re-read loads nothing; every valid line is a duplicate
    assert _counts(again) == {
        "read": ev["read"],
        "loaded": 0,
        "quarantined": ev["quarantined"],
        "duplicates": ev["read"] - ev["quarantined"],
    }
    assert _lake_digest(home) == lake_after_first


def test_changed_file_and_deleted_partition_are_read_again(raw, tmp_path, monkeypatch):
    home = tmp_path / "home"
    ingest(raw)
    files = sorted(raw.glob("events/dt=*/hour=*.jsonl"))
    # 1. a file grows: only it is read again; the lake equals a fresh ingest of the final input
    grown = files[5]
    extra = grown.read_bytes().splitlines()[0].replace(b'"event_id":"', b'"event_id":"new-')
    with open(grown, "ab") as f:
        f.write(extra + b"\n")
    result = ingest(raw)
    assert result["unchanged_files"] == len(files) - 1
    assert result["streams"]["events"]["loaded"] == 1
    fresh_home = tmp_path / "fresh"
    lake_now = _lake_digest(home)
    shutil.copytree(raw, tmp_path / "raw2")
    monkeypatch.setenv("VIGIL_HOME", str(fresh_home))
    ingest(tmp_path / "raw2")
    assert _events_only(_lake_digest(fresh_home)) == _events_only(lake_now)
    monkeypatch.setenv("VIGIL_HOME", str(home))
    # 2. a partition is deleted (the fix for a damaged file): the files that fed it are read
    # again and it comes back the same; the others stay skipped
    day_file = home / "lake" / "events" / "dt=2026-10-02" / "events.parquet"
    before = hashlib.sha256(day_file.read_bytes()).hexdigest()
    day_file.unlink()
    result = ingest(raw)
    assert 0 < result["unchanged_files"] < len(files)
    assert "2026-10-02" in result["days"]
    assert hashlib.sha256(day_file.read_bytes()).hexdigest() == before
    # 3. the quarantine file is deleted: files with rejected lines are read again, rows return
    quarantine = home / "lake" / "quarantine" / "quarantine.parquet"
    q_before = hashlib.sha256(quarantine.read_bytes()).hexdigest()
    quarantine.unlink()
    ingest(raw)
    assert hashlib.sha256(quarantine.read_bytes()).hexdigest() == q_before
    # and now everything is recorded again: a last run skips every file
    assert ingest(raw)["unchanged_files"] == len(files)


# The stat cache. Files written less than RACY_NS before their hash are hashed again ("racy");
# the tests move the manifest's clock 10 s ahead instead of sleeping, so that the files of the
# fixture are safely older than their hash.
def _later_clock(monkeypatch) -> None:
    import time

    monkeypatch.setattr("vigil.lake.manifest._now_ns", lambda: time.time_ns() + 10 * 10**9)


def test_stat_cache_skips_hashing_until_a_file_changes(raw, tmp_path, monkeypatch):
    _later_clock(monkeypatch)
    first = ingest(raw)
    n = first["files"]
    again = ingest(raw)
    assert again["unchanged_files"] == n
    assert again["hashed_files"] == 0  # stat unchanged, safely older than its hash
    files = sorted(raw.glob("events/dt=*/hour=*.jsonl"))
    # touched, same bytes: hashed once, skipped, its new stat recorded
    touched = files[3]
    st = touched.stat()
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 5 * 10**9))
    result = ingest(raw)
    assert (result["hashed_files"], result["unchanged_files"], result["loaded"]) == (1, n, 0)
    assert ingest(raw)["hashed_files"] == 0
    # same size, different bytes, mtime forced back: the ctime changed, so it is hashed and read
    changed = files[7]
    st = changed.stat()
    data = changed.read_bytes()
    i = data.index(b'"event_id":"') + len(b'"event_id":"')
    swapped = data[:i] + (b"X" if data[i : i + 1] != b"X" else b"Y") + data[i + 1 :]
    changed.write_bytes(swapped)
    os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert changed.stat().st_size == st.st_size and changed.stat().st_mtime_ns == st.st_mtime_ns
    result = ingest(raw)
    assert result["hashed_files"] == 1
    assert result["unchanged_files"] == n - 1
    assert result["streams"]["events"]["loaded"] == 1  # the renamed event id is new
    # appended: read again
    with open(files[9], "ab") as f:
        f.write(files[9].read_bytes().splitlines()[0].replace(b'"event_id":"', b'"event_id":"z-'))
        f.write(b"\n")
    result = ingest(raw)
    assert (result["unchanged_files"], result["streams"]["events"]["loaded"]) == (n - 1, 1)
    # --verify: every known file hashed, none read
    result = ingest(raw, verify=True)
    assert result["hashed_files"] == n + 2  # the hour files and users, labels
    assert result["unchanged_files"] == n


def test_racy_files_are_hashed_until_safely_older_than_their_hash(raw, monkeypatch):
    import time

    first = ingest(raw)  # the real clock: every file was written just before its hash
    n = first["files"]
    assert ingest(raw)["hashed_files"] == n + 2  # racy: not trusted, hashed again
    # a write within the granularity of the hash, same size and mtime, caught by the hash
    path = sorted(raw.glob("events/dt=*/hour=*.jsonl"))[2]
    st = path.stat()
    data = path.read_bytes()
    i = data.index(b'"event_id":"') + len(b'"event_id":"')
    path.write_bytes(data[:i] + (b"X" if data[i : i + 1] != b"X" else b"Y") + data[i + 1 :])
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert ingest(raw)["streams"]["events"]["loaded"] == 1
    clock = time.time_ns() + 10 * 10**9
    monkeypatch.setattr("vigil.lake.manifest._now_ns", lambda: clock)
    assert ingest(raw)["hashed_files"] == n + 2  # still racy against the previous hash times
    assert ingest(raw)["hashed_files"] == 0  # now hashed 10 s after the last write


def test_reingest_of_unchanged_input_imports_no_pyarrow(raw, tmp_path, monkeypatch):
    _later_clock(monkeypatch)
    ingest(raw)
    child = (
        "import sys, time\n"
        "import vigil.lake.manifest as mf\n"
        "mf._now_ns = lambda: time.time_ns() + 10 * 10**9\n"
        "from vigil.lake.ingest import ingest\n"
        f"r = ingest({str(raw)!r})\n"
        "assert r['unchanged_files'] == r['files'] and r['hashed_files'] == 0, r\n"
        "print(sorted(n for n in ('pyarrow', 'numpy', 'pandas') if n in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", child],
        check=False,
        cwd=Path(__file__).resolve().parents[2],
        env=os.environ | {"VIGIL_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"
