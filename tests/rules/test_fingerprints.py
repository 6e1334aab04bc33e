"""Fingerprints on events (issue 21): a login's device fingerprint is an optional event field of
the raw contract, validated and quarantined like the others, stored in the lake, carried by the
stream to the rules (entity ``fingerprint``), so a rule can count distinct accounts per device."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vigil.contracts import event_schema
from vigil.lake.store import read_parquet
from vigil.lake.validation import Bad, check_event, parse_line
from vigil.stream.batch import parse_lines
from vigil.stream.columns import parse_columns
from vigil.stream.events import _exact, parse_event
from vigil.stream.rules_cli import _run_lines, event_line

LIMIT = 2**62
BASE = {"event_id": "e1", "event_ts": "2026-10-01T10:00:00.000Z", "user_id": 7}
LOGIN = BASE | {"action": "login", "country": "US"}


def _line(**extra) -> bytes:
    return json.dumps(LOGIN | extra).encode()


CASES = [
    (_line(), None),  # absent: valid, None (other worlds' events carry none)
    (_line(fingerprint=None), None),
    (_line(fingerprint="d-8f3a"), "d-8f3a"),
    (_line(fingerprint="x" * 128), "x" * 128),
    (
        json.dumps(
            BASE | {"action": "like", "post_id": 3, "target_user_id": 4, "fingerprint": "d-1"}
        ).encode(),
        "d-1",
    ),  # any action may carry one
    (_line(fingerprint=""), "invalid value: fingerprint"),
    (_line(fingerprint="x" * 129), "invalid value: fingerprint"),
    (_line(fingerprint=5), "wrong type: fingerprint"),
    (_line(fingerprint=["d-1"]), "wrong type: fingerprint"),
    (
        (
            b'{"event_id": "e1", "event_ts": "2026-10-01T10:00:00.000Z", "user_id": 7, '
            b'"action": "login", "country": "US", "fingerprint": "\\ud800"}'
        ),
        "invalid UTF-8",
    ),
]


def test_the_contract_validates_the_fingerprint_by_hand():
    for line, want in CASES:
        if want is None or not want.startswith(("invalid", "wrong")):
            assert check_event(parse_line(line), LIMIT)[8] == want, line
        else:
            with pytest.raises(Bad) as err:
                check_event(parse_line(line), LIMIT)
            assert err.value.args[0] == want, line


def test_every_stream_parser_agrees_with_the_contract():
    lines = [line for line, _ in CASES]
    expected = [_exact(line, LIMIT) for line in lines]
    for (_line_, want), got in zip(CASES, expected, strict=True):
        assert (got if isinstance(got, str) else got[8]) == want
    assert [parse_event(line, LIMIT) for line in lines] == expected
    assert parse_lines(lines, LIMIT) == expected
    cols, reasons, _kept = parse_columns(lines, LIMIT)
    valid = [e for e in expected if isinstance(e, tuple)]
    assert cols.tuples() == valid
    assert reasons == [e for e in expected if isinstance(e, str)]


def test_a_lake_partition_written_before_the_column_reads_it_as_null(tmp_path):
    old = event_schema()
    old = pa.schema([f for f in old if f.name != "fingerprint"])
    row = {
        "event_id": "e1",
        "event_ts": 1_790_000_000_000_000,
        "user_id": 7,
        "action": "login",
        "post_id": None,
        "target_user_id": None,
        "text": None,
        "country": "US",
        "source_file": "events/dt=2026-10-01/hour=10.jsonl",
        "source_line": 1,
    }
    path = tmp_path / "events.parquet"
    pq.write_table(pa.Table.from_pylist([row], schema=old), path)
    table = read_parquet(path, event_schema())
    assert table.schema == event_schema()
    assert table["fingerprint"].to_pylist() == [None]
    assert table["country"].to_pylist() == ["US"]


RULE = """rules:
  - name: shared_device
    version: 1
    when: login
    expr: fingerprint is not None and distinct("fingerprint", "user", "1d") >= 3
    cooldown: 1d
    effects:
      - {do: review, entity: user, from: fingerprint}
      - {do: label, entity: fingerprint, label: farm_device, expires: 1d}
  - name: farm_device_login
    version: 1
    when: login
    expr: label("fingerprint", "farm_device")
    cooldown: 1d
    effects:
      - {do: review, entity: user}
"""


def _effects(tmp_path, events):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE)
    lines = [event_line(i, ev, "test") for i, ev in enumerate(events)]
    return [
        (e["rule"], e["effect"], e["entity"], str(e["entity_id"]), e["event_ts"])
        for e in _run_lines(rules, lines)
    ]


def test_distinct_accounts_per_fingerprint_in_a_window(tmp_path):
    events = [
        {"t": 0, "user": 1, "action": "login", "fingerprint": "d-farm"},
        {"t": 60, "user": 2, "action": "login", "fingerprint": "d-farm"},
        {"t": 120, "user": 2, "action": "login", "fingerprint": "d-farm"},  # same account
        {"t": 130, "user": 9, "action": "login", "fingerprint": "d-own"},
        {"t": 140, "user": 9, "action": "login"},  # no fingerprint: counts for no device
        {"t": 180, "user": 3, "action": "login", "fingerprint": "d-farm"},  # 3rd account: fires
        {"t": 240, "user": 4, "action": "login", "fingerprint": "d-farm"},  # cooldown; label
        {"t": 3 * 86400, "user": 5, "action": "login", "fingerprint": "d-farm"},  # days later
    ]
    got = _effects(tmp_path, events)
    at_180 = "2026-01-01T00:03:00.000Z"
    at_240 = "2026-01-01T00:04:00.000Z"
    # the cooldown is per acted-on entity: user 4 is new to the rule at 240 s, users 1-3 and
    # the device are not; three days later one account on the device is one, and the label
    # (1 day) has expired
    assert got == [
        ("shared_device", "review", "user", "1", at_180),
        ("shared_device", "review", "user", "2", at_180),
        ("shared_device", "review", "user", "3", at_180),
        ("shared_device", "label", "fingerprint", "d-farm", at_180),
        ("farm_device_login", "review", "user", "3", at_180),
        ("shared_device", "review", "user", "4", at_240),
        ("farm_device_login", "review", "user", "4", at_240),
    ]
