"""`vigil notes ingest`: the four download files -> the lake's notes tables, bad rows quarantined.

Reads ``<raw>/notes/{notes,ratings,noteStatusHistory,userEnrollment}-00000.tsv`` (the public
Community Notes download format, :mod:`vigil.notes.format`) with the scorer's own validating
readers (:mod:`vigil.notes.io`: a malformed file is one error naming the file, the column and the
fix; single bad rows are set aside with their reason) and writes, under ``lake/notes/``:

- ``notes.parquet``, ``ratings.parquet``, ``status_history.parquet``, ``enrollment.parquet``:
  the valid rows, typed, with the reference's column names. A download is a full snapshot, so
  each file replaces the lake's table (status history and enrollment are optional: absent files
  give empty tables);
- ``quarantine.parquet``: every rejected row with its raw folder, source file, line, reason and
  text. Append-only across sources: ingesting a source again replaces that source's rows, other
  sources' rows are kept;
- ``_manifest.json``: the sha256 of every input file and the run's counts. An ingest whose input
  files all match the manifest (same folder, same bytes) writes nothing (a re-ingest changes no byte of the lake).

Counts per file: ``read = loaded + quarantined``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import time
from pathlib import Path

from vigil import config
from vigil.errors import UserError
from vigil.notes import format as fmt

log = logging.getLogger(__name__)

# lake table -> (download file, required)
TABLES: dict[str, tuple[str, bool]] = {
    "notes": (fmt.NOTES_FILE, True),
    "ratings": (fmt.RATINGS_FILE, True),
    "status_history": (fmt.STATUS_HISTORY_FILE, False),
    "enrollment": (fmt.ENROLLMENT_FILE, False),
}
MANIFEST = "_manifest.json"
QUARANTINE = "quarantine.parquet"
QUARANTINE_COLUMNS = ("raw_dir", "source_file", "line_number", "reason", "raw")


def lake_dir() -> Path:
    return config.paths().lake / "notes"


def table_path(table: str) -> Path:
    return lake_dir() / f"{table}.parquet"


def notes_dir(raw: Path) -> Path:
    """The folder holding the download files: ``<raw>/notes`` or ``raw`` itself."""
    for candidate in (raw / "notes", raw):
        if (candidate / fmt.NOTES_FILE).is_file():
            return candidate
    raise UserError(
        f"no {fmt.NOTES_FILE} in {raw} or {raw / 'notes'}: run `vigil simulate-notes --out {raw}` "
        "or point --raw at a folder holding the Community Notes download files."
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _lines(path: Path) -> int:
    """Data rows of a download file: non-blank lines after the header (the reader skips blank
    lines, so they are neither loaded nor quarantined)."""
    with path.open("rb") as handle:
        return max(0, sum(1 for line in handle if line.strip()) - 1)


@contextlib.contextmanager
def _lock():
    import fcntl

    lake_dir().mkdir(parents=True, exist_ok=True)
    with open(lake_dir() / ".ingest.lock", "a") as handle:  # "a": the lock file stays untouched
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"another `vigil notes ingest` is writing {lake_dir()}: wait for it."
            ) from None
        yield


def read_manifest() -> dict:
    path = lake_dir() / MANIFEST
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}


def _write_atomic(frame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def _read_file(table: str, path: Path, quarantine):
    from vigil.notes import io

    readers = {
        "notes": io.read_notes,
        "ratings": io.read_ratings,
        "status_history": io.read_status_history,
        "enrollment": io.read_enrollment,
    }
    return readers[table](path, quarantine)


def _empty(table: str):
    import pandas as pd

    from vigil.notes import io

    file_name = TABLES[table][0]
    types = dict(fmt.COLUMNS[file_name])
    dtypes = {"int64": "int64", "int8": "Int64", "float64": "float64"}
    return pd.DataFrame(
        {c: pd.Series(dtype=dtypes.get(types[c], "string")) for c in io.USED_COLUMNS[file_name]}
    )


def ingest(raw_dir: str | Path | None = None) -> dict:
    """Validate the download files under ``raw_dir`` into ``lake/notes``; return the counts."""
    raw = Path(raw_dir) if raw_dir is not None else config.paths().raw
    if not raw.is_dir():
        raise UserError(
            f"raw directory {raw} does not exist: run `vigil simulate-notes --out {raw}` or pass --raw DIR."
        )
    source = notes_dir(raw.resolve())
    started = time.perf_counter()
    files = {t: source / name for t, (name, _) in TABLES.items() if (source / name).is_file()}
    missing = [required[0] for t, required in TABLES.items() if required and t not in files]
    if missing:
        raise UserError(f"{source}: {missing[0]} is missing; the notes pipeline needs it.")
    hashes = {TABLES[t][0]: _sha256(p) for t, p in files.items()}
    with _lock():
        old = read_manifest()
        same = old.get("files") == hashes and old.get("raw_dir") == str(source)
        if same and all(table_path(t).is_file() for t in TABLES):
            counts = dict(old.get("counts", {}))
            log.info("notes ingest: %s unchanged since the last ingest: nothing written", source)
            return {**counts, "unchanged": True, "raw_dir": str(source)}
        counts = _load(source, files)
        counts["seconds"] = round(time.perf_counter() - started, 2)
        manifest = {"raw_dir": str(source), "files": hashes, "counts": counts}
        tmp = lake_dir() / f".{MANIFEST}.partial"
        tmp.write_text(json.dumps(manifest, indent=2))
        os.replace(tmp, lake_dir() / MANIFEST)
    log.info(
        "notes ingest: %d rows read, %d loaded, %d quarantined (%s) from %s into %s in %.1f s",
        counts["read"],
        counts["loaded"],
        counts["quarantined"],
        ", ".join(f"{t} {c['loaded']}/{c['read']}" for t, c in counts["tables"].items()),
        source,
        lake_dir(),
        counts["seconds"],
    )
    return {**counts, "unchanged": False, "raw_dir": str(source)}


def _load(source: Path, files: dict[str, Path]) -> dict:
    from vigil.notes import io

    quarantine = io.Quarantine()
    tables: dict[str, dict] = {}
    frames = {}  # every file read (and validated) before any is written: no half-ingested lake
    for table in TABLES:
        path = files.get(table)
        frames[table] = _read_file(table, path, quarantine) if path else _empty(table)
        tables[table] = {"read": _lines(path) if path else 0, "loaded": len(frames[table])}
    for table, frame in frames.items():
        _write_atomic(frame, table_path(table))
    rows = [
        (str(source), r["file"], int(r["line"]), str(r["reason"]), str(r["raw"])[:2000])
        for r in quarantine.rows
    ]
    for table, (name, _) in TABLES.items():
        tables[table]["quarantined"] = sum(1 for r in rows if r[1] == name)
    total = write_quarantine(rows, {(str(source), TABLES[t][0]) for t in files})
    return {
        "tables": tables,
        "read": sum(c["read"] for c in tables.values()),
        "loaded": sum(c["loaded"] for c in tables.values()),
        "quarantined": len(rows),
        "quarantine_total": total,
        "reasons": quarantine.counts(),
    }


def write_quarantine(rows: list[tuple], sources: set[tuple[str, str]]) -> int:
    """Replace the quarantine rows of the sources read now, keep every other source's rows.
    ``rows``: (raw_dir, source_file, line_number, reason, raw). Returns the file's row count."""
    import pandas as pd

    path = lake_dir() / QUARANTINE
    if not rows and not path.is_file():
        return 0  # nothing rejected, ever: no file (the gate skips an absent quarantine)
    new = pd.DataFrame(rows, columns=list(QUARANTINE_COLUMNS)).astype(
        {
            "raw_dir": "string",
            "source_file": "string",
            "line_number": "int64",
            "reason": "string",
            "raw": "string",
        }
    )
    if path.is_file():
        old = pd.read_parquet(path)
        read_now = old.apply(lambda r: (r["raw_dir"], r["source_file"]) in sources, axis=1)
        new = pd.concat([old[~read_now.astype(bool)], new], ignore_index=True)
    new = new.sort_values(["raw_dir", "source_file", "line_number"], kind="stable")
    new = new.reset_index(drop=True)
    if path.is_file() and pd.read_parquet(path).equals(new):
        return len(new)
    _write_atomic(new, path)
    return len(new)


def read_table(table: str):
    """One lake notes table as a DataFrame (the scorer's column names and types)."""
    import pandas as pd

    path = table_path(table)
    if not path.is_file():
        raise UserError(f"{path} does not exist: run `vigil notes ingest` first.")
    return pd.read_parquet(path)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--raw", type=Path, default=None, help="folder with the download files (default DATA/raw)"
    )
