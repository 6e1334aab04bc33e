"""The ingest manifest: a re-ingest skips hour files the lake already holds unchanged, and gives
the same counts and the same lake, byte for byte, as reading everything again
(``ingest(..., manifest=False)`` is the reference: it reads every file). A changed file, a deleted
partition (the fix for a damaged one) or a deleted quarantine file make the files concerned read
again.
"""

from __future__ import annotations

import hashlib
import shutil
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
