"""SIGKILL a writer at seeded random points, rerun it, and compare with an uninterrupted run.

Kill points are fractions of the uninterrupted run's duration drawn from a seeded RNG, so the same
cases run every time (the seconds scale with the machine). After the rerun:
- `vigil ingest`: the lake's event, user and label files are byte-identical to the uninterrupted
  run's, and the quarantine holds the same records;
- `vigil dbt all`: every warehouse table and view holds the same rows, and the exported feature
  files the same rows (write-time columns aside).
"""

from __future__ import annotations

import random
import shutil

import pytest
from faultlib import (
    file_digest,
    fresh_home,
    kill_after,
    parquet_rows,
    timed,
    vigil,
    warehouse_tables,
)

SEED = 19
INGEST_CASES = 4
DBT_CASES = 2


def _kill_fractions(kind: str, cases: int) -> list[list[float]]:
    """Per case, one or two kill points (fractions of the uninterrupted run), seeded."""
    rng = random.Random(f"{SEED}-{kind}")
    return [sorted(rng.uniform(0.05, 1.0) for _ in range(rng.choice((1, 2)))) for _ in range(cases)]


def _lake_state(home):
    lake = home / "lake"
    files = file_digest(lake, skip=("_state", "quarantine"))
    return files, parquet_rows(lake / "quarantine" / "quarantine.parquet", home)


@pytest.fixture(scope="module")
def ingest_reference(tmp_path_factory, world):
    home = fresh_home(tmp_path_factory.mktemp("ingest-ref"), world)
    seconds = timed(home, "ingest")
    return _lake_state(home), seconds


@pytest.mark.parametrize("case", range(INGEST_CASES))
def test_ingest_killed_then_rerun_equals_an_uninterrupted_run(
    case, tmp_path, world, ingest_reference
):
    reference, seconds = ingest_reference
    home = fresh_home(tmp_path, world)
    for fraction in _kill_fractions("ingest", INGEST_CASES)[case]:
        kill_after(home, ["ingest"], fraction * seconds)
    rerun = vigil(home, "ingest")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    files, quarantine = _lake_state(home)
    assert files == reference[0]  # nothing lost, nothing doubled: the same bytes
    assert quarantine == reference[1]


@pytest.fixture(scope="module")
def dbt_reference(dbt_built):
    lake_home, ref_home, seconds = dbt_built
    features = {p.name: parquet_rows(p) for p in sorted((ref_home / "features").glob("*.parquet"))}
    return lake_home, warehouse_tables(ref_home / "warehouse" / "vigil.duckdb"), features, seconds


@pytest.mark.dbt
@pytest.mark.parametrize("case", range(DBT_CASES))
def test_dbt_killed_then_rerun_equals_an_uninterrupted_run(case, tmp_path, dbt_reference):
    lake_home, tables, features, seconds = dbt_reference
    home = tmp_path / "home"
    shutil.copytree(lake_home, home)
    for fraction in _kill_fractions("dbt", DBT_CASES)[case]:
        kill_after(home, ["dbt", "all"], fraction * seconds)
    rerun = vigil(home, "dbt", "all")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    got = warehouse_tables(home / "warehouse" / "vigil.duckdb")
    assert sorted(got) == sorted(tables)
    for name in tables:
        assert got[name] == tables[name], name
    exported = {p.name: parquet_rows(p) for p in sorted((home / "features").glob("*.parquet"))}
    assert exported == features


UAM_CASES = 2
LAST_DAY = "2026-10-03"  # the world's last day (faultlib.WORLD): it lands after the dbt run


@pytest.fixture(scope="module")
def uam_reference(tmp_path_factory, world):
    """(a data root whose warehouse dbt built from the first two days and whose lake has the
    third, the tables after an uninterrupted `vigil uam-update`, its seconds, the tables before)."""
    before = fresh_home(tmp_path_factory.mktemp("uam-before"), world)
    for day in ("2026-10-01", "2026-10-02"):
        assert vigil(before, "ingest", "--day", day).returncode == 0
    built = vigil(before, "dbt", "all")
    assert built.returncode == 0, built.stderr[-3000:]
    assert vigil(before, "ingest", "--day", LAST_DAY).returncode == 0
    ref = tmp_path_factory.mktemp("uam-ref") / "home"
    shutil.copytree(before, ref)
    seconds = timed(ref, "uam-update")
    tables = warehouse_tables(ref / "warehouse" / "vigil.duckdb")
    return before, tables, seconds, warehouse_tables(before / "warehouse" / "vigil.duckdb")


@pytest.mark.dbt
@pytest.mark.parametrize("case", range(UAM_CASES))
def test_uam_update_killed_then_rerun_equals_an_uninterrupted_run(case, tmp_path, uam_reference):
    before, tables, seconds, old = uam_reference
    assert tables["user_active_minutes"] != old["user_active_minutes"]  # the update did work
    home = tmp_path / "home"
    shutil.copytree(before, home)
    for fraction in _kill_fractions("uam-update", UAM_CASES)[case]:
        kill_after(home, ["uam-update"], fraction * seconds)
    rerun = vigil(home, "uam-update")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    got = warehouse_tables(home / "warehouse" / "vigil.duckdb")
    assert sorted(got) == sorted(tables)
    for name in tables:
        assert got[name] == tables[name], name
