"""`vigil ingest` against a hand-made raw directory whose every count is worked out by hand below.

Raw files (the comments on each line give the expected outcome):
  A = events/dt=2026-10-01/hour=00.jsonl: 23 lines, all well-typed JSON (the bulk Arrow path reads
      the whole file; its vector checks must single out the bad rows): 6 valid, 1 duplicate,
      16 quarantined.
  B = events/dt=2026-10-01/hour=01.jsonl: 15 lines with syntax/type errors (the bulk reader
      rejects them; the run resumes around them): 2 valid, 1 duplicate, 12 quarantined.
  C = events/dt=2026-10-02/hour=00.jsonl: 3 lines, a late event for 2026-10-01 and a repeat of
      an A event: 2 valid, 1 duplicate.
  users.jsonl: 6 lines, 2 users loaded (one repeated: last wins), 3 quarantined, 1 duplicate.
  labels.jsonl: 6 lines, 2 loaded, 4 quarantined.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vigil import cli
from vigil.errors import UserError
from vigil.lake.ingest import ingest

FILE_A = "events/dt=2026-10-01/hour=00.jsonl"
FILE_B = "events/dt=2026-10-01/hour=01.jsonl"
FILE_C = "events/dt=2026-10-02/hour=00.jsonl"


def ev(event_id, ts, user_id, action, post_id=None, target_user_id=None, text=None, country=None):
    return json.dumps(
        {
            "event_id": event_id,
            "event_ts": ts,
            "user_id": user_id,
            "action": action,
            "post_id": post_id,
            "target_user_id": target_user_id,
            "text": text,
            "country": country,
        }
    ).encode()


T0 = "2026-10-01T00:00:0{}.000Z"
A_LINES = [  # (line, expected outcome)
    (ev("e1", T0.format(1), 1, "login", country="US"), "ok"),
    (ev("e2", T0.format(2), 1, "post", post_id=100, text="hello @bob"), "ok"),
    (ev("e3", T0.format(3), 2, "view", post_id=100, target_user_id=1), "ok"),
    (ev("e2", T0.format(2), 1, "post", post_id=100, text="hello @bob"), "duplicate"),
    (ev("e4", T0.format(4), -5, "view", post_id=100), "invalid id: user_id"),
    (ev("e5", T0.format(4), 0, "view", post_id=100), "invalid id: user_id"),
    (ev("e6", T0.format(4), 2, "poke", post_id=100), "unknown action"),
    (ev("e7", T0.format(4), 2, "view"), "missing field: post_id"),
    (ev("e8", T0.format(4), 2, "follow"), "missing field: target_user_id"),
    (ev("e9", T0.format(4), 2, "post", post_id=101), "missing field: text"),
    (ev("e10", T0.format(4), 2, "login"), "missing field: country"),
    (ev("e11", T0.format(4), 2, "post", post_id=102, text="x" * 5001), "oversized text"),
    (ev("e12", T0.format(5), 3, "post", post_id=103, text="y" * 5000), "ok"),
    # the file's hour ends 01:00 on 10-01; one day later is the limit
    (
        ev("e13", "2026-10-02T01:00:00.001Z", 2, "like", post_id=100),
        "far-future timestamp: event_ts",
    ),
    (ev("e14", "2026-10-02T01:00:00.000Z", 2, "like", post_id=100), "ok"),  # lands in 10-02
    (
        ev("e15", "2026-02-30T00:00:00.000Z", 2, "like", post_id=100),
        "unparseable timestamp: event_ts",
    ),
    (ev("e16", "2026-10-01T00:00:05+02:00", 4, "share", post_id=100), "ok"),  # = 09-30 22:00:05Z
    (ev("e17", T0.format(6), 2, "like", post_id=0), "invalid id: post_id"),
    (ev("", T0.format(6), 2, "like", post_id=100), "invalid value: event_id"),
    (ev("x" * 65, T0.format(6), 2, "like", post_id=100), "invalid value: event_id"),
    (ev("e18", T0.format(6), 2, "login", country="usa"), "invalid value: country"),
    (ev("e19", "2026-10-01 00:00:07", 2, "like", post_id=100), "unparseable timestamp: event_ts"),
    (
        b'{"event_ts":"2026-10-01T00:00:08.000Z","user_id":2,"action":"like","post_id":100}',
        "missing field: event_id",
    ),
]
T1 = "2026-10-01T01:{}:00.000Z"
B_LINES = [
    (b"not json at all", "not JSON"),
    (b"", "empty line"),
    (b"[1, 2, 3]", "not a JSON object"),
    (
        (
            b'{"event_id":"e20","event_ts":"2026-10-01T01:00:00.000Z","user_id":1,"action":"post",'
            b'"post_id":104,"text":"caf\xff"}'
        ),
        "invalid UTF-8",
    ),
    (ev("e26", T1.format("01"), "7", "view", post_id=100), "invalid id: user_id"),
    (ev("e27", T1.format("02"), True, "view", post_id=100), "invalid id: user_id"),
    (ev("e28", T1.format("03"), 3.5, "view", post_id=100), "invalid id: user_id"),
    (ev("e29", T1.format("04"), 3, "view", post_id=100, text=42), "wrong type: text"),
    (ev("e21", T1.format("10"), 3, "like", post_id=100, target_user_id=1), "ok"),
    (ev("e1", T0.format(1), 1, "login", country="US"), "duplicate"),  # of A line 1
    (b'{"event_id":"e22","event_ts":', "not JSON"),
    (ev("e23", T1.format("20"), 2, "reply", post_id=100, text="gross!"), "ok"),
    (ev("e24", T1.format("21"), 2**63, "view", post_id=100), "invalid id: user_id"),
    (
        (
            b'{"event_id":"e25","event_ts":"2026-10-01T01:22:00.000Z","user_id":2,"action":"post",'
            b'"post_id":105,"text":"\\ud800"}'
        ),
        "invalid UTF-8",
    ),
    (ev("e32", T1.format("23"), 2, 5, post_id=100), "wrong type: action"),
]
C_LINES = [
    (ev("e30", "2026-10-02T00:10:00.000Z", 5, "login", country="DE"), "ok"),
    (ev("e31", "2026-10-01T23:59:59.999Z", 5, "view", post_id=100), "ok"),  # late, for 10-01
    (ev("e3", T0.format(3), 2, "view", post_id=100, target_user_id=1), "duplicate"),  # of A line 3
]
USER_LINES = [
    b'{"user_id":1,"created_at":"2026-09-01T10:00:00.000Z","home_country":"US","handle":"alice"}',
    b'{"user_id":2,"created_at":"2026-09-02T10:00:00.000Z","home_country":"FR","handle":"bob"}',
    b'{"user_id":1,"created_at":"2026-09-01T10:00:00.000Z","home_country":"US","handle":"alice2"}',
    b'{"user_id":-1,"created_at":"2026-09-01T10:00:00.000Z","home_country":"US","handle":"neg"}',
    b'{"user_id":3,"created_at":"nope","home_country":"US","handle":"carol"}',
    b"{oops",
]
LABEL_LINES = [
    (
        b'{"post_id":100,"is_harmful":true,"harm_types":["hate","harassment"],'
        b'"labeled_at":"2026-10-01T05:00:00.000Z","queue":"reported","sampling_weight":1.0}'
    ),
    (
        b'{"post_id":101,"is_harmful":false,"harm_types":[],'
        b'"labeled_at":"2026-10-01T06:00:00.000Z","queue":"random","sampling_weight":12.5}'
    ),
    (
        b'{"post_id":102,"is_harmful":false,"harm_types":["spam"],'
        b'"labeled_at":"2026-10-01T06:00:00.000Z","queue":"random","sampling_weight":2}'
    ),
    (
        b'{"post_id":103,"is_harmful":false,"harm_types":[],'
        b'"labeled_at":"2026-10-01T06:00:00.000Z","queue":"random","sampling_weight":0.5}'
    ),
    (
        b'{"post_id":104,"is_harmful":false,"harm_types":[],'
        b'"labeled_at":"2026-10-01T06:00:00.000Z","queue":"other","sampling_weight":2}'
    ),
    (
        b'{"post_id":105,"is_harmful":"yes","harm_types":[],'
        b'"labeled_at":"2026-10-01T06:00:00.000Z","queue":"random","sampling_weight":2}'
    ),
]
EXPECTED_QUARANTINE = sorted(
    [
        ("events", FILE_A, i, r)
        for i, (_, r) in enumerate(A_LINES, 1)
        if r not in ("ok", "duplicate")
    ]
    + [
        ("events", FILE_B, i, r)
        for i, (_, r) in enumerate(B_LINES, 1)
        if r not in ("ok", "duplicate")
    ]
    + [
        ("labels", "labels.jsonl", 3, "invalid value: harm_types"),
        ("labels", "labels.jsonl", 4, "invalid value: sampling_weight"),
        ("labels", "labels.jsonl", 5, "invalid value: queue"),
        ("labels", "labels.jsonl", 6, "wrong type: is_harmful"),
        ("users", "users.jsonl", 4, "invalid id: user_id"),
        ("users", "users.jsonl", 5, "unparseable timestamp: created_at"),
        ("users", "users.jsonl", 6, "not JSON"),
    ]
)
# Hand count of distinct valid event ids and where they land.
VALID_IDS = {
    "2026-09-30": {"e16"},
    "2026-10-01": {"e1", "e2", "e3", "e12", "e21", "e23", "e31"},
    "2026-10-02": {"e14", "e30"},
}


def write_raw(raw: Path, files=(FILE_A, FILE_B, FILE_C)) -> Path:
    contents = {FILE_A: A_LINES, FILE_B: B_LINES, FILE_C: C_LINES}
    for name in files:
        path = raw / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\n".join(line for line, _ in contents[name]) + b"\n")
    (raw / "users.jsonl").write_bytes(b"\n".join(USER_LINES) + b"\n")
    (raw / "labels.jsonl").write_bytes(b"\n".join(LABEL_LINES) + b"\n")
    return raw


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def lake_digest(lake: Path) -> dict[str, str]:
    return {
        p.relative_to(lake).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(lake.rglob("*"))
        if p.is_file() and "_state" not in p.parts
    }


def counts(result: dict) -> tuple[int, int, int, int]:
    return (result["read"], result["loaded"], result["quarantined"], result["duplicates"])


def test_hand_made_counts_quarantine_and_lake(tmp_path, home):
    raw = write_raw(tmp_path / "raw")
    result = ingest(raw)

    assert counts(result["streams"]["events"]) == (41, 10, 28, 3)
    assert counts(result["streams"]["users"]) == (6, 2, 3, 1)
    assert counts(result["streams"]["labels"]) == (6, 2, 4, 0)
    assert counts(result) == (53, 14, 35, 4)
    assert result["read"] == result["loaded"] + result["quarantined"] + result["duplicates"]
    assert result["days"] == sorted(VALID_IDS)

    quarantine = pq.read_table(home / "lake/quarantine/quarantine.parquet").to_pylist()
    got = sorted((q["stream"], q["source_file"], q["line_number"], q["reason"]) for q in quarantine)
    assert got == EXPECTED_QUARANTINE
    utf8_row = next(q for q in quarantine if q["source_file"] == FILE_B and q["line_number"] == 4)
    assert "caf\ufffd" in utf8_row["raw"]  # the invalid byte replaced, the rest kept
    oversized = next(q for q in quarantine if q["reason"] == "oversized text")
    assert len(oversized["raw"]) == 2000

    # Nothing lost: every hand-counted valid id is in its day's partition, exactly once.
    for day, ids in VALID_IDS.items():
        table = pq.read_table(home / f"lake/events/dt={day}/events.parquet")
        assert sorted(table["event_id"].to_pylist()) == sorted(ids)
        keys = list(zip(table["user_id"].to_pylist(), table["event_ts"].to_pylist()))
        assert keys == sorted(keys)
    e16 = duckdb.sql(
        f"select event_ts, source_file, source_line, action from "
        f"read_parquet('{home}/lake/events/dt=2026-09-30/events.parquet')"
    ).fetchall()
    assert e16[0][0] == datetime(2026, 9, 30, 22, 0, 5, tzinfo=UTC)
    assert e16[0][1:] == (FILE_A, 17, "share")

    users = pq.read_table(home / "lake/users/users.parquet").to_pylist()
    assert [(u["user_id"], u["handle"], u["home_country"]) for u in users] == [
        (1, "alice2", "US"),
        (2, "bob", "FR"),
    ]
    labels = pq.read_table(home / "lake/labels/labels.parquet").to_pylist()
    assert [
        (x["post_id"], x["is_harmful"], x["harm_types"], x["sampling_weight"]) for x in labels
    ] == [
        (100, True, "harassment,hate", 1.0),
        (101, False, "", 12.5),
    ]
    log_lines = (home / "lake/_state/ingest_log.jsonl").read_text().splitlines()
    assert len(log_lines) == 1 and json.loads(log_lines[0])["loaded"] == 14


def test_timestamps_are_utc_microseconds(tmp_path, home):
    ingest(write_raw(tmp_path / "raw"))
    utc_us = pa.timestamp("us", tz="UTC")
    assert (
        pq.read_schema(home / "lake/events/dt=2026-10-01/events.parquet").field("event_ts").type
        == utc_us
    )
    assert pq.read_schema(home / "lake/users/users.parquet").field("created_at").type == utc_us
    assert pq.read_schema(home / "lake/labels/labels.parquet").field("labeled_at").type == utc_us
    for path, column in [
        ("events/*/events.parquet", "event_ts"),
        ("users/users.parquet", "created_at"),
        ("labels/labels.parquet", "labeled_at"),
    ]:
        (kind,) = duckdb.sql(
            f"select distinct typeof({column}) from read_parquet('{home}/lake/{path}')"
        ).fetchall()[0]
        assert kind == "TIMESTAMP WITH TIME ZONE"
    # Millisecond precision survives: e31 was stamped 23:59:59.999.
    (micros,) = duckdb.sql(
        f"select epoch_us(event_ts) % 1000000 from read_parquet('{home}/lake/events/*/*.parquet') "
        "where event_id = 'e31'"
    ).fetchall()[0]
    assert micros == 999_000


def test_reingest_is_a_no_op(tmp_path, home):
    raw = write_raw(tmp_path / "raw")
    ingest(raw)
    before = lake_digest(home / "lake")
    again = ingest(raw)
    assert counts(again) == (53, 0, 35, 18)
    assert again["days"] == []
    assert lake_digest(home / "lake") == before
    assert pq.read_table(home / "lake/quarantine/quarantine.parquet").num_rows == 35
    assert len((home / "lake/_state/ingest_log.jsonl").read_text().splitlines()) == 2


def test_temp_files_of_a_killed_writer_are_removed_on_the_next_run(tmp_path, home):
    raw = write_raw(tmp_path / "raw")
    ingest(raw)
    before = lake_digest(home / "lake")
    day = next((home / "lake/events").glob("dt=*"))
    # what write_parquet leaves when killed between write and rename; a foreign dot-file stays
    orphans = [day / ".events.parquet.4242.tmp", home / "lake/users/.users.parquet.7.tmp"]
    for orphan in orphans:
        orphan.write_bytes(b"half a parquet file")
    (day / ".keep").write_text("")
    ingest(raw)
    assert not any(o.exists() for o in orphans)
    assert (day / ".keep").exists()
    assert {k: v for k, v in lake_digest(home / "lake").items() if not k.endswith(".keep")} == before


def test_reingesting_a_fixed_file_replaces_its_quarantine_rows(tmp_path, home):
    raw = write_raw(tmp_path / "raw")
    ingest(raw)
    fixed = [ev("e40", T1.format("30"), 6, "login", country="GB")] + [
        line for line, _ in B_LINES[1:]
    ]
    (raw / FILE_B).write_bytes(b"\n".join(fixed) + b"\n")
    result = ingest(raw, day="2026-10-01")
    assert result["streams"]["events"]["loaded"] == 1  # e40
    quarantine = pq.read_table(home / "lake/quarantine/quarantine.parquet").to_pylist()
    b_rows = sorted(
        (q["line_number"], q["reason"]) for q in quarantine if q["source_file"] == FILE_B
    )
    expected = [(i, r) for i, (_, r) in enumerate(B_LINES, 1) if r not in ("ok", "duplicate")]
    assert b_rows == expected[1:]  # line 1 is no longer quarantined; nothing duplicated
    assert len(quarantine) == 34


def test_late_file_merges_into_existing_partition(tmp_path, home, monkeypatch):
    raw = write_raw(tmp_path / "raw", files=(FILE_A, FILE_B))
    first = ingest(raw)
    assert first["streams"]["events"]["loaded"] == 8
    day1 = home / "lake/events/dt=2026-10-01/events.parquet"
    assert sorted(pq.read_table(day1)["event_id"].to_pylist()) == sorted(
        VALID_IDS["2026-10-01"] - {"e31"}
    )

    write_raw(raw, files=(FILE_C,))  # arrives later: one event for 10-01, one repeat of A's e3
    late = ingest(raw, day="2026-10-02")
    assert counts(late["streams"]["events"]) == (3, 2, 0, 1)
    assert late["days"] == ["2026-10-01", "2026-10-02"]
    table = pq.read_table(day1)
    assert sorted(table["event_id"].to_pylist()) == sorted(VALID_IDS["2026-10-01"])
    keys = list(zip(table["user_id"].to_pylist(), table["event_ts"].to_pylist()))
    assert keys == sorted(keys)
    assert list(day1.parent.iterdir()) == [day1]  # no temp file left behind

    # Loading everything afresh gives the same lake content as the two steps.
    other = tmp_path / "home2"
    monkeypatch.setenv("VIGIL_HOME", str(other))
    ingest(raw)
    for day in VALID_IDS:
        a = pq.read_table(home / f"lake/events/dt={day}/events.parquet").sort_by("event_id")
        b = pq.read_table(other / f"lake/events/dt={day}/events.parquet").sort_by("event_id")
        assert a.equals(b)


def test_bulk_path_matches_line_by_line_path(tmp_path, home, monkeypatch):
    """The Arrow fast path must accept and reject exactly what the per-line validator does."""
    raw = write_raw(tmp_path / "raw")
    fast = ingest(raw)
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "slow"))
    slow = ingest(raw, fast=False)
    assert counts(fast) == counts(slow)
    for rel in lake_digest(home / "lake"):
        assert pq.read_table(home / "lake" / rel).equals(
            pq.read_table(tmp_path / "slow/lake" / rel)
        ), rel
    # Bisecting all the way down to single lines (no per-line shortcut for small chunks) too.
    monkeypatch.setattr("vigil.lake.bulk.BISECT_MIN_LINES", 1)
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "bisect"))
    assert counts(ingest(raw)) == counts(fast)
    assert lake_digest(tmp_path / "bisect/lake") == lake_digest(home / "lake")


def test_missing_directory_is_one_clear_error(tmp_path, home, capsys):
    with pytest.raises(UserError, match="does not exist"):
        ingest(tmp_path / "nowhere")
    assert cli.main(["ingest", "--raw", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vigil ingest: error: raw directory")
    (tmp_path / "empty").mkdir()
    assert cli.main(["ingest", "--raw", str(tmp_path / "empty")]) == 2


def test_cli_json_prints_one_object(tmp_path, home, capsys):
    raw = write_raw(tmp_path / "raw")
    assert cli.main(["ingest", "--raw", str(raw), "--json"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out)  # exactly one JSON document on stdout
    assert counts(result) == (53, 14, 35, 4)
    assert cli.main(["ingest", "--raw", str(raw)]) == 0
    summary = capsys.readouterr().out
    assert "quarantined" in summary and "events" in summary


@pytest.mark.slow
def test_simulated_world_counts_match_the_simulators_truth(tmp_path, home, monkeypatch):
    from sim.world import simulate

    raw = tmp_path / "raw"
    sim = simulate(raw, users=1000, days=2, seed=11, corrupt_rate=0.01, progress=False)
    truth = json.loads((raw / "_truth" / "corruptions.json").read_text())
    result = ingest(raw)
    events = result["streams"]["events"]
    assert events["read"] == truth["lines"]
    assert events["quarantined"] == truth["total"] > 0
    assert events["duplicates"] == truth["duplicate_lines"]
    assert events["loaded"] == sim["events"]
    (distinct,) = duckdb.sql(
        f"select count(distinct event_id) from read_parquet('{home}/lake/events/*/*.parquet')"
    ).fetchall()[0]
    assert distinct == sim["events"]
    assert result["streams"]["users"]["loaded"] == sim["users"]
    assert result["streams"]["labels"]["loaded"] == sim["labels"]
    # And the bulk path agrees with the per-line path on the simulator's corruptions.
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "slow"))
    slow = ingest(raw, fast=False)
    assert counts(slow) == counts(result)
    for rel in lake_digest(home / "lake"):
        assert pq.read_table(home / "lake" / rel).equals(
            pq.read_table(tmp_path / "slow/lake" / rel)
        ), rel
