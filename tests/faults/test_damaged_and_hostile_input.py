"""Damaged files of each kind and hostile input, through the commands a user runs.

Each case either recovers to the same data as a clean run (raw garbage is quarantined, duplicated
files add nothing) or ends in one clear error naming the damaged file, with no traceback.
"""

from __future__ import annotations

import json
import random
import shutil

import pyarrow.parquet as pq
import pytest
from faultlib import assert_clear_error, fresh_home, vigil

SEED = 19


def _ingest_json(home) -> dict:
    proc = vigil(home, "ingest", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _event_ids(home) -> list[str]:
    ids = []
    for f in sorted((home / "lake" / "events").glob("dt=*/events.parquet")):
        ids += pq.read_table(f, columns=["event_id"])["event_id"].to_pylist()
    return sorted(ids)


def _hour_files(home):
    return sorted((home / "raw" / "events").rglob("*.jsonl"))


@pytest.fixture
def clean(tmp_path, world):
    home = fresh_home(tmp_path, world, "clean")
    return _ingest_json(home), _event_ids(home)


def test_garbage_lines_in_a_raw_file_are_quarantined_one_each(tmp_path, world, clean):
    result, ids = clean
    home = fresh_home(tmp_path, world)
    rng = random.Random(SEED)
    target = rng.choice(_hour_files(home))
    garbage = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))) for _ in range(25)]
    garbage = [g.replace(b"\n", b" ").replace(b"\r", b" ") for g in garbage]
    with target.open("ab") as f:
        f.write(b"\n".join(garbage) + b"\n")
    got = _ingest_json(home)
    assert got["quarantined"] == result["quarantined"] + 25
    assert got["loaded"] == result["loaded"]
    assert _event_ids(home) == ids


