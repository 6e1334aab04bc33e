"""The lake and quarantine a first ingest writes, against a reference computed without the ingest
code: each line through the per-line contract validator, duplicates dropped with a Python set,
days split and sorted in Python, tables built with ``pyarrow.array`` and written with
``pyarrow.parquet.write_table`` under the lake's documented writer settings (the way the lake was
written before it built its arrays from buffers and deduplicated in Arrow instead of DuckDB).
The Parquet bytes must be the same.

Input: a small simulated world (4 days, extra corrupt lines) plus a hand-made hour file with the
lines that take the unusual paths: JSON syntax and type errors in the middle of a file (the bulk
parser names the row), invalid UTF-8, an empty line, CRLF, a timestamp with an offset (the vector
check defers it to the per-line validator, which accepts it), repeats within the file and of
events of earlier days, and late events for a day whose partition was already written in the same
run (the dedupe against the lake), in a file without a final newline.

Also: the rules engine's effects log and the verdicts file (``vigil.lake.rule_logs``) against
the same kind of reference (first line of a key in (file, line) order), the Arrow array builders
against ``pyarrow.array``, the Arrow dedupe against a brute-force loop, and a first ingest in a
fresh process (the rules-log step included) importing neither pandas nor DuckDB.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sim.world import simulate
from vigil.contracts import event_schema, label_schema, quarantine_schema, user_schema
from vigil.lake import arrays
from vigil.lake.bulk import _canonical_ts
from vigil.lake.ingest import ingest
from vigil.lake.store import first_new_rows, keep_last
from vigil.lake.validation import (
    Bad,
    check_event,
    check_label,
    check_user,
    event_window_us,
    parse_line,
    raw_text,
)

REPO = Path(__file__).resolve().parents[2]
MAX_AGE_DAYS = 7  # the default VIGIL_MAX_EVENT_AGE_DAYS (the fixture pins it)
US = 1_000_000
# The lake writer's settings as docs/ingest.md and vigil.lake.store document them.
DICTIONARY = {
    *("action", "country", "source_file", "home_country", "harm_types", "queue", "stream"),
    *("reason", "raw_dir"),
}


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VIGIL_MAX_EVENT_AGE_DAYS", str(MAX_AGE_DAYS))
    return tmp_path / "home"


def _event(event_id: str, ts: str, user_id, action: str = "view", **extra) -> bytes:
    row = {"event_id": event_id, "event_ts": ts, "user_id": user_id, "action": action}
    row |= {"post_id": 7, "target_user_id": None, "text": None, "country": None} | extra
    return json.dumps(row).encode()


def _hand_made_lines(first_day_line: bytes) -> list[bytes]:
    day1 = json.loads(first_day_line)
    return [
        _event("h1", "2026-10-04T23:00:01.000Z", 5),
        _event("h2", "2026-10-04T23:00:02.000Z", 5),
        b'{"event_id": "h3", "event_ts": "2026-10-04T23:00:03.000Z", "user_id": 5,,}',  # syntax
        _event("h4", "2026-10-04T23:00:04.000Z", "five"),  # a string where the contract has int
        _event("h5", "2026-10-04T23:00:05.000Z", 6) + b"\r",  # CRLF: accepted
        b"",  # empty line
        b'{"event_id": "h6", "text": "\xff\xfe"}',  # invalid UTF-8
        _event("h7", "2026-10-04T23:00:07+00:00", 6),  # an offset: per-line check accepts it
        _event("h1", "2026-10-04T23:00:01.000Z", 5),  # repeat within the file
        first_day_line,  # repeat of an event of 2026-10-01, whose partition is written by now
        _event("h8", "2026-10-01T12:00:00.000Z", 1),  # late: into 2026-10-01's partition
        _event("h9", "2026-10-01T12:00:00.000Z", 1),  # same user and instant: order of lines
        _event("h10", "2026-09-20T00:00:00.000Z", 1),  # older than the age limit
        _event(day1["event_id"] + "x", day1["event_ts"], day1["user_id"]),  # same instant as it
        b"not json at all",
        _event("h12", "2026-02-30T10:00:00.000Z", 3),  # canonical shape, not a real instant
        _event("h13", "2026-10-04T24:00:00.000Z", 3),  # hour 24
        _event("h14", "2026-10-04T23:30:00.000Z", 3),  # fine, after them
        _event("h11", "2026-10-04T23:59:59.999Z", 2**40, text="\u00e9t\u00e9 \U0001f600"),
    ]


def _world(raw: Path) -> Path:
    simulate(raw, users=50, days=4, seed=11, corrupt_rate=0.01, progress=False)
    first_file = min((raw / "events/dt=2026-10-01").glob("*.jsonl"))
    first_line = next(line for line in _lines(first_file) if line.startswith(b'{"event_id":"ev'))
    hour = raw / "events/dt=2026-10-04/hour=23.jsonl"
    before = hour.read_bytes() if hour.exists() else b""
    hour.write_bytes(before + b"\n".join(_hand_made_lines(first_line)))  # no final newline
    return raw


def _hour_start_us(rel: str) -> int:
    dt, hour = rel.split("/")[1].removeprefix("dt="), int(rel.split("hour=")[1][:2])
    start = datetime.fromisoformat(dt).replace(hour=hour, tzinfo=UTC)
    return int(start.timestamp()) * US


def _lines(path: Path) -> list[bytes]:
    lines = path.read_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def _reference_events(raw: Path):
    """{day: rows sorted as the lake sorts them}, quarantine rows: brute force, line by line."""
    seen, days, quarantine = set(), {}, []
    for path in sorted((raw / "events").glob("dt=*/hour=*.jsonl")):
        rel = path.relative_to(raw).as_posix()
        floor, limit = event_window_us(_hour_start_us(rel), MAX_AGE_DAYS)
        for number, line in enumerate(_lines(path), start=1):
            try:
                row = check_event(parse_line(line), limit, floor)
            except Bad as bad:
                quarantine.append(("events", str(raw), rel, number, bad.args[0], raw_text(line)))
                continue
            if row[0] in seen:
                continue
            seen.add(row[0])
            day = datetime.fromtimestamp(row[1] / US, tz=UTC).date().isoformat()
            days.setdefault(day, []).append((*row, rel, number))
    for rows in days.values():
        rows.sort(key=lambda r: (r[2], r[1]))  # stable: ties stay in file and line order
    return days, quarantine


def _reference_snapshot(raw: Path, name: str, check, key_index: int):
    rows, quarantine = {}, []
    for number, line in enumerate(_lines(raw / name), start=1):
        try:
            row = check(parse_line(line))
        except Bad as bad:
            quarantine.append((name[:-6], str(raw), name, number, bad.args[0], raw_text(line)))
            continue
        rows[row[key_index]] = row  # the last line of a key wins
    return [rows[k] for k in sorted(rows)], quarantine


def _old_bytes(rows: list[tuple], schema) -> bytes:
    """The file as the lake wrote it before: pa.array columns, pq.write_table."""
    cols = list(zip(*rows)) if rows else [[] for _ in schema.names]
    table = pa.Table.from_arrays(
        [pa.array(c, type=schema.field(i).type) for i, c in enumerate(cols)], schema=schema
    )
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        use_dictionary=[c for c in schema.names if c in DICTIONARY],
        row_group_size=128 * 1024,
        write_page_checksum=True,
    )
    return sink.getvalue()


@pytest.mark.parametrize("piece_bytes", [None, 2048])
def test_first_ingest_writes_the_reference_bytes(tmp_path, home, monkeypatch, piece_bytes):
    if piece_bytes:  # many small parse pieces: rejected lines fall inside and between pieces
        monkeypatch.setattr("vigil.lake.bulk.PARSE_PIECE_BYTES", piece_bytes)
    raw = _world(tmp_path / "raw").resolve()
    result = ingest(raw)
    lake = home / "lake"

    days, events_bad = _reference_events(raw)
    assert sorted(days) == result["days"]
    assert "h8" in {r[0] for r in days["2026-10-01"]}  # the late rows reached the written day
    for day, rows in days.items():
        got = (lake / f"events/dt={day}/events.parquet").read_bytes()
        assert got == _old_bytes(rows, event_schema()), day

    users, users_bad = _reference_snapshot(raw, "users.jsonl", check_user, 0)
    labels, labels_bad = _reference_snapshot(raw, "labels.jsonl", check_label, 0)
    assert (lake / "users/users.parquet").read_bytes() == _old_bytes(users, user_schema())
    assert (lake / "labels/labels.parquet").read_bytes() == _old_bytes(labels, label_schema())

    quarantine = sorted(events_bad + users_bad + labels_bad, key=lambda q: (q[1], q[0], q[2], q[3]))
    reasons = {q[4] for q in events_bad}
    assert {"not JSON", "empty line", "invalid UTF-8"} <= reasons
    assert any(q[4].endswith(": user_id") and '"h4"' in q[5] for q in events_bad)
    assert "far-past timestamp: event_ts" in reasons
    got = (lake / "quarantine/quarantine.parquet").read_bytes()
    assert got == _old_bytes(quarantine, quarantine_schema())
    events = result["streams"]["events"]
    assert events["quarantined"] == len(events_bad)
    assert events["loaded"] == sum(len(rows) for rows in days.values())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_arrow_dedupe_matches_a_brute_force_loop(seed):
    rnd = random.Random(seed)
    ids = [f"e{rnd.randrange(300)}" for _ in range(1000)]
    existing = [f"e{rnd.randrange(600)}" for _ in range(50)]
    for lake_ids in (None, existing, []):
        known, expected = set(lake_ids or ()), []
        for i, event_id in enumerate(ids):
            if event_id not in known:
                known.add(event_id)
                expected.append(i)
        old = None if lake_ids is None else pa.array(lake_ids, pa.string())
        keep = first_new_rows(pa.chunked_array([pa.array(ids)]), old)
        assert (list(range(len(ids))) if keep is None else keep.tolist()) == expected
    assert first_new_rows(pa.array(["a", "b"])) is None
    assert first_new_rows(pa.array([], pa.string())) is None

    keys = [rnd.choice([1, 2, 3, None]) for _ in range(200)]
    table = pa.table({"k": pa.array(keys, pa.int64()), "i": pa.array(range(200), pa.int64())})
    last = {k: i for i, k in enumerate(keys)}
    assert keep_last(table, "k")["i"].to_pylist() == sorted(last.values())


def test_array_builders_equal_pyarrow_array():
    cases = [
        (["a", None, "\u00e9t\u00e9", "", "\U0001f600"], pa.string()),
        ([], pa.string()),
        ([1, None, -(2**63), 2**63 - 1], pa.int64()),
        ([1.5, None, -0.0], pa.float64()),
        ([True, None, False, True] * 5, pa.bool_()),
        ([0, None, 1_790_000_000_000_000], pa.timestamp("us", tz="UTC")),
    ]
    for values, type in cases:
        built = arrays.from_pylist(values, type)
        built.validate(full=True)
        assert built.equals(pa.array(values, type=type)), type
        assert built.null_count == values.count(None)
    import numpy as np

    ints = np.arange(-3, 7, dtype=np.int64)
    assert arrays.from_numpy(ints).equals(pa.array(ints))
    assert arrays.to_numpy(pa.array(ints)[2:]).tolist() == ints[2:].tolist()
    flags = pa.array([True, False, True, True, False, False, True, False, True, True])
    assert arrays.to_numpy(flags.slice(3)).tolist() == flags.slice(3).to_pylist()
    for value in (True, 3, 2.5, "x"):
        assert arrays.scalar(value).equals(pa.scalar(value))


def test_canonical_timestamp_check_matches_the_contract_regex():
    canonical = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
    good = "2026-10-01T00:00:01.000Z"
    texts = [good, None, "", "2026-10-01 00:00:01.000Z", "2026-10-01T00:00:01.000z"]
    texts += ["2026-10-01T00:00:01.0000Z", "2026-10-01T00:00:01Z", "\uff12026-10-01T00:00:01.000Z"]
    texts += ["2026-1a-01T00:00:01.000Z", "2026-10-01T00:00:01.000Z\n", "0000-01-01T00:00:00.000Z"]
    texts += ["2026-13-45T25:61:00.000Z", "1696161600", "yesterday", "2026/10/01T00:00:01.000Z"]
    texts += [good.replace(c, "\u00e9") for c in "0-T:.Z"] + [good.replace("1", "/")]
    rnd = random.Random(5)
    texts += ["".join(rnd.choice("0123456789-T:.Z ") for _ in range(24)) for _ in range(300)]
    expected = [t is not None and canonical.fullmatch(t) is not None for t in texts]
    assert sum(expected) >= 3
    whole = pa.array(texts, pa.string())
    chunked = pa.chunked_array([whole.slice(0, 7), whole.slice(7, 0), whole.slice(7)])
    for ts in (whole, chunked, whole.slice(3)):
        want = expected[3:] if len(ts) == len(texts) - 3 else expected
        assert _canonical_ts(ts).to_pylist() == want


def _effect(seq: int, user: str, event_id: str, effect: str = "label", **extra) -> dict:
    label = {"label": "coordinated", "review": None, "throttle": "throttled"}[effect]
    row = {"seq": seq, "rule": "r", "rule_version": 1, "mode": "live", "effect": effect}
    row |= {"entity": "user", "entity_id": user, "label": label, "expires_at": None}
    row |= {"event_id": event_id, "event_ts": "2026-10-01T00:03:00.000Z"}
    row["effect_id"] = f"r:1:{effect}:user:{user}:{event_id}"
    return row | extra


def _write_jsonl(path: Path, rows: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def _rule_logs(home: Path) -> None:
    """Two effects logs (a key repeated within and across them, bad lines) and a verdicts file."""
    _write_jsonl(
        home / "stream/a.effects.jsonl",
        [_effect(1, "11", "e1"), _effect(2, "12", "e1", "review"), _effect(3, "11", "e1"),
         _effect(4, "13", "e2", "throttle", label="slow"), "{not json",
         _effect(5, "14", "e3", "throttle", expires_at="2026-10-01T01:03:00.000Z")],
    )  # fmt: skip
    _write_jsonl(
        home / "stream/b.effects.jsonl",
        [_effect(6, "12", "e1", "review"), _effect(7, "15", "e4")],  # the first: a's line 2
    )
    verdict = {"user_id": 11, "is_violating": True, "reason": "bot", "reviewer": "ann"}
    _write_jsonl(
        home / "accounts/verdicts.jsonl",
        [verdict | {"reviewed_at": "2026-10-02T00:00:00Z"}, {"user_id": "x"},
         verdict | {"is_violating": False, "reason": None, "reviewed_at": "2026-10-03T00:00:00Z"}],
    )  # fmt: skip


def _reference_rule_log(files: dict[str, list[bytes]], row) -> tuple[list[tuple], list]:
    """Every (file, line) in order through the contract check, the first line of a key kept."""
    rows, seen, bad = [], set(), []
    for rel in sorted(files):
        for number, line in enumerate(files[rel], start=1):
            try:
                r = row(parse_line(line), rel, number)
            except Bad as exc:
                bad.append((rel, number, exc.args[0]))
                continue
            if r[0] not in seen:
                seen.add(r[0])
                rows.append(r)
    return rows, bad


def test_rule_logs_write_the_reference_bytes(tmp_path, home):
    from vigil.contracts import account_verdict_schema, rule_effect_schema
    from vigil.lake.rule_logs import _effect_row, _verdict_row

    raw = _world(tmp_path / "raw").resolve()
    _rule_logs(home)
    effects_dest = home / "lake/rule_effects/rule_effects.parquet"
    verdicts_dest = home / "lake/account_verdicts/account_verdicts.parquet"
    a_lines, b_lines = (
        _lines(home / "stream/a.effects.jsonl"),
        _lines(home / "stream/b.effects.jsonl"),
    )
    result = ingest(raw)
    effects, effects_bad = _reference_rule_log(
        {"a.effects.jsonl": a_lines, "b.effects.jsonl": b_lines}, _effect_row
    )
    # by hand: a's lines 1, 2, 5 and b's line 2 are kept; a's 3 repeats 1, b's 1 repeats a's 2
    assert [(r[-2], r[-1]) for r in effects] == [
        ("a.effects.jsonl", 1),
        ("a.effects.jsonl", 2),
        ("a.effects.jsonl", 6),
        ("b.effects.jsonl", 2),
    ]
    assert [b[2] for b in effects_bad] == ["invalid value: label", "not JSON"]
    assert effects_dest.read_bytes() == _old_bytes(effects, rule_effect_schema())
    assert result["streams"]["rule_effects"] == {
        "read": 8,
        "loaded": 4,
        "quarantined": 2,
        "duplicates": 2,
    }
    verdicts, _ = _reference_rule_log(
        {"verdicts.jsonl": _lines(home / "accounts/verdicts.jsonl")}, _verdict_row
    )
    assert [r[0] for r in verdicts] == ["verdicts.jsonl:1", "verdicts.jsonl:3"]
    assert verdicts_dest.read_bytes() == _old_bytes(verdicts, account_verdict_schema())

    # b leaves the disk (its rows stay in the lake), a grows by a repeat of b's kept line and a
    # new key: a's rows are replaced, and in (file, line) order a's line 7 now comes before b's
    # line 2, which becomes the duplicate
    (home / "stream/b.effects.jsonl").unlink()
    more = [
        json.dumps(_effect(7, "15", "e4")).encode(),
        json.dumps(_effect(8, "16", "e5")).encode(),
    ]
    with open(home / "stream/a.effects.jsonl", "ab") as f:
        f.write(b"\n".join(more) + b"\n")
    result = ingest(raw)
    effects, _ = _reference_rule_log(
        {"a.effects.jsonl": a_lines + more, "b.effects.jsonl": b_lines}, _effect_row
    )
    assert [r[-1] for r in effects] == [1, 2, 6, 7, 8]  # all a's
    assert effects_dest.read_bytes() == _old_bytes(effects, rule_effect_schema())
    assert result["streams"]["rule_effects"] == {
        "read": 8,
        "loaded": 1,
        "quarantined": 2,
        "duplicates": 5,
    }


def test_first_ingest_imports_neither_pandas_nor_duckdb(tmp_path):
    raw = _world(tmp_path / "raw")
    home = tmp_path / "home"
    _rule_logs(home)  # the rules-log step builds and dedupes real tables
    child = (
        "import sys, vigil.lake.ingest as m\n"
        f"r = m.ingest({str(raw)!r})\n"
        "assert r['streams']['rule_effects']['loaded'] == 4, r['streams']\n"
        "print(sorted(n for n in ('pandas', 'duckdb') if n in sys.modules))\n"
    )
    env = os.environ | {"VIGIL_HOME": str(home)}
    proc = subprocess.run(
        [sys.executable, "-c", child],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"
