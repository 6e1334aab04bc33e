"""Issue 19 defects in the lake, each on a hand-made raw folder whose outcome is counted by hand.

- far-past event_ts (item 2): quarantined like far-future ones, no dt=1900-01-01 partition;
- quarantine records (item 3): a second raw folder with a same-named hour file adds its record,
  it does not replace the first folder's; re-ingesting the same folder changes nothing;
- a damaged lake Parquet file (item 9): one clear error naming the file and the fix;
- an empty labels.jsonl / users.jsonl (issue 18): an empty, typed snapshot, not a missing one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vigil import cli
from vigil.errors import UserError
from vigil.lake.ingest import ingest

HOUR_FILE = "events/dt=2026-10-05/hour=12.jsonl"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def login(event_id: str, ts: str) -> str:
    return json.dumps(
        {"event_id": event_id, "event_ts": ts, "user_id": 1, "action": "login", "country": "US"}
    )


def write(raw: Path, lines: list[str], name: str = HOUR_FILE) -> Path:
    path = raw / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))
    return raw


def quarantine_rows(home: Path) -> list[dict]:
    return pq.read_table(home / "lake/quarantine/quarantine.parquet").to_pylist()


@pytest.mark.parametrize("fast", [True, False])
def test_far_past_timestamps_are_quarantined(tmp_path, home, monkeypatch, fast):
    # File hour 2026-10-05 12:00; bound 7 days -> earliest accepted 2026-09-28T12:00:00.000Z.
    monkeypatch.setenv("VIGIL_MAX_EVENT_AGE_DAYS", "7")
    lines = [login("ok1", "2026-10-05T12:30:00.000Z"), login("ok2", "2026-09-28T12:00:00.000Z")]
    lines += [login(f"old{i}", "1900-01-01T00:00:00.000Z") for i in range(50)]
    lines.append(login("just", "2026-09-28T11:59:59.999Z"))  # 1 ms too old
    lines.append(login("offset", "2026-09-28T13:59:59.999+02:00"))  # the same instant
    result = ingest(write(tmp_path / "raw", lines), fast=fast)
    assert result["streams"]["events"] == {
        "read": 54,
        "loaded": 2,
        "quarantined": 52,
        "duplicates": 0,
    }
    assert result["reasons"] == {"far-past timestamp: event_ts": 52}
    days = sorted(p.name for p in (home / "lake/events").iterdir())
    assert days == ["dt=2026-09-28", "dt=2026-10-05"]


def test_max_event_age_setting_moves_the_bound(tmp_path, home, monkeypatch):
    monkeypatch.setenv("VIGIL_MAX_EVENT_AGE_DAYS", "1")
    lines = [login("a", "2026-10-04T12:00:00.000Z"), login("b", "2026-10-04T11:59:59.999Z")]
    result = ingest(write(tmp_path / "raw", lines))
    assert (result["loaded"], result["quarantined"]) == (1, 1)


def test_a_second_raw_folder_adds_quarantine_records(tmp_path, home):
    first = write(tmp_path / "raw1", [login("a1", "2026-10-05T12:00:00.000Z"), "garbage 1"])
    second = write(tmp_path / "raw2", ["garbage 2", "{}", login("b1", "2026-10-05T12:01:00.000Z")])
    ingest(first)
    assert len(quarantine_rows(home)) == 1
    ingest(second)
    rows = quarantine_rows(home)
    got = sorted((Path(r["raw_dir"]).name, r["source_file"], r["line_number"]) for r in rows)
    assert got == [("raw1", HOUR_FILE, 2), ("raw2", HOUR_FILE, 1), ("raw2", HOUR_FILE, 2)]
    before = (home / "lake/quarantine/quarantine.parquet").read_bytes()
    ingest(second)  # the same input again: nothing changes
    ingest(first)
    assert (home / "lake/quarantine/quarantine.parquet").read_bytes() == before


def test_a_quarantine_file_from_before_raw_dir_keeps_its_rows(tmp_path, home):
    old = pa.table(
        {
            "stream": ["events"],
            "source_file": [HOUR_FILE],
            "line_number": pa.array([7], pa.int64()),
            "reason": ["not JSON"],
            "raw": ["x"],
        }
    )
    (home / "lake/quarantine").mkdir(parents=True)
    pq.write_table(old, home / "lake/quarantine/quarantine.parquet")
    ingest(write(tmp_path / "raw", ["garbage"]))
    rows = quarantine_rows(home)
    assert sorted((r["raw_dir"] is None, r["line_number"]) for r in rows) == [(False, 1), (True, 7)]


def test_a_damaged_partition_is_one_clear_error(tmp_path, home, capsys):
    raw = write(tmp_path / "raw", [login("a", "2026-10-05T12:00:00.000Z")])
    ingest(raw)
    part = home / "lake/events/dt=2026-10-05/events.parquet"
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])  # truncated
    write(raw, [login("a", "2026-10-05T12:00:00.000Z"), login("b", "2026-10-05T12:01:00.000Z")])
    # the fix names the raw folder the ingest log recorded
    fix = f"delete it and run `vigil ingest --raw {raw.resolve()}` (without --day)"
    with pytest.raises(UserError, match=f"events.parquet is damaged.*{re.escape(fix)}"):
        ingest(raw, day="2026-10-05")
    assert cli.main(["ingest", "--raw", str(raw), "--day", "2026-10-05"]) != 0
    err = capsys.readouterr().err
    assert str(part) in err and "Traceback" not in err


def test_a_damaged_snapshot_is_one_clear_error(tmp_path, home):
    raw = tmp_path / "raw"
    raw.mkdir()
    user = {"user_id": 1, "created_at": "2026-10-01T00:00:00.000Z", "home_country": "US"}
    (raw / "users.jsonl").write_text(json.dumps(user | {"handle": "a"}) + "\n")
    ingest(raw)
    (home / "lake/users/users.parquet").write_bytes(b"PAR1 not really parquet")
    (raw / "users.jsonl").write_text(json.dumps(user | {"handle": "b"}) + "\n")
    with pytest.raises(UserError, match="users.parquet is damaged"):
        ingest(raw)


@pytest.mark.parametrize("name", ["labels.jsonl", "users.jsonl"])
def test_an_empty_snapshot_file_is_an_empty_snapshot(tmp_path, home, name):
    raw = write(tmp_path / "raw", [login("a", "2026-10-05T12:00:00.000Z")])
    (raw / name).write_text("")
    result = ingest(raw)
    stream = name.removesuffix(".jsonl")
    assert result["streams"][stream] == {"read": 0, "loaded": 0, "quarantined": 0, "duplicates": 0}
    table = pq.read_table(home / f"lake/{stream}/{stream}.parquet")
    assert table.num_rows == 0
    expected = {
        "labels": ["post_id", "is_harmful", "harm_types", "labeled_at", "queue", "sampling_weight"],
        "users": ["user_id", "created_at", "home_country", "handle"],
    }[stream]
    assert table.column_names == expected
    ts = "labeled_at" if stream == "labels" else "created_at"
    assert table.schema.field(ts).type == pa.timestamp("us", tz="UTC")


def test_a_snapshot_of_only_garbage_keeps_the_previous_one(tmp_path, home):
    raw = tmp_path / "raw"
    raw.mkdir()
    user = {"user_id": 1, "created_at": "2026-10-01T00:00:00.000Z", "home_country": "US"}
    (raw / "users.jsonl").write_text(json.dumps(user | {"handle": "a"}) + "\n")
    ingest(raw)
    (raw / "users.jsonl").write_text("garbage\n")
    ingest(raw)
    assert pq.read_table(home / "lake/users/users.parquet").num_rows == 1


@pytest.mark.dbt  # builds the warehouse
def test_uam_on_a_lake_from_activity_logs_alone(tmp_path, home):
    """A platform with activity logs and no users or labels file yet can ask for UAM."""
    from vigil.uam import query as uam

    lines = [login(f"a{m}", f"2026-10-05T12:0{m}:10.000Z") for m in range(3)]  # user 1: 3 minutes
    lines.append(
        json.dumps(
            {"event_id": "b", "event_ts": "2026-10-05T12:30:00.000Z", "user_id": 2}
            | {"action": "login", "country": "DE"}
        )
    )  # user 2: 1 minute
    ingest(write(tmp_path / "raw", lines))
    assert pq.read_table(home / "lake/labels/labels.parquet").num_rows == 0
    assert uam.histogram(2) == {
        "interval_minutes": 2,
        "as_of": "2026-10-05",
        "buckets": [{"lower": 0, "upper": 2, "users": 1}, {"lower": 2, "upper": 4, "users": 1}],
    }


def test_check_readable_names_the_damaged_file(tmp_path):
    from vigil.lake.store import check_readable

    good, bad = tmp_path / "good.parquet", tmp_path / "bad.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), good)
    bad.write_bytes(good.read_bytes()[:-10])
    check_readable([good])
    with pytest.raises(UserError, match=f"lake file {bad} is damaged"):
        check_readable([good, bad])
