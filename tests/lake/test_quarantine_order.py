"""The quarantine file's rows are in (raw folder, stream, file, line) order, whatever order the
ingest met them in (docs/ingest.md): two ingests of the same raw files write the same bytes.

Expected orders are written out by hand below; the reference for the bytes is the other ingest.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pyarrow.parquet as pq

from vigil.lake import bulk
from vigil.lake.ingest import ingest
from vigil.lake.quarantine import write_quarantine

FILES = [  # written in this order; lines: "ok" or a bad line (quarantined)
    ("events/dt=2026-10-02/hour=00.jsonl", ["ok", "bad", "ok", "bad"]),
    ("events/dt=2026-10-01/hour=10.jsonl", ["bad", "ok", "ok", "bad", "bad"]),
    ("events/dt=2026-10-01/hour=02.jsonl", ["ok", "bad"]),
]


def _event(n: int, day: str, hour: str) -> bytes:
    return json.dumps(
        {
            "event_id": f"e{n}",
            "event_ts": f"{day}T{hour}:00:{n % 60:02d}.000Z",
            "user_id": 1 + n % 5,
            "action": "login",
            "post_id": None,
            "target_user_id": None,
            "text": None,
            "country": "US",
        }
    ).encode()


def _write_raw(raw: Path) -> None:
    n = 0
    for name, kinds in FILES:
        day = name.split("dt=")[1][:10]
        hour = name.split("hour=")[1][:2]
        lines = []
        for kind in kinds:
            n += 1
            lines.append(_event(n, day, hour) if kind == "ok" else b"{not json " + str(n).encode())
        path = raw / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\n".join(lines) + b"\n")
    (raw / "users.jsonl").write_bytes(
        b'{"user_id":1,"created_at":"2026-09-01T10:00:00.000Z","home_country":"US","handle":"a"}\n'
        b"{oops\n"
    )
    (raw / "labels.jsonl").write_bytes(b"{oops\n")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_two_ingests_write_the_quarantine_in_file_and_line_order(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    _write_raw(raw)
    homes = [tmp_path / "one", tmp_path / "two"]
    # the first ingest on the bulk path with its parse threads, the second line by line
    monkeypatch.setenv("VIGIL_HOME", str(homes[0]))
    monkeypatch.setattr(bulk, "PARSE_THREADS", 4)
    ingest(raw)
    monkeypatch.setenv("VIGIL_HOME", str(homes[1]))
    monkeypatch.setattr(bulk, "PARSE_THREADS", 1)
    ingest(raw, fast=False)
    files = [h / "lake" / "quarantine" / "quarantine.parquet" for h in homes]
    assert _digest(files[0]) == _digest(files[1])
    rows = pq.read_table(files[0]).to_pylist()
    got = [(r["stream"], r["source_file"], r["line_number"]) for r in rows]
    # by hand: streams by name, then file names (dt=2026-10-01 before dt=2026-10-02, hour=02
    # before hour=10), then lines
    assert got == [
        ("events", "events/dt=2026-10-01/hour=02.jsonl", 2),
        ("events", "events/dt=2026-10-01/hour=10.jsonl", 1),
        ("events", "events/dt=2026-10-01/hour=10.jsonl", 4),
        ("events", "events/dt=2026-10-01/hour=10.jsonl", 5),
        ("events", "events/dt=2026-10-02/hour=00.jsonl", 2),
        ("events", "events/dt=2026-10-02/hour=00.jsonl", 4),
        ("labels", "labels.jsonl", 1),
        ("users", "users.jsonl", 2),
    ]
    assert {r["raw_dir"] for r in rows} == {str(raw.resolve())}


def test_write_quarantine_orders_rows_met_in_any_order(tmp_path):
    rows = [
        ("events", "/raw/b", "events/dt=2026-10-01/hour=01.jsonl", 3, "bad json", "x"),
        ("events", "/raw/a", "events/dt=2026-10-02/hour=00.jsonl", 1, "bad json", "x"),
        ("events", "/raw/a", "events/dt=2026-10-01/hour=01.jsonl", 12, "bad json", "x"),
        ("events", "/raw/a", "events/dt=2026-10-01/hour=01.jsonl", 2, "bad json", "x"),
        ("users", "/raw/a", "users.jsonl", 7, "bad json", "x"),
        ("labels", "/raw/a", "labels.jsonl", 1, "bad json", "x"),
    ]
    sources = {(r[1], r[0], r[2]) for r in rows}
    digests = []
    for seed in (1, 2, 3):
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        path = tmp_path / f"q{seed}.parquet"
        assert write_quarantine(path, shuffled, sources) == len(rows)
        digests.append(_digest(path))
        got = [
            (r["raw_dir"], r["stream"], r["source_file"], r["line_number"])
            for r in pq.read_table(path).to_pylist()
        ]
        # by hand: raw folder, stream, file, line (12 after 2: numbers, not text)
        assert got == [
            ("/raw/a", "events", "events/dt=2026-10-01/hour=01.jsonl", 2),
            ("/raw/a", "events", "events/dt=2026-10-01/hour=01.jsonl", 12),
            ("/raw/a", "events", "events/dt=2026-10-02/hour=00.jsonl", 1),
            ("/raw/a", "labels", "labels.jsonl", 1),
            ("/raw/a", "users", "users.jsonl", 7),
            ("/raw/b", "events", "events/dt=2026-10-01/hour=01.jsonl", 3),
        ]
    assert len(set(digests)) == 1
