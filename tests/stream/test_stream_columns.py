"""The columnar batch parser (vigil.stream.columns) against the per-line reference paths.

Hand-made lines, good and malformed (broken JSON, bad UTF-8 in a key no field reads, impossible
dates, leap days, hours 24, seconds 60, non-ASCII digits, missing required fields, bad countries,
lines past their file's limit, valid lines in a non-canonical form that only ingest's validator
accepts), go through ``parse_columns`` and through the reference parsers (``parse_lines``, one
tuple per line, and ``parse_event`` / ingest's validator ``_exact``, line by line): the valid
events, in order, with the same values, and every bad line's quarantine reason must be equal.
The timestamp conversion is checked against Python's datetime, and the bitmap of a user active
in many minutes of one batch against bits set by hand.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from vigil.stream.batch import parse_lines
from vigil.stream.columns import Columns, parse_columns, timestamps_us
from vigil.stream.events import NO_LIMIT_US, _exact, parse_event
from vigil.stream.state import StreamState

LIMIT = (int(datetime(2026, 9, 3, tzinfo=UTC).timestamp())) * 10**6  # 2026-09-03T00:00Z


def _good(k: int, action: str, ts: str = "2026-09-01T10:00:00.123Z", **extra) -> dict:
    ev = {"event_id": f"e{k}", "event_ts": ts, "user_id": 10 + k % 7, "action": action}
    if action in ("post", "reply"):
        ev.update(post_id=100 + k, text=f"text {k} ✓")
    elif action in ("view", "like", "share", "dislike", "report"):
        ev.update(post_id=100 + k % 5, target_user_id=20 + k % 3)
    elif action in ("block", "mute", "follow", "unfollow"):
        ev["target_user_id"] = 20 + k % 3
    elif action == "login":
        ev["country"] = "NG"
    ev.update(extra)
    return ev


def hand_made_lines() -> list[bytes]:
    """Valid lines of every kind between malformed ones (each commented with its fault)."""
    actions = ["post", "reply", "view", "like", "share", "dislike", "report", "block", "mute"]
    actions += ["follow", "unfollow", "login"]
    lines = [json.dumps(_good(k, a)).encode() for k, a in enumerate(actions)]
    ts_cases = [
        "2024-02-29T23:59:59.999Z",  # a leap day: valid
        "2026-02-29T10:00:00.000Z",  # not a leap year
        "2000-02-29T00:00:00.000Z",  # divisible by 400: a leap year
        "1900-02-29T00:00:00.000Z",  # divisible by 100 only: not one
        "2026-04-31T10:00:00.000Z",  # April has 30 days
        "2026-13-01T10:00:00.000Z",  # month 13
        "2026-00-10T10:00:00.000Z",  # month 0
        "2026-09-00T10:00:00.000Z",  # day 0
        "0000-01-01T00:00:00.000Z",  # year 0
        "0001-01-01T00:00:00.000Z",  # year 1: valid, long before the limit
        "2026-09-01T24:00:00.000Z",  # hour 24
        "2026-09-01T10:60:00.000Z",  # minute 60
        "2026-09-01T10:00:60.000Z",  # second 60
        "2026-09-01T10:00:00Z",  # no milliseconds: valid for ingest, not canonical
        "2026-09-01 10:00:00.000Z",  # a space for the T: valid for ingest, not canonical
        "2026-09-01T10:00:00.000z",  # a lowercase z
        "2026-09-0١T10:00:00.000Z",  # an Arabic-Indic digit
        "2026-09-03T00:00:00.000Z",  # exactly the limit: valid
        "2026-09-03T00:00:00.001Z",  # one ms past the limit
        "2026-12-31T23:59:59.999Z",  # far past the limit
    ]
    for j, ts in enumerate(ts_cases):
        lines.append(json.dumps(_good(100 + j, "view", ts=ts)).encode())
    faults = [
        b"",  # empty
        b" ",  # blank
        b"{",  # broken JSON
        b"[]",
        b"null",
        b'{"event_id": "x1"}',  # fields missing
        json.dumps({**_good(200, "login"), "country": "ng"}).encode(),  # lowercase country
        json.dumps({**_good(201, "login"), "country": "N1"}).encode(),
        json.dumps({**_good(202, "login"), "country": None}).encode(),  # a login needs one
        json.dumps({**_good(203, "post"), "text": None}).encode(),  # a post needs text
        json.dumps({**_good(204, "view"), "post_id": None}).encode(),
        json.dumps({**_good(205, "block"), "target_user_id": None}).encode(),
        json.dumps({**_good(206, "view"), "user_id": 0}).encode(),
        json.dumps({**_good(207, "view"), "user_id": 2**63}).encode(),
        json.dumps({**_good(208, "view"), "action": "poke"}).encode(),
        json.dumps({**_good(209, "view"), "event_id": "a" * 65}).encode(),
        json.dumps({**_good(210, "post"), "text": "t" * 5001}).encode(),
        json.dumps({**_good(211, "view"), "zz": "é"}, ensure_ascii=False).encode(),  # fine
        json.dumps(_good(212, "view")).encode()[:-1] + b', "zz": "\xff\xfe"}',  # bad UTF-8
        json.dumps(_good(213, "view")).encode()[:-1] + b', "zz": [1,]}',  # trailing comma
        json.dumps(_good(214, "view", country="US")).encode(),  # a country on a view: kept
        json.dumps(_good(215, "follow", text="hi")).encode(),  # text where none is needed
        json.dumps({**_good(216, "login"), "country": "ZZ"}).encode(),  # any 2 capitals
        json.dumps(_good(217, "view")).encode()[:-1] + b', "zz": "\xed\xa0\x80"}',  # a surrogate
        json.dumps(_good(218, "post", text="ok 🙌"), ensure_ascii=False).encode(),  # fine
        b'{"event_id": "e219"' + "🙌".encode()[:2],  # cut inside a character
    ]
    lines += faults
    lines += [json.dumps(_good(300 + k, a)).encode() for k, a in enumerate(actions)]
    return lines


def _per_line(cols: Columns, reasons: list[str], kept, n: int) -> list:
    """The columnar result laid out one entry per line, as the reference returns it."""
    kept = list(range(n)) if kept is None else kept.tolist()
    out: list = [None] * n
    for i, ev in zip(kept, cols.tuples(), strict=True):
        out[i] = ev
    it = iter(reasons)
    return [next(it) if ev is None else ev for ev in out]


@pytest.mark.parametrize("per_line_limits", [False, True])
def test_columns_equal_the_per_line_reference_on_hand_made_lines(per_line_limits):
    lines = hand_made_lines()
    limits = [LIMIT] * len(lines) if per_line_limits else LIMIT
    expected = [_exact(line, LIMIT) for line in lines]
    assert [parse_event(line, LIMIT) for line in lines] == expected
    assert parse_lines(lines, limits) == expected
    cols, reasons, kept = parse_columns(lines, limits)
    assert _per_line(cols, reasons, kept, len(lines)) == expected
    # the hand count: 12 + 12 valid actions, 6 valid timestamps of 20 (2 not canonical), the 4
    # odd but valid lines (a non-ASCII unknown key, a country on a view, text on a follow, ZZ)
    # and a post with an emoji
    assert len(cols) == 12 + 12 + 6 + 5
    assert reasons.count("invalid UTF-8") == 3


def test_columns_without_the_non_canonical_line_stay_columnar():
    """Without a line only ingest's validator accepts, the fast path decides alone, and the
    arrays hold the reference's values."""
    lines = [x for x in hand_made_lines() if b'10:00:00Z"' not in x]
    cols, reasons, kept = parse_columns(lines, LIMIT)
    expected = parse_lines(lines, LIMIT)
    assert cols.tuples() == [e for e in expected if type(e) is tuple]
    assert reasons == [e for e in expected if type(e) is str]
    assert kept.tolist() == [i for i, e in enumerate(expected) if type(e) is tuple]
    ref = Columns.from_tuples(cols.tuples())
    for name in ("ts", "uids", "acts", "tgt"):
        assert getattr(cols, name).tolist() == getattr(ref, name).tolist()


