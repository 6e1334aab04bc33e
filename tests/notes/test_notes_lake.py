"""`vigil notes ingest`: the download files into lake/notes, bad rows quarantined and counted,
re-ingest a no-op, quarantine append-only across sources, a malformed file one clear error.

Expected counts come from the files themselves (lines minus the header) and from the rows the
tests break by hand."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from sim.notes import simulate_notes
from vigil.errors import UserError
from vigil.notes import lake

WORLD = {"contributors": 120, "notes": 150, "ratings": 2000, "days": 5, "colluders": 6, "posts": 80}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    raw = tmp_path_factory.mktemp("notes-raw")
    simulate_notes(raw, seed=3, **WORLD)
    return raw


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "vigil"))
    return tmp_path / "vigil"


def _lines(path) -> int:
    return len(path.read_text().splitlines()) - 1  # minus the header


def _copy(world, dest):
    shutil.copytree(world / "notes", dest / "notes")
    return dest


def test_ingest_loads_every_file_and_counts(world, home):
    counts = lake.ingest(world)
    files = {t: world / "notes" / name for t, (name, _) in lake.TABLES.items()}
    for table, path in files.items():
        n = _lines(path)
        assert counts["tables"][table] == {"read": n, "loaded": n, "quarantined": 0}, table
        assert len(pd.read_parquet(lake.table_path(table))) == n
    assert counts["read"] == counts["loaded"] == sum(_lines(p) for p in files.values())
    assert counts["quarantined"] == 0 and not counts["unchanged"]
    assert not (lake.lake_dir() / lake.QUARANTINE).exists()  # nothing rejected: no file
    ratings = pd.read_parquet(lake.table_path("ratings"))
    assert set(ratings["helpfulNum"]) <= {0.0, 0.5, 1.0}
    assert ratings["noteId"].dtype == "int64"


def test_reingest_changes_nothing(world, home):
    lake.ingest(world)
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in lake.lake_dir().iterdir()}
    again = lake.ingest(world)
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in lake.lake_dir().iterdir()}
    assert again["unchanged"] and after == before
    assert again["read"] == _lines(world / "notes" / "ratings-00000.tsv") + sum(
        _lines(world / "notes" / name) for t, (name, _) in lake.TABLES.items() if t != "ratings"
    )


def test_bad_rows_are_quarantined_with_reason_and_source(world, home, tmp_path):
    raw = _copy(world, tmp_path / "broken")
    path = raw / "notes" / "ratings-00000.tsv"
    lines = path.read_text().splitlines()
    level = lines[0].split("\t").index("helpfulnessLevel")
    fields = lines[3].split("\t")
    fields[level] = "VERY_HELPFUL"  # outside the vocabulary
    lines[3] = "\t".join(fields)
    fields = lines[7].split("\t")
    fields[0] = "not-a-number"  # noteId
    lines[7] = "\t".join(fields)
    path.write_text("\n".join(lines) + "\n")
    counts = lake.ingest(raw)
    read = len(lines) - 1
    assert counts["tables"]["ratings"] == {"read": read, "loaded": read - 2, "quarantined": 2}
    quarantine = pd.read_parquet(lake.lake_dir() / lake.QUARANTINE)
    assert list(quarantine.columns) == list(lake.QUARANTINE_COLUMNS)
    assert sorted(quarantine["line_number"]) == [4, 8]  # 1-based lines, header = line 1
    assert set(quarantine["source_file"]) == {"ratings-00000.tsv"}
    assert set(quarantine["raw_dir"]) == {str((raw / "notes").resolve())}
    reasons = " ".join(quarantine["reason"])
    assert "helpfulnessLevel" in reasons and "noteId" in reasons


def test_quarantine_is_append_only_across_sources(world, home, tmp_path):
    first = _copy(world, tmp_path / "first")
    second = _copy(world, tmp_path / "second")
    for raw in (first, second):
        path = raw / "notes" / "notes-00000.tsv"
        lines = path.read_text().splitlines()
        fields = lines[2].split("\t")
        fields[2] = "yesterday"  # createdAtMillis
        lines[2] = "\t".join(fields)
        path.write_text("\n".join(lines) + "\n")
    lake.ingest(first)
    lake.ingest(second)
    quarantine = pd.read_parquet(lake.lake_dir() / lake.QUARANTINE)
    assert len(quarantine) == 2 and quarantine["raw_dir"].nunique() == 2
    # the first source fixed and ingested again: only its own row goes
    shutil.copyfile(world / "notes" / "notes-00000.tsv", first / "notes" / "notes-00000.tsv")
    lake.ingest(first)
    quarantine = pd.read_parquet(lake.lake_dir() / lake.QUARANTINE)
    assert list(quarantine["raw_dir"]) == [str((second / "notes").resolve())]
    manifest = json.loads((lake.lake_dir() / lake.MANIFEST).read_text())
    assert manifest["counts"]["quarantined"] == 0


def test_a_malformed_file_is_one_error_naming_file_and_column(world, home, tmp_path):
    raw = _copy(world, tmp_path / "malformed")
    path = raw / "notes" / "ratings-00000.tsv"
    text = path.read_text()
    path.write_text(text.replace("raterParticipantId", "rater", 1))
    with pytest.raises(UserError) as err:
        lake.ingest(raw)
    message = str(err.value)
    assert "ratings-00000.tsv" in message and "'raterParticipantId'" in message
    assert not lake.table_path("ratings").exists()  # nothing half-written


def test_a_folder_without_notes_says_what_to_do(home, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="simulate-notes"):
        lake.ingest(tmp_path / "empty")
