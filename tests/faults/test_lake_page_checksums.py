"""A byte flipped inside a lake Parquet data page (not its footer), met by every reader of the lake.

Lake files carry a CRC32 in every page header (vigil.lake.store.write_parquet). DuckDB and Polars
do not verify it, so each command that reads the lake through them checks the pages first: the
raw gate (the day's partition), `vigil dbt` (the files written since the last build) and
`vigil uam-update` (the columns it counts). Each ends in one clear error naming the file and
`vigil ingest --raw RAW`; that fix rebuilds the file byte-identical and the command then runs.
"""

from __future__ import annotations

import json
import random
import shutil
from datetime import datetime, timedelta

import pyarrow.parquet as pq
import pytest
from faultlib import assert_clear_error, vigil

pytestmark = pytest.mark.dbt

SEED = 19
NEW_DAY = "2026-10-04"  # the day after the world's last (faultlib.WORLD): lands after dbt all


def _shift_a_day(line: str) -> str | None:
    """The raw line one day later, under a new event_id (None for lines that are not events)."""
    try:
        row = json.loads(line)
        ts = datetime.fromisoformat(row["event_ts"]) + timedelta(days=1)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if ts.date().isoformat() != NEW_DAY or not isinstance(row.get("event_id"), str):
        return None  # late events would change an older day; keep only the new day's
    row["event_ts"] = ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"
    row["event_id"] += "-next"
    return json.dumps(row)


@pytest.fixture
def home(tmp_path, dbt_built):
    """A data root after `vigil dbt all` over the world's three days, then a fourth day (the third
    shifted by one day, new ids) ingested here (so the ingest log names this root's raw folder):
    the file dbt, the raw gate and uam-update read next."""
    _, ref_home, _ = dbt_built
    home = tmp_path / "home"
    shutil.copytree(ref_home, home)
    for hour_file in sorted((home / "raw" / "events" / "dt=2026-10-03").glob("hour=*.jsonl")):
        lines = [_shift_a_day(x) for x in hour_file.read_text(errors="replace").splitlines()]
        dest = home / "raw" / "events" / f"dt={NEW_DAY}" / hour_file.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text("".join(x + "\n" for x in lines if x))
    for command in (["ingest"], ["dbt", "staging"]):  # the views over this root's lake
        proc = vigil(home, *command)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return home


def _flip_in_page(path, column: str) -> None:
    """One seeded byte inverted inside ``column``'s pages of the first row group (past the first
    page header), the footer untouched."""
    group = pq.read_metadata(path).row_group(0)
    chunk = next(
        c for c in map(group.column, range(group.num_columns)) if c.path_in_schema == column
    )
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    data = bytearray(path.read_bytes())
    i = random.Random(SEED).randrange(start + 40, start + chunk.total_compressed_size)
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_flipped_byte_in_a_data_page_is_one_clear_error_for_each_reader(home):
    part = home / "lake" / "events" / f"dt={NEW_DAY}" / "events.parquet"
    original = part.read_bytes()
    _flip_in_page(part, "event_ts")
    fix = f"delete it and run `vigil ingest --raw {(home / 'raw').resolve()}` (without --day)"
    for command in (["validate", "raw"], ["dbt", "staging"], ["uam-update"]):
        error = assert_clear_error(vigil(home, *command), str(part))
        assert "CRC checksum verification failed" in error and fix in error, (command, error)
    # the fix: the day rebuilt from the raw logs, the same bytes; then every reader runs
    part.unlink()
    assert vigil(home, "ingest", "--raw", str(home / "raw")).returncode == 0
    assert part.read_bytes() == original
    for command in (["uam-update"], ["dbt", "staging"]):
        proc = vigil(home, *command)
        assert proc.returncode == 0, (command, proc.stderr[-3000:])


def test_a_flipped_byte_in_the_users_snapshot_stops_dbt_and_ingest_rebuilds_it(home):
    users = home / "lake" / "users" / "users.parquet"
    original = users.read_bytes()
    _flip_in_page(users, "user_id")
    assert_clear_error(vigil(home, "dbt", "staging"), str(users))
    users.unlink()
    assert vigil(home, "ingest").returncode == 0
    assert users.read_bytes() == original
    assert vigil(home, "dbt", "staging").returncode == 0
