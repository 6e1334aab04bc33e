"""Snapshot streams of `vigil ingest`: whole files validated, deduplicated by key and written
as one lake file each (users, labels, the accounts streams, the scoring service's appeal
labels), and the service logs under the data root. Split out of :mod:`vigil.lake.ingest`,
which drives them; ``run`` is its ``_Run`` (manifest, output, quarantine, sources).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from vigil.contracts import appeal_label_schema, device_schema, enforcement_schema
from vigil.lake.arrays import table_from_rows
from vigil.lake.service_logs import decision_files, ingest_decisions
from vigil.lake.store import keep_last, write_snapshot
from vigil.lake.validation import (
    Bad,
    check_appeal_label,
    check_device,
    check_enforcement,
    parse_line,
    raw_text,
)

log = logging.getLogger("vigil.lake.ingest")


@dataclass
class Counts:
    read: int = 0
    loaded: int = 0
    quarantined: int = 0
    duplicates: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "read": self.read,
            "loaded": self.loaded,
            "quarantined": self.quarantined,
            "duplicates": self.duplicates,
        }


def _read_snapshot_file(path: Path, check) -> tuple[list[tuple], int, list]:
    lines = path.read_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    rows, quarantine = [], []
    for number, line in enumerate(lines, start=1):
        try:
            rows.append(check(parse_line(line)))
        except Bad as bad:
            quarantine.append((number, bad.args[0], raw_text(line)))
    return rows, len(lines), quarantine


def _snapshot_table(rows: list[tuple], schema):
    return table_from_rows(rows, schema)


def ingest_snapshot(
    raw: Path, name: str, check, schema, key: str, lake_dir: Path, run, stream: str = ""
):
    """One snapshot file -> its lake file (``lake_dir/<stream>.parquet``; ``schema``: a
    contracts schema function, called only when the file is read; the stream is the
    file's name unless given). An empty file is a valid, empty snapshot, and so is
    an absent one when the lake has none yet (activity logs before any labels); a file whose
    every line is rejected keeps the lake's previous snapshot (garbage is not news)."""
    counts = Counts()
    path = raw / name
    stream = stream or name.removesuffix(".jsonl")
    dest = lake_dir / f"{stream}.parquet"
    if not path.exists():
        if not dest.exists():  # logs without this file yet: nothing known, an empty snapshot
            write_snapshot(dest, _snapshot_table([], schema()), key)
        return counts
    manifest_key = f"{raw}/{name}"
    digest = None
    if run.manifest is not None:
        digest = run.manifest.digests([(manifest_key, path)])[manifest_key]
        rec = run.manifest.unchanged(manifest_key, digest, run.output)
        if rec is not None:  # the lake's snapshot is this file's: count it as a re-read would
            counts.read, counts.quarantined = rec["read"], rec["quarantined"]
            counts.duplicates = counts.read - counts.quarantined
            log.info("ingest: %s unchanged since its last ingest: skipped", path)
            return counts
    rows, counts.read, bad = _read_snapshot_file(path, check)
    run.sources.add((str(raw), stream, name))
    run.quarantine.extend(
        (stream, str(raw), name, line, reason, text) for line, reason, text in bad
    )
    counts.quarantined = len(bad)
    table = keep_last(_snapshot_table(rows, schema()), key)
    in_file_duplicates = len(rows) - table.num_rows
    if table.num_rows or counts.read == 0:
        counts.loaded, unchanged = write_snapshot(dest, table, key)
    else:
        unchanged = 0
        log.warning("ingest: %s has no valid rows; keeping the lake's previous snapshot", name)
    counts.duplicates = in_file_duplicates + unchanged
    if digest is not None and (table.num_rows or counts.read == 0):
        run.manifest.record(manifest_key, digest, counts.read, len(bad), {stream})
    log.info(
        "ingest: %s: read %d, loaded %d, quarantined %d, duplicates %d",
        path,
        counts.read,
        counts.loaded,
        counts.quarantined,
        counts.duplicates,
    )
    return counts


def ingest_account_streams(raw: Path, paths, run) -> dict:
    """enforcement.jsonl and devices.jsonl, when the raw folder has them (accounts worlds)."""
    streams = {
        "enforcement": (check_enforcement, enforcement_schema, "enforcement_id"),
        "devices": (check_device, device_schema, "seen_id"),
    }
    out = {}
    for name, (check, schema, key) in streams.items():
        if (raw / f"{name}.jsonl").exists():
            lake_dir = getattr(paths, f"lake_{name}")
            out[name] = ingest_snapshot(raw, f"{name}.jsonl", check, schema, key, lake_dir, run)
    return out


def ingest_service_logs(paths, run) -> dict:
    """The scoring service's decision log and appeal labels (under the data root, not the raw
    folder), reported when the data root has them; their lake files exist either way (empty)."""
    out = {}
    manifest = (run.manifest, run.output) if run.manifest is not None else None
    counts = ingest_decisions(
        paths.decision_log,
        paths.lake_decisions / "decisions.parquet",
        manifest,
        run.quarantine,
        run.sources,
    )
    if decision_files(paths.decision_log):
        out["decisions"] = Counts(**counts)
    labels = ingest_snapshot(
        paths.appeals,
        "labels.jsonl",
        check_appeal_label,
        appeal_label_schema,
        "appeal_id",
        paths.lake_appeal_labels,
        run,
        stream="appeal_labels",
    )
    if (paths.appeals / "labels.jsonl").exists():
        out["appeal_labels"] = labels
    return out


def parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.read_metadata(path).num_rows
