"""`vigil ingest`: load raw log files into the Parquet lake, quarantining bad rows.

Reads the raw-log contract (docs/contracts.md section 1) and writes the lake (section 2):

- every event line is validated; a bad line goes to ``lake/quarantine/quarantine.parquet`` with its
  source file, 1-based line number and a reason from :data:`REASONS`, and the run goes on;
- events are partitioned by the UTC day of ``event_ts`` (``lake/events/dt=YYYY-MM-DD/events.parquet``,
  sorted by user_id, event_ts); an ``event_id`` already in its day's partition, or seen
  earlier in the same run, is counted as a duplicate and not loaded again, so a second run over the
  same input changes no byte of the lake; late events merge into their day's existing partition
  (read, union, dedupe, write to a temp file, rename);
- ``users.jsonl`` and ``labels.jsonl`` are snapshots: validated, deduplicated by key (last line
  wins) and written as full files.

Speed: an hour file is parsed in bulk by ``pyarrow.json`` against the contract's types and checked
with vectorised Arrow kernels. Only rows those checks do not accept, and chunks the bulk parser
rejects (bisected down to small chunks), go through the exact per-line Python validator
(:func:`check_event`), which alone decides reasons. The bulk path accepts only rows the per-line
validator accepts with identical values (a test runs both paths on the same input).

Counts per stream and in total: ``read = loaded + quarantined + duplicates``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from vigil import config
from vigil.errors import UserError

log = logging.getLogger(__name__)

MAX_EVENT_ID_CHARS = 64
MAX_TEXT_CHARS = 5000
MAX_RAW_CHARS = 2000
INT64_MAX = 2**63 - 1
US_PER_SECOND = 1_000_000
US_PER_HOUR = 3600 * US_PER_SECOND
# An event may be stamped at most 1 day after the end of its file's hour.
FUTURE_SLACK_US = 25 * US_PER_HOUR
# Below this many lines a chunk the bulk parser rejects goes line by line instead of being bisected.
BISECT_MIN_LINES = 32
# Validated rows held in memory before the oldest pending day is written early.
PENDING_ROWS_CAP = 6_000_000
# Hour files are validated in batches of about this many bytes (one bulk parse each).
BATCH_BYTES = 32 << 20
LOW_CARDINALITY = frozenset(
    {"action", "country", "source_file", "home_country", "harm_types", "queue", "stream", "reason"}
)

ACTIONS = frozenset(config.ACTIONS)
POST_ACTIONS = frozenset({"post", "reply", "view", "like", "share", "dislike", "report"})
TARGET_ACTIONS = frozenset({"block", "mute", "follow", "unfollow"})
TEXT_ACTIONS = frozenset({"post", "reply"})
HARM_TYPES = frozenset(config.HARM_TYPES)
QUEUES = frozenset({"reported", "random"})
EVENT_FIELDS = (
    "event_id",
    "event_ts",
    "user_id",
    "action",
    "post_id",
    "target_user_id",
    "text",
    "country",
)

# Quarantine reasons. Field-level reasons are "<kind>: <field>".
R_UTF8 = "invalid UTF-8"
R_EMPTY = "empty line"
R_JSON = "not JSON"
R_OBJECT = "not a JSON object"
R_ACTION = "unknown action"
R_TEXT = "oversized text"
R_FUTURE = "far-future timestamp: event_ts"
REASON_KINDS = (
    "missing field",  # key absent or null where the contract requires a value
    "wrong type",  # a string/bool/list field holding another JSON type
    "invalid id",  # id not an integer, a bool, <= 0 or beyond int64
    "invalid value",  # right type, outside the contract (length, code, enum, range)
    "unparseable timestamp",  # not ISO-8601 with an explicit offset, or not a real instant
)
REASONS = (R_UTF8, R_EMPTY, R_JSON, R_OBJECT, R_ACTION, R_TEXT, R_FUTURE) + tuple(
    f"{kind}: <field>" for kind in REASON_KINDS
)

_TS_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})",
    re.ASCII,
)
_CANONICAL_TS_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"
_COUNTRY_RE = re.compile(r"[A-Z]{2}", re.ASCII)
_HOUR_FILE_RE = re.compile(r"dt=([0-9]{4}-[0-9]{2}-[0-9]{2})/hour=([0-9]{2})\.jsonl", re.ASCII)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Bad(Exception):
    """A row that breaks the contract; ``args[0]`` is the quarantine reason."""


# ---------------------------------------------------------------------------------------------
# Per-line validation: the definition of a valid row.


def parse_ts(value: str) -> int | None:
    """ISO-8601 with an explicit offset (``Z`` or ``+HH:MM``) -> UTC microseconds since the epoch.

    Fractions beyond microseconds are truncated. Returns None for anything else (no offset,
    impossible dates like Feb 30 or second 60, other ISO forms).
    """
    m = _TS_RE.fullmatch(value)
    if m is None:
        return None
    y, mo, d, h, mi, s, frac, off = m.groups()
    try:
        dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=UTC)
    except ValueError:
        return None
    us = (dt - _EPOCH) // timedelta(microseconds=1)
    if frac:
        us += int(frac[:6].ljust(6, "0"))
    if off != "Z":
        oh, om = int(off[1:3]), int(off[4:6])
        if oh > 23 or om > 59:
            return None
        sign = 1 if off[0] == "+" else -1
        us -= sign * (oh * 60 + om) * 60 * US_PER_SECOND
    return us


def _id(obj: dict, name: str, required: bool) -> int | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise Bad(f"missing field: {name}")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= INT64_MAX:
        raise Bad(f"invalid id: {name}")
    return value


def _str(obj: dict, name: str, required: bool) -> str | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise Bad(f"missing field: {name}")
        return None
    if not isinstance(value, str):
        raise Bad(f"wrong type: {name}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escape such as "\ud800"
        raise Bad(R_UTF8) from None
    return value


def _ts(obj: dict, name: str) -> int:
    value = _str(obj, name, required=True)
    us = parse_ts(value)
    if us is None:
        raise Bad(f"unparseable timestamp: {name}")
    return us


def _country(obj: dict, name: str, required: bool) -> str | None:
    value = _str(obj, name, required)
    if value is not None and not _COUNTRY_RE.fullmatch(value):
        raise Bad(f"invalid value: {name}")
    return value


def check_event(obj: dict, limit_us: int) -> tuple:
    """One event (a parsed JSON object) -> a lake row tuple in EVENT_FIELDS order, or raise Bad.

    ``limit_us``: the latest acceptable event_ts (1 day after the end of the file's hour).
    A field that is absent counts as null.
    """
    event_id = _str(obj, "event_id", required=True)
    if not 1 <= len(event_id) <= MAX_EVENT_ID_CHARS:
        raise Bad("invalid value: event_id")
    ts = _ts(obj, "event_ts")
    user_id = _id(obj, "user_id", required=True)
    action = _str(obj, "action", required=True)
    if action not in ACTIONS:
        raise Bad(R_ACTION)
    post_id = _id(obj, "post_id", required=action in POST_ACTIONS)
    target_user_id = _id(obj, "target_user_id", required=action in TARGET_ACTIONS)
    text = _str(obj, "text", required=action in TEXT_ACTIONS)
    if text is not None and len(text) > MAX_TEXT_CHARS:
        raise Bad(R_TEXT)
    country = _country(obj, "country", required=action == "login")
    if ts > limit_us:
        raise Bad(R_FUTURE)
    return (event_id, ts, user_id, action, post_id, target_user_id, text, country)


def check_user(obj: dict) -> tuple:
    """One users.jsonl object -> (user_id, created_at_us, home_country, handle), or raise Bad."""
    user_id = _id(obj, "user_id", required=True)
    created_at = _ts(obj, "created_at")
    home_country = _country(obj, "home_country", required=True)
    handle = _str(obj, "handle", required=True)
    if not handle:
        raise Bad("invalid value: handle")
    return (user_id, created_at, home_country, handle)


def check_label(obj: dict) -> tuple:
    """One labels.jsonl object -> (post_id, is_harmful, harm_types, labeled_at_us, queue,
    sampling_weight), or raise Bad."""
    post_id = _id(obj, "post_id", required=True)
    is_harmful = obj.get("is_harmful")
    if is_harmful is None:
        raise Bad("missing field: is_harmful")
    if not isinstance(is_harmful, bool):
        raise Bad("wrong type: is_harmful")
    harm_types = obj.get("harm_types")
    if harm_types is None:
        raise Bad("missing field: harm_types")
    if not isinstance(harm_types, list) or not all(isinstance(t, str) for t in harm_types):
        raise Bad("wrong type: harm_types")
    if not set(harm_types) <= HARM_TYPES or (harm_types and not is_harmful):
        raise Bad("invalid value: harm_types")
    labeled_at = _ts(obj, "labeled_at")
    queue = _str(obj, "queue", required=True)
    if queue not in QUEUES:
        raise Bad("invalid value: queue")
    weight = obj.get("sampling_weight")
    if weight is None:
        raise Bad("missing field: sampling_weight")
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        raise Bad("wrong type: sampling_weight")
    if not (math.isfinite(weight) and weight >= 1):
        raise Bad("invalid value: sampling_weight")
    return (
        post_id,
        is_harmful,
        ",".join(sorted(set(harm_types))),
        labeled_at,
        queue,
        float(weight),
    )


def parse_line(line: bytes) -> dict:
    """Raw bytes of one line -> a JSON object, or raise Bad (empty, invalid UTF-8, not JSON...)."""
    if not line.strip():
        raise Bad(R_EMPTY)
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise Bad(R_UTF8) from None
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise Bad(R_JSON) from None
    if not isinstance(obj, dict):
        raise Bad(R_OBJECT)
    return obj


def _raw_text(line: bytes) -> str:
    return line.decode("utf-8", errors="replace")[:MAX_RAW_CHARS]


# ---------------------------------------------------------------------------------------------
# Arrow schemas (pyarrow imported lazily: the CLI imports this module).


def event_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("event_id", pa.string()),
            ("event_ts", pa.timestamp("us", tz="UTC")),
            ("user_id", pa.int64()),
            ("action", pa.string()),
            ("post_id", pa.int64()),
            ("target_user_id", pa.int64()),
            ("text", pa.string()),
            ("country", pa.string()),
            ("source_file", pa.string()),
            ("source_line", pa.int64()),
        ]
    )


def user_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("user_id", pa.int64()),
            ("created_at", pa.timestamp("us", tz="UTC")),
            ("home_country", pa.string()),
            ("handle", pa.string()),
        ]
    )


def label_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("post_id", pa.int64()),
            ("is_harmful", pa.bool_()),
            ("harm_types", pa.string()),
            ("labeled_at", pa.timestamp("us", tz="UTC")),
            ("queue", pa.string()),
            ("sampling_weight", pa.float64()),
        ]
    )


def quarantine_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("stream", pa.string()),
            ("source_file", pa.string()),
            ("line_number", pa.int64()),
            ("reason", pa.string()),
            ("raw", pa.string()),
        ]
    )


def _json_read_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("event_id", pa.string()),
            ("event_ts", pa.string()),
            ("user_id", pa.int64()),
            ("action", pa.string()),
            ("post_id", pa.int64()),
            ("target_user_id", pa.int64()),
            ("text", pa.string()),
            ("country", pa.string()),
        ]
    )


# ---------------------------------------------------------------------------------------------
# Reading one hour file.


@dataclass
class Counts:
    read: int = 0
    loaded: int = 0
    quarantined: int = 0
    duplicates: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "read": self.read,
            "loaded": self.loaded,
            "quarantined": self.quarantined,
            "duplicates": self.duplicates,
        }


_ROW_HINT_RE = re.compile(r"in row ([0-9]+)")


def _bulk_parse(chunk, n_lines: int):
    """Parse ``n_lines`` JSON lines (bytes or a memoryview) with pyarrow against the contract's
    types. The lines must have passed :func:`_precheck` (one object per line, valid UTF-8).

    Returns ``(table, None)``, or ``(None, row)`` when some line is not plain well-typed JSON;
    ``row`` is the reader's idea of the first bad row (a hint: the caller checks it line by line)
    or None when it does not say.
    """
    import pyarrow as pa
    import pyarrow.json as pa_json

    try:
        table = pa_json.read_json(
            pa.BufferReader(pa.py_buffer(chunk)),
            # One block: the error's row number is then relative to the chunk.
            read_options=pa_json.ReadOptions(use_threads=False, block_size=len(chunk) + 1),
            parse_options=pa_json.ParseOptions(
                explicit_schema=_json_read_schema(), unexpected_field_behavior="ignore"
            ),
        )
    except UnicodeDecodeError as exc:  # the reader's message quotes the offending bytes
        message = bytes(exc.object).decode("utf-8", errors="replace")
        m = _ROW_HINT_RE.search(message)
        return None, int(m.group(1)) if m else None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        m = _ROW_HINT_RE.search(str(exc))
        return None, int(m.group(1)) if m else None
    if table.num_rows != n_lines:
        return None, None
    return table, None


def _precheck(data: bytes, n_lines: int, newlines) -> list[int]:
    """Lines the bulk reader must not see: not exactly one ``{...}`` per line (first byte ``{``,
    last ``}``, before an optional CR), or invalid UTF-8 (the JSON reader does not reliably
    reject invalid UTF-8 inside strings). Sorted line indices; ``data`` ends with a newline.

    Between such lines a successful bulk parse that yields one row per line maps row i to line i
    exactly: no line is blank (the reader skips those), no object spans two lines (a line may not
    end inside one and the next may not start with ``{`` there) and no line holds two objects
    (the row count would differ).
    """
    import numpy as np
    import pyarrow as pa

    if n_lines == 0:
        return []
    raw = np.frombuffer(data, dtype=np.uint8)
    nl = newlines()
    first = raw[np.concatenate([[0], nl[:-1] + 1])]  # an empty line's "first byte" is its \n
    last, before_last = raw[np.maximum(nl - 1, 0)], raw[np.maximum(nl - 2, 0)]
    ends_ok = (last == ord("}")) | ((last == ord("\r")) & (before_last == ord("}")))
    bad = set(np.flatnonzero((first != ord("{")) | ~ends_ok).tolist())

    # UTF-8: Arrow's validator over every line at once; bisect only where it fails.
    offsets = np.concatenate([[0], nl + 1]).astype(np.int64)
    lines = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), n_lines, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )

    def invalid(lo: int, hi: int) -> None:
        try:
            lines.slice(lo, hi - lo).cast(pa.large_string())
        except pa.ArrowInvalid:
            if hi - lo == 1:
                bad.add(lo)
            else:
                mid = (lo + hi) // 2
                invalid(lo, mid)
                invalid(mid, hi)

    invalid(0, n_lines)
    return sorted(bad)


def _vector_check(table, limit_us):
    """Arrow-vectorised contract check. ``limit_us``: latest event_ts per row (an array) or for
    all rows. Returns (ok mask, event_ts as int64 us)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = table.num_rows
    eid = table["event_id"]
    eid_len = pc.utf8_length(eid)
    ok = pc.fill_null(
        pc.and_(pc.greater_equal(eid_len, 1), pc.less_equal(eid_len, MAX_EVENT_ID_CHARS)), False
    )

    ts = table["event_ts"]
    canonical = pc.fill_null(pc.match_substring_regex(ts, _CANONICAL_TS_RE), False)
    # Python has no year 0
    canonical = pc.and_(canonical, pc.fill_null(pc.invert(pc.starts_with(ts, "0000")), False))
    safe_ts = pc.if_else(canonical, ts, "1970-01-01T00:00:00.000Z")
    local = pc.utf8_slice_codeunits(safe_ts, 0, 23)
    try:  # Arrow's ISO-8601 cast is strict (no Feb 30, hour 24, second 60) and fast
        ts_us = pc.cast(pc.cast(local, pa.timestamp("ms")), pa.timestamp("us")).cast(pa.int64())
    except pa.ArrowInvalid:  # some canonical-looking text is not a real instant: row by row
        secs_str = pc.utf8_slice_codeunits(safe_ts, 0, 19)
        secs = pc.strptime(secs_str, format="%Y-%m-%dT%H:%M:%S", unit="s", error_is_null=True)
        # strptime rolls Feb 30 over to Mar 2: require the round trip to reproduce the text.
        round_trip = pc.fill_null(
            pc.equal(pc.strftime(secs, format="%Y-%m-%dT%H:%M:%S"), secs_str), False
        )
        millis = pc.cast(pc.utf8_slice_codeunits(safe_ts, 20, 23), pa.int64())
        ts_us = pc.add(
            pc.multiply(pc.fill_null(secs.cast(pa.int64()), 0), US_PER_SECOND),
            pc.multiply(millis, 1000),
        )
        canonical = pc.and_(canonical, round_trip)
    ok = pc.and_(ok, canonical)
    ok = pc.and_(ok, pc.less_equal(ts_us, limit_us))

    ok = pc.and_(ok, pc.fill_null(pc.greater(table["user_id"], 0), False))
    action = table["action"]
    ok = pc.and_(ok, pc.fill_null(pc.is_in(action, value_set=pa.array(sorted(ACTIONS))), False))

    def optional_positive(col):
        return pc.fill_null(pc.greater(col, 0), True)

    def required_for(col, actions):
        needs = pc.fill_null(pc.is_in(action, value_set=pa.array(sorted(actions))), False)
        return pc.or_(pc.invert(needs), pc.is_valid(col))

    post_id, target = table["post_id"], table["target_user_id"]
    ok = pc.and_(ok, pc.and_(optional_positive(post_id), required_for(post_id, POST_ACTIONS)))
    ok = pc.and_(ok, pc.and_(optional_positive(target), required_for(target, TARGET_ACTIONS)))
    text = table["text"]
    text_ok = pc.fill_null(pc.less_equal(pc.utf8_length(text), MAX_TEXT_CHARS), True)
    ok = pc.and_(ok, pc.and_(text_ok, required_for(text, TEXT_ACTIONS)))
    country = table["country"]
    country_ok = pc.fill_null(pc.match_substring_regex(country, r"^[A-Z]{2}$"), True)
    ok = pc.and_(ok, pc.and_(country_ok, required_for(country, {"login"})))
    ok = pc.fill_null(ok, False)  # a null would be neither accepted nor re-checked
    assert len(ok) == n
    return ok, ts_us


@dataclass
class _BatchResult:
    table: Any  # pyarrow.Table in event_schema(), in file then line order
    read: list[int]  # lines per file
    quarantine: list[tuple[str, int, str, str]] = field(default_factory=list)
    # (source_file, line, reason, raw)
    slow_lines: int = 0


def _fast_table(table, ts_us, ok, source_files, source_lines, global_index):
    import pyarrow as pa
    import pyarrow.compute as pc

    arrays = [
        table["event_id"],
        pc.cast(ts_us, pa.timestamp("us", tz="UTC")),
        table["user_id"],
        table["action"],
        table["post_id"],
        table["target_user_id"],
        table["text"],
        table["country"],
        source_files,
        source_lines,
        global_index,
    ]
    full = pa.Table.from_arrays(arrays, schema=event_schema().append(pa.field("_g", pa.int64())))
    return full if pc.all(ok).as_py() else full.filter(ok)


def read_event_batch(files: list[tuple[Path, str, int]], fast: bool = True) -> _BatchResult:
    """Validate hour files ``(path, source_file, hour_start_us)`` as one batch: one bulk parse
    and one vector check for all of them, so small files do not pay per-call overheads."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    datas, counts = [], []
    for path, _, _ in files:
        data = path.read_bytes()
        # The file's final newline ends the last line; it does not start a new one.
        n = data.count(b"\n")
        if data and not data.endswith(b"\n"):
            n += 1
            data += b"\n"
        datas.append(data)
        counts.append(n)
    data = b"".join(datas)
    del datas
    n_lines = sum(counts)
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)  # first global line per file
    file_of = np.repeat(np.arange(len(files), dtype=np.int64), counts)
    limits = np.array([start + FUTURE_SLACK_US for _, _, start in files], dtype=np.int64)
    names = pa.array([name for _, name, _ in files], type=pa.string())
    split: list[list[bytes]] = []  # the lines, split only when some line needs a closer look

    def lines() -> list[bytes]:
        if not split:
            parts = data.split(b"\n")
            parts.pop()  # data ends with a newline
            split.append(parts)
        return split[0]

    found: list = []  # positions of the newlines, found only when needed

    def newlines():
        if not found:
            found.append(np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10))
        return found[0]

    view = memoryview(data)

    def chunk_of(lo: int, hi: int):
        nl = newlines()
        return view[(int(nl[lo - 1]) + 1 if lo else 0) : int(nl[hi - 1]) + 1]

    result = _BatchResult(table=None, read=counts)
    tables = []
    slow_rows: list[tuple] = []
    slow_where: list[int] = []  # global line index of each slow row

    def slow(lo: int, hi: int) -> None:
        result.slow_lines += hi - lo
        all_lines = lines()
        for g in range(lo, hi):
            f = int(file_of[g])
            line = all_lines[g]
            try:
                slow_rows.append(check_event(parse_line(line), int(limits[f])))
                slow_where.append(g)
            except Bad as bad:
                result.quarantine.append(
                    (files[f][1], g - int(starts[f]) + 1, bad.args[0], _raw_text(line))
                )

    def accept(table, lo: int, hi: int) -> None:
        ok, ts_us = _vector_check(table, pa.array(limits[file_of[lo:hi]]))
        where = np.arange(lo, hi, dtype=np.int64)
        fidx = file_of[lo:hi]
        tables.append(
            _fast_table(
                table,
                ts_us,
                ok,
                names.take(fidx),
                pa.array(where - starts[fidx] + 1),
                pa.array(where),
            )
        )
        # Rows the vector check does not accept: the per-line validator gives their reason
        # (or accepts them, e.g. a timestamp with an offset instead of Z).
        for i in pc.indices_nonzero(pc.invert(ok)).to_pylist():
            slow(lo + i, lo + i + 1)

    def bulk(lo: int, hi: int, chunk: bytes | None = None) -> None:
        """Lines [lo, hi): bulk where possible; a bad line is checked alone, the rest resumes."""
        while lo < hi:
            if chunk is None and hi - lo < BISECT_MIN_LINES:
                slow(lo, hi)
                return
            if chunk is None:
                chunk = chunk_of(lo, hi)
            table, hint = _bulk_parse(chunk, hi - lo)
            chunk = None
            if table is not None:
                accept(table, lo, hi)
                return
            if hint is not None and 0 <= hint < hi - lo:
                bulk(lo, lo + hint)  # the rows before the reported one parsed
                slow(lo + hint, lo + hint + 1)
                lo += hint + 1
            elif hi - lo == 1:
                slow(lo, hi)
                return
            else:  # no usable hint: bisect
                mid = (lo + hi) // 2
                bulk(lo, mid)
                lo = mid

    if not fast:
        slow(0, n_lines)
    else:
        bad = _precheck(data, n_lines, newlines)
        if not bad:
            bulk(0, n_lines, data)
        lo = 0
        for g in bad:  # the runs between lines the bulk reader must not see
            bulk(lo, g)
            slow(g, g + 1)
            lo = g + 1
        if bad:
            bulk(lo, n_lines)
    if slow_rows or not tables:
        schema = event_schema()
        cols = list(zip(*slow_rows)) if slow_rows else [[] for _ in EVENT_FIELDS]
        where = np.asarray(slow_where, dtype=np.int64)
        fidx = file_of[where]
        arrays = [pa.array(col, type=schema.field(i).type) for i, col in enumerate(cols)]
        arrays += [names.take(fidx), pa.array(where - starts[fidx] + 1), pa.array(where)]
        tables.append(
            pa.Table.from_arrays(arrays, schema=schema.append(pa.field("_g", pa.int64())))
        )
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    if len(tables) > 1:  # back to file and line order, so partition-sort ties keep that order
        table = table.combine_chunks().sort_by("_g")
    result.table = table.drop_columns(["_g"])
    result.quarantine.sort()
    assert result.table.num_rows + len(result.quarantine) == n_lines
    return result


def read_event_file(path: Path, source_file: str, hour_start_us: int, fast: bool = True):
    """Validate one hour file (see :func:`read_event_batch`)."""
    return read_event_batch([(path, source_file, hour_start_us)], fast=fast)


# ---------------------------------------------------------------------------------------------
# Writing the lake.


def _write_parquet(table, dest: Path) -> None:
    """Write atomically: a temp file in the same directory (not matching *.parquet), then rename."""
    import pyarrow.parquet as pq

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.{os.getpid()}.tmp"
    try:
        # Dictionary-encode only low-cardinality columns: trying it on ids and text costs time.
        dictionary = [c for c in table.column_names if c in LOW_CARDINALITY]
        pq.write_table(
            table, tmp, compression="zstd", use_dictionary=dictionary, row_group_size=128 * 1024
        )
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _read_parquet(path: Path, schema, columns=None):
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=columns)
    if columns is None:
        table = table.select(schema.names).cast(schema)
    return table


def _first_new_rows(con, ids, existing_ids=None):
    """Sorted indices of the rows whose id is not in ``existing_ids`` nor in an earlier row,
    or None when that is every row. DuckDB's hash aggregate is several times faster than
    Arrow's on strings."""
    import numpy as np
    import pyarrow as pa

    n = len(ids)
    try:
        con.register("new_ids", pa.table({"event_id": ids, "_i": pa.array(np.arange(n))}))
        if existing_ids is not None:
            con.register("old_ids", pa.table({"event_id": existing_ids}))
            sql = (
                "select min(new_ids._i) as i from new_ids anti join old_ids using (event_id) "
                "group by new_ids.event_id"
            )
        else:
            sql = "select min(_i) as i from new_ids group by event_id"
        keep = con.sql(sql).fetchnumpy()["i"]
    finally:
        con.unregister("new_ids")
        if existing_ids is not None:
            con.unregister("old_ids")
    if len(keep) == n:
        return None
    return np.sort(np.asarray(keep, dtype=np.int64))


def _keep_last(table, key: str):
    import numpy as np
    import pyarrow as pa

    if table.num_rows == 0:
        return table
    indexed = pa.table({key: table[key], "_i": pa.array(np.arange(table.num_rows))})
    last = indexed.group_by(key, use_threads=False).aggregate([("_i", "max")])["_i_max"]
    return table.take(np.sort(last.to_numpy()))


def merge_day(lake_events: Path, day: date, new_tables: list, con) -> tuple[int, int]:
    """Merge validated rows into the day's partition. Returns (loaded, duplicates).

    Rows whose event_id is already in the partition, or earlier among the new rows, are
    duplicates. The partition is rewritten only when something new arrives.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    new = pa.concat_tables(new_tables).combine_chunks()  # take() on many chunks is slow
    offered = new.num_rows
    dest = lake_events / f"dt={day.isoformat()}" / "events.parquet"
    existing_ids = None
    if dest.exists():
        existing_ids = _read_parquet(dest, None, columns=["event_id"])["event_id"]
    keep = _first_new_rows(con, new["event_id"], existing_ids)
    if keep is not None:
        new = new.take(keep)
    loaded = new.num_rows
    if loaded:
        if dest.exists():
            existing = _read_parquet(dest, event_schema())
            new = pa.concat_tables([existing, new]).combine_chunks()
        # Arrow's sort is stable: ties keep partition rows first, then file and line order.
        order = pc.sort_indices(
            new, sort_keys=[("user_id", "ascending"), ("event_ts", "ascending")]
        )
        _write_parquet(new.take(order), dest)
    return loaded, offered - loaded


def _write_snapshot(dest: Path, table, key: str) -> tuple[int, int]:
    """Replace a snapshot file. Returns (changed_or_new rows, rows identical to the lake's)."""
    table = table.sort_by([(key, "ascending")])
    if dest.exists():
        old = _read_parquet(dest, table.schema)
        if old.equals(table):
            return 0, table.num_rows
        # Rows identical to an existing row are not "loaded" again.
        old_rows = set(zip(*[old[c].to_pylist() for c in old.column_names]))
        new_rows = list(zip(*[table[c].to_pylist() for c in table.column_names]))
        same = sum(1 for r in new_rows if r in old_rows)
    else:
        same = 0
    _write_parquet(table, dest)
    return table.num_rows - same, same


# ---------------------------------------------------------------------------------------------
# The run.


def _parse_day(value: date | str | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"--day {value!r} is not a date: use YYYY-MM-DD.") from None


def _check_raw_dir(raw: Path) -> None:
    if not raw.exists():
        raise UserError(
            f"raw directory {raw} does not exist: run `vigil simulate --out {raw}` or pass --raw DIR."
        )
    if not raw.is_dir():
        raise UserError(f"raw directory {raw} is not a directory: pass --raw DIR.")
    if not os.access(raw, os.R_OK | os.X_OK):
        raise UserError(f"raw directory {raw} is not readable: fix its permissions.")
    if not any((raw / name).exists() for name in ("events", "users.jsonl", "labels.jsonl")):
        raise UserError(
            f"raw directory {raw} has no events/, users.jsonl or labels.jsonl: "
            "point --raw at a `vigil simulate` output."
        )


def discover_event_files(
    raw: Path, day: date | None
) -> tuple[list[tuple[date, int, Path]], list[str]]:
    """Hour files as (dt, hour, path) sorted by dt, hour; plus .jsonl files with unusable names."""
    events = raw / "events"
    found, skipped = [], []
    if day is not None:
        pattern = f"dt={day.isoformat()}/*.jsonl"
        if not (events / f"dt={day.isoformat()}").is_dir():
            raise UserError(
                f"no raw events for {day}: {events / f'dt={day.isoformat()}'} is missing."
            )
    else:
        pattern = "**/*.jsonl"
    for path in events.glob(pattern) if events.is_dir() else []:
        rel = path.relative_to(events).as_posix()
        m = _HOUR_FILE_RE.fullmatch(rel)
        try:
            dt, hour = date.fromisoformat(m.group(1)), int(m.group(2))
            if hour > 23:
                raise ValueError(hour)
        except (AttributeError, ValueError):
            skipped.append(path.relative_to(raw).as_posix())
            continue
        found.append((dt, hour, path))
    found.sort()
    return found, sorted(skipped)


def _hour_start_us(dt: date, hour: int) -> int:
    start = datetime(dt.year, dt.month, dt.day, hour, tzinfo=UTC)
    return (start - _EPOCH) // timedelta(microseconds=1)


@contextlib.contextmanager
def _lake_lock(state_dir: Path):
    import fcntl

    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / "ingest.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"another `vigil ingest` is writing this lake ({state_dir.parent}): wait for it."
            ) from None
        yield


def _read_snapshot_file(path: Path, source_file: str, check) -> tuple[list[tuple], int, list]:
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    rows, quarantine = [], []
    for number, line in enumerate(lines, start=1):
        try:
            rows.append(check(parse_line(line)))
        except Bad as bad:
            quarantine.append((number, bad.args[0], _raw_text(line)))
    return rows, len(lines), quarantine


def _ingest_snapshot(
    raw: Path, name: str, check, schema, key: str, dest: Path, quarantine, sources
):
    import pyarrow as pa

    counts = Counts()
    path = raw / name
    if not path.exists():
        return counts
    rows, counts.read, bad = _read_snapshot_file(path, name, check)
    stream = name.removesuffix(".jsonl")
    sources.add((stream, name))
    quarantine.extend((stream, name, line, reason, text) for line, reason, text in bad)
    counts.quarantined = len(bad)
    cols = list(zip(*rows)) if rows else [[] for _ in schema.names]
    table = pa.Table.from_arrays(
        [pa.array(c, type=schema.field(i).type) for i, c in enumerate(cols)], schema=schema
    )
    table = _keep_last(table, key)
    in_file_duplicates = len(rows) - table.num_rows
    if table.num_rows:
        loaded, unchanged = _write_snapshot(dest, table, key)
    else:  # nothing valid: keep the last good snapshot rather than emptying it
        loaded, unchanged = 0, 0
        log.warning("ingest: %s has no valid rows; keeping the lake's previous snapshot", name)
    counts.loaded = loaded
    counts.duplicates = in_file_duplicates + unchanged
    log.info(
        "ingest: %s: read %d, loaded %d, quarantined %d, duplicates %d",
        name,
        counts.read,
        counts.loaded,
        counts.quarantined,
        counts.duplicates,
    )
    return counts


def _write_quarantine(path: Path, rows: list[tuple], sources: set[tuple[str, str]]) -> int:
    """Replace the quarantine rows of every source read in this run. Returns total rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    schema = quarantine_schema()
    cols = list(zip(*rows)) if rows else [[] for _ in schema.names]
    new = pa.Table.from_arrays(
        [pa.array(c, type=schema.field(i).type) for i, c in enumerate(cols)], schema=schema
    )
    old = _read_parquet(path, schema) if path.exists() else None
    if old is not None and old.num_rows:
        key = pc.binary_join_element_wise(old["stream"], old["source_file"], "\x00")
        read_now = pa.array(sorted(f"{s}\x00{f}" for s, f in sources), type=pa.string())
        kept = old.filter(pc.invert(pc.is_in(key, value_set=read_now)))
        new = pa.concat_tables([kept, new])
    table = new.sort_by(
        [("stream", "ascending"), ("source_file", "ascending"), ("line_number", "ascending")]
    )
    if old is not None and old.equals(table):
        return table.num_rows
    if old is None and table.num_rows == 0:
        return 0
    _write_parquet(table, path)
    return table.num_rows


def ingest(raw_dir: str | os.PathLike, day: date | str | None = None, *, fast: bool = True) -> dict:
    """Load ``raw_dir`` (all of events/, or only events/dt=<day>/, plus users and labels).

    Returns ``{"read", "loaded", "quarantined", "duplicates"}`` summed over the streams, plus
    ``streams`` (the same per stream), ``days`` (partitions written), ``files``,
    ``skipped_files``, ``reasons`` (quarantine reason -> count) and ``seconds``.
    ``fast=False`` validates every line with the per-line path (the benchmark's baseline).
    """
    started = time.perf_counter()
    raw = Path(raw_dir).expanduser().resolve()
    day = _parse_day(day)
    _check_raw_dir(raw)
    paths = config.paths()
    quarantine: list[tuple] = []  # (stream, source_file, line_number, reason, raw)
    sources: set[tuple[str, str]] = set()
    events = Counts()
    days_written: set[date] = set()

    with _lake_lock(paths.ingest_state):
        files, skipped = discover_event_files(raw, day)
        for name in skipped:
            log.warning("ingest: skipping %s: not named events/dt=YYYY-MM-DD/hour=HH.jsonl", name)
        pending: dict[date, list] = {}
        con = _duckdb(paths)

        def flush(before: date | None) -> None:
            for d in sorted(pending):
                if before is None or d < before:
                    loaded, dups = merge_day(paths.lake_events, d, pending.pop(d), con)
                    events.loaded += loaded
                    events.duplicates += dups
                    if loaded:
                        days_written.add(d)

        by_dt: dict[date, list[tuple[int, Path]]] = {}
        for dt, hour, path in files:
            by_dt.setdefault(dt, []).append((hour, path))
        for n_dt, (dt, hours) in enumerate(sorted(by_dt.items()), start=1):
            t0 = time.perf_counter()
            day_read = day_bad = day_slow = 0
            for batch in _batches(hours, BATCH_BYTES):
                items = [
                    (path, path.relative_to(raw).as_posix(), _hour_start_us(dt, hour))
                    for hour, path in batch
                ]
                try:
                    result = read_event_batch(items, fast=fast)
                except PermissionError as exc:
                    raise UserError(
                        f"cannot read {exc.filename}: {exc.strerror}; fix its permissions."
                    ) from None
                sources.update(("events", name) for _, name, _ in items)
                day_read += sum(result.read)
                day_bad += len(result.quarantine)
                day_slow += result.slow_lines
                quarantine.extend(("events", *q) for q in result.quarantine)
                _split_by_day(result.table, pending)
            events.read += day_read
            events.quarantined += day_bad
            # Late deliveries land up to about a day later: after dt=D, days before D-1 are
            # complete. D-1 waits for dt=D+1's stragglers too unless memory says otherwise
            # (then its stragglers are merged into the written partition: one more rewrite).
            flush(before=dt - timedelta(days=1))
            if sum(t.num_rows for tables in pending.values() for t in tables) > PENDING_ROWS_CAP:
                flush(before=dt)
            elapsed = time.perf_counter() - t0
            log.info(
                "ingest: dt=%s (%d/%d): %d files, %d lines, %d quarantined, %d checked line by line"
                ", %.0f lines/s",
                dt,
                n_dt,
                len(by_dt),
                len(hours),
                day_read,
                day_bad,
                day_slow,
                day_read / elapsed if elapsed else 0.0,
            )
        flush(before=None)
        con.close()

        users = _ingest_snapshot(
            raw,
            "users.jsonl",
            check_user,
            user_schema(),
            "user_id",
            paths.lake_users / "users.parquet",
            quarantine,
            sources,
        )
        labels = _ingest_snapshot(
            raw,
            "labels.jsonl",
            check_label,
            label_schema(),
            "post_id",
            paths.lake_labels / "labels.parquet",
            quarantine,
            sources,
        )
        quarantine_total = _write_quarantine(
            paths.quarantine / "quarantine.parquet", quarantine, sources
        )

        streams = {"events": events, "users": users, "labels": labels}
        for name, c in streams.items():
            assert c.read == c.loaded + c.quarantined + c.duplicates, (name, c)
        total = Counts(*(sum(getattr(c, f) for c in streams.values()) for f in Counts().as_dict()))
        result = total.as_dict() | {
            "streams": {name: c.as_dict() for name, c in streams.items()},
            "days": [d.isoformat() for d in sorted(days_written)],
            "files": len(files),
            "skipped_files": skipped,
            "reasons": dict(Counter(q[3] for q in quarantine).most_common()),
            "quarantine_rows": quarantine_total,
            "seconds": round(time.perf_counter() - started, 3),
        }
        _append_log(paths.ingest_state / "ingest_log.jsonl", raw, day, result)
    log.info(
        "ingest: read %d, loaded %d, quarantined %d, duplicates %d (%d files, %d partitions written) "
        "in %.1f s",
        total.read,
        total.loaded,
        total.quarantined,
        total.duplicates,
        len(files),
        len(days_written),
        result["seconds"],
    )
    return result


def _batches(hours: list[tuple[int, Path]], budget: int):
    """Consecutive hour files, grouped until their size reaches ``budget`` bytes."""
    batch, size = [], 0
    for hour, path in hours:
        batch.append((hour, path))
        size += path.stat().st_size
        if size >= budget:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _duckdb(paths):
    import duckdb

    paths.duckdb_temp.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(
        config={
            "threads": 1,
            "memory_limit": config.duckdb_memory_limit(),
            "temp_directory": str(paths.duckdb_temp),
        }
    )


def _split_by_day(table, pending: dict) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    if table.num_rows == 0:
        return
    days = pc.cast(table["event_ts"], pa.date32())
    unique = pc.unique(days).to_pylist()
    if len(unique) == 1:
        pending.setdefault(unique[0], []).append(table)
        return
    for d in unique:
        pending.setdefault(d, []).append(table.filter(pc.equal(days, pa.scalar(d, pa.date32()))))


def _append_log(path: Path, raw: Path, day: date | None, result: dict) -> None:
    entry = {
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "raw_dir": str(raw),
        "day": day.isoformat() if day else None,
    } | {k: v for k, v in result.items() if k != "skipped_files"}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")


# ---------------------------------------------------------------------------------------------
# CLI.


def _day_arg(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date: use YYYY-MM-DD") from None


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--raw",
        type=Path,
        default=None,
        help="raw log directory written by `vigil simulate` (default: $VIGIL_HOME/raw)",
    )
    parser.add_argument(
        "--day",
        type=_day_arg,
        default=None,
        help="only load events/dt=YYYY-MM-DD/ (plus users and labels); default: every day",
    )
    parser.add_argument("--json", action="store_true", help="print the counts as one JSON object")


def run(args: argparse.Namespace) -> int:
    raw = args.raw if args.raw is not None else config.paths().raw
    result = ingest(raw, day=args.day)
    if args.json:
        print(json.dumps(result))
        return 0
    lake = config.paths().lake
    print(f"Ingested {raw} into {lake} in {result['seconds']:.1f} s ({result['files']} hour files)")
    print(f"{'stream':<8} {'read':>12} {'loaded':>12} {'quarantined':>12} {'duplicates':>12}")
    rows = list(result["streams"].items()) + [("total", {k: result[k] for k in Counts().as_dict()})]
    for name, c in rows:
        print(
            f"{name:<8} {c['read']:>12,} {c['loaded']:>12,} {c['quarantined']:>12,} "
            f"{c['duplicates']:>12,}"
        )
    if result["days"]:
        print(
            f"partitions written: {len(result['days'])} ({result['days'][0]} .. {result['days'][-1]})"
        )
    else:
        print("partitions written: none (nothing new)")
    if result["reasons"]:
        print("quarantine reasons:")
        for reason, count in result["reasons"].items():
            print(f"  {count:>10,}  {reason}")
    if result["skipped_files"]:
        print(f"skipped (badly named) files: {', '.join(result['skipped_files'])}")
    return 0
