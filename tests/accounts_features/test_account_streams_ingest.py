"""`vigil ingest` of the account streams (enforcement.jsonl, devices.jsonl) on a hand-made raw
folder: every count and reason below is worked out by hand from the lines written here."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import duckdb
import pytest

from vigil.lake.ingest import ingest

USERS = [
    {"user_id": 1, "created_at": "2026-09-01T00:00:00.000Z", "home_country": "US", "handle": "a"}
]
EVENT = {
    "event_id": "e1",
    "event_ts": "2026-10-01T00:10:00.000Z",
    "user_id": 1,
    "action": "login",
    "post_id": None,
    "target_user_id": None,
    "text": None,
    "country": "US",
}
GOOD_ENF = {
    "enforcement_id": "en1",
    "user_id": 1,
    "action": "suspend",
    "reason": "bot",
    "enforced_at": "2026-10-01T05:00:00.000Z",
}
GOOD_DEV = {
    "seen_id": "s1",
    "user_id": 1,
    "seen_at": "2026-10-01T00:10:00.000Z",
    "device_fp": "d1",
    "network_fp": "n1",
}
ENFORCEMENT = [
    json.dumps(GOOD_ENF),  # loaded
    json.dumps(GOOD_ENF | {"enforcement_id": "en2", "reason": "vibes"}),  # invalid value: reason
    json.dumps(GOOD_ENF | {"enforcement_id": "en3", "action": "warn"}),  # invalid value: action
    json.dumps({k: v for k, v in GOOD_ENF.items() if k != "user_id"}),  # missing field: user_id
    '{"enforcement_id": "en5", ',  # not JSON
    json.dumps(GOOD_ENF),  # same key and content: a duplicate
]
DEVICES = [
    json.dumps(GOOD_DEV),  # loaded
    json.dumps(GOOD_DEV | {"seen_id": "s2", "device_fp": ""}),  # invalid value: device_fp
    json.dumps(GOOD_DEV | {"seen_id": "s3", "seen_at": "yesterday"}),  # unparseable timestamp
    json.dumps(GOOD_DEV | {"seen_id": "s4", "user_id": -3}),  # invalid id: user_id
    json.dumps(GOOD_DEV | {"seen_id": "s5", "network_fp": 7}),  # wrong type: network_fp
    json.dumps(GOOD_DEV | {"seen_id": "s6", "user_id": 2}),  # loaded
]


def _raw(tmp_path, with_accounts: bool = True):
    raw = tmp_path / "raw"
    (raw / "events" / "dt=2026-10-01").mkdir(parents=True)
    (raw / "events" / "dt=2026-10-01" / "hour=00.jsonl").write_text(json.dumps(EVENT) + "\n")
    (raw / "users.jsonl").write_text("".join(json.dumps(u) + "\n" for u in USERS))
    (raw / "labels.jsonl").write_text("")
    if with_accounts:
        (raw / "enforcement.jsonl").write_text("\n".join(ENFORCEMENT) + "\n")
        (raw / "devices.jsonl").write_text("\n".join(DEVICES) + "\n")
    return raw


@pytest.fixture
def home(tmp_path, monkeypatch):
    h = tmp_path / "home"
    monkeypatch.setenv("VIGIL_HOME", str(h))
    return h


def _counts(s: dict) -> tuple:
    return (s["read"], s["loaded"], s["quarantined"], s["duplicates"])


def test_bad_account_rows_are_quarantined_with_reasons(tmp_path, home):
    result = ingest(_raw(tmp_path))
    assert _counts(result["streams"]["enforcement"]) == (6, 1, 4, 1)
    assert _counts(result["streams"]["devices"]) == (6, 2, 4, 0)
    q = duckdb.sql(
        f"select stream, line_number, reason from read_parquet('{home}/lake/quarantine/"
        "quarantine.parquet') where stream in ('enforcement', 'devices') order by all"
    ).fetchall()
    assert q == [
        ("devices", 2, "invalid value: device_fp"),
        ("devices", 3, "unparseable timestamp: seen_at"),
        ("devices", 4, "invalid id: user_id"),
        ("devices", 5, "wrong type: network_fp"),
        ("enforcement", 2, "invalid value: reason"),
        ("enforcement", 3, "invalid value: action"),
        ("enforcement", 4, "missing field: user_id"),
        ("enforcement", 5, "not JSON"),
    ]
    enf = duckdb.sql(
        f"select enforcement_id, user_id, reason, epoch(enforced_at) from read_parquet("
        f"'{home}/lake/enforcement/enforcement.parquet')"
    ).fetchall()
    assert enf == [("en1", 1, "bot", datetime(2026, 10, 1, 5, tzinfo=UTC).timestamp())]
    dev = duckdb.sql(
        f"select seen_id, user_id from read_parquet('{home}/lake/devices/devices.parquet') "
        "order by seen_id"
    ).fetchall()
    assert dev == [("s1", 1), ("s6", 2)]


def test_worlds_without_account_streams_are_unchanged(tmp_path, home):
    result = ingest(_raw(tmp_path, with_accounts=False))
    assert set(result["streams"]) == {"events", "users", "labels"}
    assert not (home / "lake" / "enforcement").exists()
    assert not (home / "lake" / "devices").exists()
