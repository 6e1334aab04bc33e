"""The ingest manifest: which raw hour files the lake already holds, so a re-ingest skips them.

For every hour file an ingest read, ``lake/_state/manifest.json`` records its content hash
(SHA-256 of the bytes: taken *before* the file is read when the manifest already knows the file,
to decide a skip; of the very bytes read otherwise; either way bytes appended meanwhile are never
taken as ingested), what reading it gave (lines read, lines quarantined), the lake partitions its
valid rows went to, and the setting that decides validity (``VIGIL_MAX_EVENT_AGE_DAYS``). At the
end of the run it records each of those partitions and the quarantine file as (size, mtime_ns).

A later run skips a file only if its hash is the recorded one, the setting is the same, and each
of its partitions (and the quarantine file, if it had rejected lines) is still exactly as that run
left it: a deleted or replaced partition (the fix for a damaged one) makes its files read again.
A skipped file counts as a re-read would: its lines are read, its rejected lines quarantined again
(their rows stay in the quarantine file), every other line a duplicate.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

VERSION = 1
QUARANTINE_KEY = "quarantine"


def file_hash(path: Path) -> str:
    h = hashlib.sha256()  # collision resistant, and hardware-accelerated on current CPUs
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _stat_key(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return [st.st_size, st.st_mtime_ns]


@dataclass
class Manifest:
    path: Path
    max_age_days: float
    files: dict[str, dict] = field(default_factory=dict)
    outputs: dict[str, list[int] | None] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, max_age_days: float) -> Manifest:
        """The manifest at ``path``; an absent, unreadable or other-version one is empty (every
        file is read, as without a manifest)."""
        m = cls(path, max_age_days)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return m
        except (OSError, ValueError) as exc:
            log.warning("ingest: manifest %s unreadable (%s): every file is read again", path, exc)
            return m
        if data.get("version") != VERSION or data.get("max_age_days") != max_age_days:
            return m
        m.files = data.get("files", {})
        m.outputs = data.get("outputs", {})
        return m

    def unchanged(self, key: str, digest: str, output: Callable[[str], Path]) -> dict | None:
        """The record of file ``key`` if it may be skipped (same content, outputs intact).
        ``output(name)``: the file of an output (a day partition "YYYY-MM-DD" or "quarantine")."""
        rec = self.files.get(key)
        if rec is None or rec.get("hash") != digest:
            return None
        names = list(rec["days"]) + ([QUARANTINE_KEY] if rec["quarantined"] else [])
        for name in names:
            recorded = self.outputs.get(name)
            if recorded is None or _stat_key(output(name)) != recorded:
                return None
        return rec

    def record(self, key: str, digest: str, read: int, quarantined: int, days: set[str]) -> None:
        self.files[key] = {
            "hash": digest,
            "read": read,
            "quarantined": quarantined,
            "days": sorted(days),
        }

    def save(self, output: Callable[[str], Path]) -> None:
        """Write the manifest with the current identity of every output its files name; by
        temp file and rename, so a kill leaves the old manifest or the new one."""
        names = {d for rec in self.files.values() for d in rec["days"]} | {QUARANTINE_KEY}
        self.outputs = {n: _stat_key(output(n)) for n in sorted(names)}
        data = {
            "version": VERSION,
            "max_age_days": self.max_age_days,
            "files": dict(sorted(self.files.items())),
            "outputs": self.outputs,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=0))
        os.replace(tmp, self.path)
