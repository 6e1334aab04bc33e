"""The quarantine table: an append-only record of every rejected raw row and where it came from.

A row names its source by the resolved raw folder (``raw_dir``) and the file's path inside it
(``source_file``). Ingesting a source again replaces that source's rows (a fixed file loses its
old rejections; the same input leaves the file byte for byte unchanged); ingesting another raw
folder, even with same-named files, only adds.
"""

from __future__ import annotations

from pathlib import Path

from vigil.contracts import quarantine_schema
from vigil.lake.arrays import from_pylist, scalar, table_from_rows
from vigil.lake.store import damaged, read_parquet, write_parquet

# A source: (raw_dir, stream, source_file).
Source = tuple[str, str, str]


def _table(rows: list[tuple]):
    return table_from_rows(rows, quarantine_schema())


def _read_existing(path: Path):
    """The quarantine file as it is, in today's schema; files from before ``raw_dir`` existed
    read with a null ``raw_dir`` (their rows are kept: no source of a run matches them)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = quarantine_schema()
    try:
        names = pq.read_schema(path).names
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise damaged(path, exc) from None
    if "raw_dir" in names:
        return read_parquet(path, schema)
    old_schema = pa.schema([f for f in schema if f.name != "raw_dir"])
    old = read_parquet(path, old_schema)
    index = schema.get_field_index("raw_dir")
    return old.add_column(index, schema.field(index), pa.nulls(old.num_rows, pa.string()))


def write_quarantine(path: Path, rows: list[tuple], sources: set[Source]) -> int:
    """Replace the quarantine rows of every source read in this run and keep all others.
    ``rows``: (stream, raw_dir, source_file, line_number, reason, raw). Returns total rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    new = _table(rows)
    old = _read_existing(path) if path.exists() else None
    if old is not None and old.num_rows:
        key = pc.binary_join_element_wise(
            pc.fill_null(old["raw_dir"], scalar("")),
            old["stream"],
            old["source_file"],
            scalar("\x00"),
        )
        read_now = from_pylist(sorted("\x00".join(s) for s in sources), pa.string())
        kept = old.filter(pc.invert(pc.is_in(key, value_set=read_now)))
        new = pa.concat_tables([kept, new])
    table = new.sort_by(
        [
            ("raw_dir", "ascending"),
            ("stream", "ascending"),
            ("source_file", "ascending"),
            ("line_number", "ascending"),
        ]
    )
    if old is not None and old.equals(table):
        return table.num_rows
    if old is None and table.num_rows == 0:
        return 0
    write_parquet(table, path)
    return table.num_rows
