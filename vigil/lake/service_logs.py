"""The scoring service's decision log, loaded into the lake (docs/contracts.md section 1.2).

``<data root>/decisions/dt=YYYY-MM-DD/decisions-<pid>.jsonl`` (written by ``vigil serve``,
:mod:`vigil.moderation.decisions`) -> ``lake/decisions/decisions.parquet``, one row per valid
line, keyed by ``decision_id`` = ``<source_file>:<source_line>`` (the files are append-only, so a
line keeps its number). A file whose content hash the manifest holds (and whose output is intact)
is skipped; a changed file (lines appended since) is read again whole and its rows replace the
lake's rows of that file, so the lines already loaded count as duplicates and a re-run over the
same files changes no byte. Rows of files no longer on disk (retention) stay in the lake.
A lake file written before ``path`` and ``head`` existed is rebuilt: every file is read again
(rows of deleted files keep them null).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from vigil.contracts import ADDED_DECISION_COLUMNS, decision_schema
from vigil.lake.arrays import from_pylist, table_from_rows
from vigil.lake.manifest import Manifest, file_stat
from vigil.lake.store import read_parquet, write_parquet
from vigil.lake.validation import Bad, check_decision, parse_line, raw_text

log = logging.getLogger(__name__)

STREAM = "decisions"
PATTERN = "dt=*/decisions-*.jsonl"


def lake_files(paths) -> tuple[Path, Path]:
    """The lake files of the service logs: decisions, appeal labels."""
    return (
        paths.lake_decisions / "decisions.parquet",
        paths.lake_appeal_labels / "appeal_labels.parquet",
    )


def ensure_lake_files(paths) -> None:
    """Write an empty file for each service log the lake does not have yet (a lake loaded before
    these logs were ingested, or written by hand): nothing is known of them, and dbt's sources
    need a file to read. ``vigil ingest`` replaces them."""
    from vigil.contracts import appeal_label_schema

    for dest, schema in zip(lake_files(paths), (decision_schema(), appeal_label_schema())):
        if not dest.exists():
            write_parquet(schema.empty_table(), dest)
            log.info("lake: %s absent: an empty one written (no service log ingested yet)", dest)


def decision_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(PATTERN)) if directory.is_dir() else []


def _read_file(path: Path, rel: str) -> tuple[list[tuple], int, list[tuple]]:
    """(rows, lines read, [(line_number, reason, raw)]) of one decision file."""
    lines = path.read_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    rows, bad = [], []
    for number, line in enumerate(lines, start=1):
        try:
            row = check_decision(parse_line(line))
        except Bad as exc:
            bad.append((number, exc.args[0], raw_text(line)))
            continue
        rows.append((f"{rel}:{number}", *row, rel, number))
    return rows, len(lines), bad


def _outdated(dest: Path, manifest: tuple[Manifest, Callable[[str], Path]] | None) -> bool:
    """Whether the lake file lacks a column of the contract (ADDED_DECISION_COLUMNS). The
    manifest keeps the file's columns as the last run left it (by its stat), so a run over
    unchanged logs reads no Parquet footer (and imports no pyarrow)."""
    stat = file_stat(dest)
    if stat is None:
        return False
    known = manifest[0].schemas.get(STREAM) if manifest is not None else None
    if known is not None and known.get("stat") == stat:
        names = set(known["columns"])
    else:
        import pyarrow.parquet as pq

        try:
            names = set(pq.read_schema(dest).names)
        except Exception:  # noqa: BLE001 - a damaged file: read_parquet names it below
            return False
        _note_columns(dest, manifest, sorted(names))
    return any(name not in names for name, _ in ADDED_DECISION_COLUMNS)


def _note_columns(dest: Path, manifest, columns: list[str]) -> None:
    if manifest is not None:
        manifest[0].schemas[STREAM] = {"stat": file_stat(dest), "columns": columns}


def _table(rows: list[tuple]):
    return table_from_rows(rows, decision_schema())


def ingest_decisions(
    directory: Path,
    dest: Path,
    manifest: tuple[Manifest, Callable[[str], Path]] | None,
    quarantine: list[tuple],
    sources: set[tuple[str, str, str]],
) -> dict[str, int]:
    """Load the decision files under ``directory`` into ``dest``. ``manifest``: the ingest
    manifest and its output-name -> file function (None: read every file). Appends rejected
    lines to ``quarantine`` (stream, raw_dir, source_file, line, reason, raw) and the files read
    to ``sources``. Returns read/loaded/quarantined/duplicates."""
    counts = {"read": 0, "loaded": 0, "quarantined": 0, "duplicates": 0}
    new_rows, read_now = [], []
    files = [
        (f"{directory}/{p.relative_to(directory).as_posix()}", p) for p in decision_files(directory)
    ]
    # the content hashes (the stat cache's where it vouches for them), before any read
    digests = manifest[0].digests(files) if manifest is not None else {}
    # a lake file written before a column was added: every file is read again to fill it
    outdated = _outdated(dest, manifest)
    skip = manifest is not None and not outdated
    for key, path in files:
        rel = path.relative_to(directory).as_posix()
        digest = digests[key] if manifest is not None else None
        rec = manifest[0].unchanged(key, digest, manifest[1]) if skip else None
        if rec is not None:  # counted as a re-read would count it
            counts["read"] += rec["read"]
            counts["quarantined"] += rec["quarantined"]
            counts["duplicates"] += rec["read"] - rec["quarantined"]
            continue
        rows, read, bad = _read_file(path, rel)
        counts["read"] += read
        counts["quarantined"] += len(bad)
        quarantine.extend((STREAM, str(directory), rel, *b) for b in bad)
        sources.add((str(directory), STREAM, rel))
        new_rows += rows
        read_now.append(rel)
        if manifest is not None:
            manifest[0].record(key, digest, read, len(bad), {STREAM})
    if not read_now and dest.exists() and not outdated:
        return counts
    import pyarrow as pa
    import pyarrow.compute as pc

    new = _table(new_rows)
    old = read_parquet(dest, decision_schema()) if dest.exists() else _table([])
    known = pc.sum(pc.is_in(new["decision_id"], value_set=old["decision_id"])).as_py() or 0
    counts["duplicates"] += known
    counts["loaded"] += new.num_rows - known
    kept = old.filter(
        pc.invert(pc.is_in(old["source_file"], value_set=from_pylist(read_now, pa.string())))
    )
    order = [("source_file", "ascending"), ("source_line", "ascending")]
    table = pa.concat_tables([kept, new]).sort_by(order)
    if not dest.exists() or outdated or not table.equals(old.sort_by(order)):
        write_parquet(table, dest)
    _note_columns(dest, manifest, list(table.column_names))
    log.info(
        "ingest: decision log %s: %d files read, read %d, loaded %d, quarantined %d, duplicates %d",
        directory,
        len(read_now),
        counts["read"],
        counts["loaded"],
        counts["quarantined"],
        counts["duplicates"],
    )
    return counts
