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

Stat cache: with each hash the manifest records the file's (size, mtime_ns, ctime_ns, inode),
taken *before* the hash (or the read), and ``checked_ns``, the clock after it. A later run takes a
file's recorded hash without reading the file when its stat is the recorded one and its mtime and
ctime are both older than ``checked_ns`` by more than :data:`RACY_NS` (else the file may have been
written again within the timestamp granularity of the hash: the "racy" case, hashed again, as
git does for its index). Any write to a file sets its ctime to the current time, which no user
call can set back, so a changed file is hashed again even if its size and mtime are forced back;
what the rule assumes is a clock that does not go back and file timestamps within
:data:`RACY_NS` of this machine's clock. ``verify=True`` hashes every file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

VERSION = 1
QUARANTINE_KEY = "quarantine"
# A file written less than this before its hash may have been written again within the same
# timestamp (coarse filesystem clocks: up to 2 s); its stat is not trusted.
RACY_NS = 2_000_000_000


def _now_ns() -> int:
    return time.time_ns()


def file_stat(path: Path) -> list[int] | None:
    """(size, mtime_ns, ctime_ns, inode) of a file, None if absent."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


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
    verify: bool = False  # hash every file, trust no recorded stat
    quarantine_rows: int | None = None  # rows of the quarantine file as the last run left it
    # output name -> {"stat": file_stat, "columns": [...]}: a lake file's columns as a run left it
    schemas: dict[str, dict] = field(default_factory=dict)
    hashed: int = 0  # known files hashed this run (the stat cache could not vouch for them)
    _stats: dict[str, list[int] | None] = field(default_factory=dict)  # key -> stat this run
    _hashed_keys: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, path: Path, max_age_days: float, verify: bool = False) -> Manifest:
        """The manifest at ``path``; an absent, unreadable or other-version one is empty (every
        file is read, as without a manifest)."""
        m = cls(path, max_age_days, verify=verify)
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
        m.quarantine_rows = data.get("quarantine_rows")
        m.schemas = data.get("schemas", {})
        return m

    def note_stat(self, key: str, path: Path) -> list[int] | None:
        """Take the stat of file ``key`` for this run (call before hashing or reading it)."""
        self._stats[key] = stat = file_stat(path)
        return stat

    def _trusted(self, key: str, stat: list[int] | None) -> str | None:
        """The recorded hash of ``key`` if its stat vouches for the content, else None."""
        rec = self.files.get(key)
        if self.verify or rec is None or stat is None or rec.get("stat") != stat:
            return None
        if max(stat[1], stat[2]) >= rec.get("checked_ns", 0) - RACY_NS:
            return None  # racy: written too close to its hash to tell a later write apart
        return rec["hash"]

    def digests(self, files: list[tuple[str, Path]]) -> dict[str, str]:
        """key -> content hash of each (key, path): the recorded hash where the stat cache
        vouches for it, else SHA-256 of the file (two files at a time when there are many:
        hashlib and reads release the GIL)."""
        out, todo = {}, []
        for key, path in files:
            digest = self._trusted(key, self.note_stat(key, path))
            if digest is None:
                todo.append((key, path))
            else:
                out[key] = digest
        self.hashed += len(todo)
        self._hashed_keys.update(k for k, _ in todo)
        out.update(zip((k for k, _ in todo), _hash_files([p for _, p in todo]), strict=True))
        return out

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
        if key in self._hashed_keys:  # hashed again, same content: its stat, checked now
            rec["stat"], rec["checked_ns"] = self._stats.get(key), _now_ns()
        return rec

    def recorded_quarantine_rows(self, dest: Path) -> int | None:
        """The quarantine file's row count as the last run recorded it, if the file is still as
        that run left it."""
        if self.quarantine_rows is None or self.outputs.get(QUARANTINE_KEY) != _stat_key(dest):
            return None
        return self.quarantine_rows

    def record(self, key: str, digest: str, read: int, quarantined: int, days: set[str]) -> None:
        """Note what reading file ``key`` gave (``digest``: of the bytes read, or taken before
        the read; its stat is the one :meth:`note_stat` took before either)."""
        self.files[key] = {
            "hash": digest,
            "read": read,
            "quarantined": quarantined,
            "days": sorted(days),
            "stat": self._stats.get(key),
            "checked_ns": _now_ns(),
        }

    def save(self, output: Callable[[str], Path], quarantine_rows: int | None = None) -> None:
        """Write the manifest with the current identity of every output its files name (and the
        quarantine file's row count); by temp file and rename, so a kill leaves the old manifest
        or the new one."""
        names = {d for rec in self.files.values() for d in rec["days"]} | {QUARANTINE_KEY}
        self.outputs = {n: _stat_key(output(n)) for n in sorted(names)}
        data = {
            "version": VERSION,
            "max_age_days": self.max_age_days,
            "files": dict(sorted(self.files.items())),
            "outputs": self.outputs,
            "quarantine_rows": quarantine_rows,
            "schemas": dict(sorted(self.schemas.items())),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=0))
        os.replace(tmp, self.path)


def _hash_files(paths: list[Path]) -> list[str]:
    if len(paths) < 8:
        return [file_hash(path) for path in paths]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        return list(pool.map(file_hash, paths))