def test_columns_of_a_clean_batch_keep_every_line():
    lines = [json.dumps(_good(k, "view")).encode() for k in range(50)]
    cols, reasons, kept = parse_columns(lines, NO_LIMIT_US)
    assert (reasons, kept) == ([], None)
    assert cols.tuples() == parse_lines(lines, NO_LIMIT_US)
    assert cols.tgt.tolist() == [20 + k % 3 for k in range(50)]


def test_timestamps_match_datetime():
    rng = random.Random(3)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    start = datetime(1, 1, 1, tzinfo=UTC)
    span = (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - start).total_seconds()
    moments = [start + timedelta(seconds=rng.uniform(0, span)) for _ in range(3000)]
    moments += [datetime(2024, 2, 29, 12, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC)]
    strs = [m.strftime("%Y-%m-%dT%H:%M:%S.") + f"{m.microsecond // 1000:03d}Z" for m in moments]
    strs = [s.rjust(24, "0") for s in strs]  # strftime may not pad years below 1000
    us, ok = timestamps_us(strs)
    assert ok.all()
    expected = [
        ((m.replace(microsecond=m.microsecond // 1000 * 1000) - epoch) // timedelta(microseconds=1))
        for m in moments
    ]
    assert us.tolist() == expected
    bad = ["2023-02-29T00:00:00.000Z", "2026-06-31T00:00:00.000Z", "2026-01-01T00:00:00.000+"]
    assert timestamps_us(bad)[1].tolist() == [False, False, False]


def test_many_minutes_of_one_user_in_a_batch_set_exactly_their_bits(tmp_path):
    """A user active in 300 distinct minutes of one day, plus one minute of another user, in
    one batch (the one-int-per-group path for bitmaps) and one event at a time."""
    rng = random.Random(5)
    minutes = sorted(rng.sample(range(1440), 300))
    lines = []
    for k, m in enumerate(minutes):
        ts = f"2026-09-01T{m // 60:02d}:{m % 60:02d}:{rng.randrange(60):02d}.000Z"
        lines.append(json.dumps(_good(k, "like", ts=ts, user_id=7)).encode())
    lines.append(json.dumps(_good(999, "like", ts="2026-09-01T00:05:00.000Z", user_id=8)).encode())
    bulk = StreamState(tmp_path / "bulk.sqlite")
    bulk.apply_lines(lines)
    one = StreamState(tmp_path / "one.sqlite")
    for line in lines:
        one.apply_event(parse_lines([line], NO_LIMIT_US)[0])
    day = int(datetime(2026, 9, 1, tzinfo=UTC).timestamp()) // 86400
    assert bulk.users[7].days[day][0] == sum(1 << m for m in minutes)
    assert bulk.users[8].days[day][0] == 1 << 5
    assert {u: s.days for u, s in bulk.users.items()} == {u: s.days for u, s in one.users.items()}
    bulk.close()
    one.close()


def test_arrays_of_arrival_times_make_the_reference_runs(tmp_path):
    lines = [json.dumps(_good(k, "view")).encode() for k in range(10)]
    lines[3] = b"{"  # a bad line: its arrival time goes with it
    arrivals = [1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0, 1.0, 1.0, 1.0]
    state = StreamState(tmp_path / "s.sqlite", track_push=True)
    state.apply_lines(lines, NO_LIMIT_US, np.array(arrivals))
    assert state.arrivals == [[1.0, 2], [2.0, 2], [3.0, 2], [1.0, 3]]
    state.close()