def test_a_raw_file_cut_mid_line_quarantines_only_the_cut_line(tmp_path, world, clean):
    result, ids = clean
    home = fresh_home(tmp_path, world)
    target = random.Random(SEED).choice(_hour_files(home))
    data = target.read_bytes()
    last_start = data.rstrip(b"\n").rfind(b"\n") + 1
    target.write_bytes(data[: last_start + (len(data) - last_start) // 2])
    got = _ingest_json(home)
    assert got["read"] == result["read"]
    lost = set(ids) - set(_event_ids(home))
    # the cut line is quarantined (it was loaded or a duplicate before); nothing else changes
    assert len(lost) <= 1 and got["quarantined"] == result["quarantined"] + 1


@pytest.mark.parametrize("when", ["1900-01-01T00:00:00.000Z", "2199-01-01T00:00:00.000Z"])
def test_events_from_far_past_or_far_future_are_quarantined(tmp_path, world, clean, when):
    result, ids = clean
    home = fresh_home(tmp_path, world)
    target = _hour_files(home)[0]
    lines = [
        json.dumps(
            {"event_id": f"far{i}", "event_ts": when, "user_id": 1, "action": "login"}
            | {"country": "US"}
        )
        for i in range(50)
    ]
    with target.open("a") as f:
        f.write("\n".join(lines) + "\n")
    got = _ingest_json(home)
    assert got["quarantined"] == result["quarantined"] + 50
    assert _event_ids(home) == ids
    assert not (home / "lake" / "events" / f"dt={when[:10]}").exists()


# A writer whose clock is off stamps events away from its file's hour. The contract (docs/ingest.md):
# at most 1 day after the end of the file's hour, at most VIGIL_MAX_EVENT_AGE_DAYS (7) before it.
# For events/dt=2026-10-03/hour=23.jsonl the window is [2026-09-26T23:00, 2026-10-05T00:00].
SKEWED_WITHIN = {  # event_ts -> the lake partition it lands in
    "2026-10-03T23:10:00.000Z": "2026-10-03",  # minutes ahead
    "2026-10-04T02:00:00.000Z": "2026-10-04",  # hours ahead: the next day's partition
    "2026-10-04T23:59:00.000Z": "2026-10-04",  # a minute inside the tolerance
    "2026-10-03T20:00:00.000Z": "2026-10-03",  # hours behind
    "2026-09-28T12:00:00.000Z": "2026-09-28",  # days behind, within 7
}
SKEWED_BEYOND = ["2026-10-05T00:00:01.000Z", "2026-10-05T06:00:00.000Z"]


def test_events_from_a_skewed_clock_load_within_tolerance_and_are_quarantined_beyond(
    tmp_path, world, clean
):
    result, ids = clean
    home = fresh_home(tmp_path, world)
    target = home / "raw" / "events" / "dt=2026-10-03" / "hour=23.jsonl"
    stamps = [*SKEWED_WITHIN, *SKEWED_BEYOND]
    with target.open("a") as f:
        for i, ts in enumerate(stamps):
            row = {"event_id": f"skew{i}", "event_ts": ts, "user_id": 7, "action": "login"}
            f.write(json.dumps(row | {"country": "US"}) + "\n")
    got = _ingest_json(home)
    assert got["loaded"] == result["loaded"] + len(SKEWED_WITHIN)
    assert got["quarantined"] == result["quarantined"] + len(SKEWED_BEYOND)
    for i, (ts, day) in enumerate(SKEWED_WITHIN.items()):
        part = home / "lake" / "events" / f"dt={day}" / "events.parquet"
        assert f"skew{i}" in pq.read_table(part, columns=["event_id"])["event_id"].to_pylist(), ts
    assert not (home / "lake" / "events" / "dt=2026-10-05").exists()
    quarantine = pq.read_table(home / "lake" / "quarantine" / "quarantine.parquet").to_pylist()
    beyond = [r for r in quarantine if '"skew' in r["raw"]]
    assert [r["reason"] for r in beyond] == ["far-future timestamp: event_ts"] * len(SKEWED_BEYOND)
    assert sorted(set(_event_ids(home)) - set(ids)) == sorted(
        f"skew{i}" for i in range(len(SKEWED_WITHIN))
    )


def test_a_duplicated_raw_file_adds_nothing(tmp_path, world, clean):
    result, ids = clean
    home = fresh_home(tmp_path, world)
    source = _hour_files(home)[0]
    copy = source.with_name("hour=23.copy.jsonl")
    copy.write_bytes(source.read_bytes())
    got = _ingest_json(home)
    assert got["loaded"] == result["loaded"]
    assert _event_ids(home) == ids  # nothing doubled


def _cut(path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _flip(path) -> None:
    """64 seeded bytes inverted in the file's last quarter (where Parquet and DuckDB keep their
    metadata), the last 8 bytes kept."""
    data = bytearray(path.read_bytes())
    rng = random.Random(SEED)
    for i in rng.sample(range(len(data) * 3 // 4, len(data) - 8), 64):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_cut, _flip], ids=["truncated", "corrupted"])
def test_a_damaged_lake_parquet_file_is_one_clear_error_naming_it(tmp_path, world, damage):
    home = fresh_home(tmp_path, world)
    assert vigil(home, "ingest").returncode == 0
    part = min((home / "lake" / "events").glob("dt=*/events.parquet"))
    damage(part)
    # a late event for that day, delivered in a new hour file, makes ingest merge into it
    day = part.parent.name.removeprefix("dt=")
    late = home / "raw" / "events" / "dt=2026-10-09" / "hour=00.jsonl"
    late.parent.mkdir(parents=True, exist_ok=True)
    late.write_text(
        json.dumps(
            {"event_id": "late1", "event_ts": f"{day}T23:59:00.000Z", "user_id": 1}
            | {"action": "login", "country": "US"}
        )
        + "\n"
    )
    assert_clear_error(vigil(home, "ingest"), part.name)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory, world):
    """A data root after one clean ingest (copied by each case that damages it)."""
    home = fresh_home(tmp_path_factory.mktemp("ingested"), world)
    assert vigil(home, "ingest").returncode == 0
    return home


@pytest.mark.parametrize("damage", [_cut, _flip], ids=["truncated", "corrupted"])
@pytest.mark.parametrize("target", ["partition", "quarantine"])
def test_the_raw_gate_on_a_damaged_lake_file_is_one_clear_error_naming_it(
    tmp_path, ingested, damage, target
):
    home = tmp_path / "home"
    shutil.copytree(ingested, home)
    if target == "partition":  # the gate's day: the latest partition
        path = max((home / "lake" / "events").glob("dt=*/events.parquet"))
    else:
        path = home / "lake" / "quarantine" / "quarantine.parquet"
    damage(path)
    error = assert_clear_error(vigil(home, "validate", "raw"), str(path))
    assert "vigil ingest" in error  # the command that rebuilds it


def _garbage(path) -> None:
    path.write_bytes(random.Random(SEED).randbytes(path.stat().st_size))


@pytest.mark.parametrize("damage", [_cut, _garbage], ids=["truncated", "garbage"])
def test_a_damaged_warehouse_file_is_one_clear_error_naming_it(tmp_path, world, damage):
    home = fresh_home(tmp_path, world)
    assert vigil(home, "ingest").returncode == 0
    warehouse = home / "warehouse" / "vigil.duckdb"
    warehouse.parent.mkdir(parents=True)
    import duckdb

    con = duckdb.connect(str(warehouse))
    con.execute("create table t as select range as x from range(100000)")
    con.close()
    damage(warehouse)
    assert_clear_error(vigil(home, "uam", "--interval", "5", "--json"), str(warehouse))


def _model(home, model_id: str = "m1") -> None:
    models = home / "models" / model_id
    models.mkdir(parents=True)
    import joblib

    joblib.dump({"weights": list(range(1000))}, models / "model.joblib", compress=3)
    (models / "meta.json").write_text(
        json.dumps({"model_id": model_id, "feature_service": "moderation_v1"})
    )
    (home / "models" / "champion.json").write_text(json.dumps({"model_id": model_id}))


@pytest.mark.parametrize("damage", [_cut, _garbage], ids=["truncated", "garbage"])
@pytest.mark.parametrize("name", ["meta.json", "champion.json"])
def test_a_damaged_registry_file_is_one_clear_error_naming_it(tmp_path, name, damage):
    home = tmp_path / "home"
    _model(home)
    path = home / "models" / ("m1" if name == "meta.json" else "") / name
    damage(path)
    fix = "vigil models rollback" if name == "meta.json" else "vigil models promote"
    assert fix in assert_clear_error(vigil(home, "models", "list"), str(path))


def test_promote_recovers_from_a_damaged_champion_file(tmp_path):
    home = tmp_path / "home"
    _model(home)
    champion = home / "models" / "champion.json"
    _cut(champion)
    assert vigil(home, "models", "promote", "m1").returncode == 0
    assert json.loads(champion.read_text())["model_id"] == "m1"
    assert (home / "models" / "champion.json.damaged").is_file()  # kept for inspection
    listed = vigil(home, "models", "list")
    assert listed.returncode == 0 and "* m1" in listed.stdout


@pytest.mark.parametrize("damage", [_cut, _flip], ids=["truncated", "corrupted"])
def test_a_damaged_model_file_is_one_clear_error_naming_it(tmp_path, monkeypatch, damage):
    from training import registry
    from vigil.errors import UserError

    home = tmp_path / "home"
    monkeypatch.setenv("VIGIL_HOME", str(home))
    _model(home)
    damage(home / "models" / "m1" / "model.joblib")
    with pytest.raises(UserError, match="model.joblib.*vigil models rollback"):
        registry.load()
