"""The bulk Arrow path: validate a batch of raw hour files at Arrow speed.

An hour file is parsed in bulk by ``pyarrow.json`` against the contract's types and checked with
vectorised Arrow kernels. Only rows those checks do not accept, and chunks the bulk parser rejects
(bisected down to small chunks), go through the exact per-line validator
(:func:`vigil.lake.validation.check_event`), which alone decides reasons. The bulk path accepts
only rows the per-line validator accepts with identical values (a test runs both paths on the
same input).
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil import config
from vigil.contracts import (
    ACTIONS,
    EVENT_FIELDS,
    MAX_EVENT_ID_CHARS,
    MAX_FINGERPRINT_CHARS,
    MAX_TEXT_CHARS,
    POST_ACTIONS,
    TARGET_ACTIONS,
    TEXT_ACTIONS,
    event_schema,
    raw_event_schema,
)
from vigil.lake.arrays import from_numpy, from_pylist, scalar, to_numpy
from vigil.lake.validation import (
    Bad,
    check_event,
    event_window_us,
    parse_line,
    raw_text,
)

# Below this many lines a chunk the bulk parser rejects goes line by line instead of being bisected.
BISECT_MIN_LINES = 32
# A batch is parsed in pieces of about this many bytes (cut at line ends), on this many threads.
PARSE_PIECE_BYTES = 512 << 10
PARSE_THREADS = min(4, os.cpu_count() or 1)
# From this many lines on, the per-line validator splits the whole batch into lines first.
SPLIT_MIN_LINES = 1000
# The canonical event_ts, YYYY-MM-DDTHH:MM:SS.mmmZ (24 ASCII bytes): the byte at each position.
_TS_SEPARATORS = ((4, b"-"), (7, b"-"), (10, b"T"), (13, b":"), (16, b":"), (19, b"."), (23, b"Z"))
_TS_DIGITS = (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22)
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
                explicit_schema=raw_event_schema(), unexpected_field_behavior="ignore"
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


def _canonical_ts(ts):
    """Rows whose text is in the canonical form (``_TS_SEPARATORS``, ``_TS_DIGITS``; null: no),
    as an Arrow bool array: the bytes checked in NumPy on the string buffers, about twice as
    fast as the equivalent regular expression."""
    import numpy as np
    import pyarrow as pa

    parts = []
    for arr in ts.chunks if isinstance(ts, pa.ChunkedArray) else [ts]:
        n = len(arr)
        if n == 0:
            continue
        offsets = np.frombuffer(arr.buffers()[1], np.int32, count=n + 1, offset=arr.offset * 4)
        ok = np.diff(offsets) == 24
        if arr.null_count:
            ok &= to_numpy(arr.is_valid())
        starts = offsets[:-1][ok]
        if len(starts):
            data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
            shape = np.ones(len(starts), dtype=bool)
            for k, char in _TS_SEPARATORS:
                shape &= data[starts + k] == ord(char)
            for k in _TS_DIGITS:
                shape &= (data[starts + k] - ord("0")) < 10  # uint8: below "0" wraps to >= 10
            ok[np.flatnonzero(ok)] = shape
        parts.append(ok)
    return from_numpy(np.concatenate(parts) if parts else np.zeros(0, bool), pa.bool_())


def _cast_instants(texts, type):
    """``(texts cast to type, None)``, or ``(None, bool array marking the texts that do not
    cast)`` when some do not."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pc.cast(texts, type), None
    except pa.ArrowInvalid:
        pass
    bad: list[int] = []

    def visit(lo: int, hi: int) -> None:
        try:
            pc.cast(texts.slice(lo, hi - lo), type)
        except pa.ArrowInvalid:
            if hi - lo == 1:
                bad.append(lo)
            else:
                mid = (lo + hi) // 2
                visit(lo, mid)
                visit(mid, hi)

    n = len(texts)
    if n > 1:  # the whole range failed above: look at its halves
        visit(0, n // 2)
        visit(n // 2, n)
    mask = np.zeros(n, dtype=bool)
    mask[bad if bad else slice(None)] = True  # none found alone: every row to the validator
    return None, from_numpy(mask, pa.bool_())


def _vector_check(table, limit_us, floor_us):
    """Arrow-vectorised contract check. ``limit_us``, ``floor_us``: latest and earliest event_ts
    per row (arrays). Returns (ok mask, event_ts as int64 us)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    # Constants as Arrow scalars: a Python constant would go through pa.scalar (imports pandas).
    true, false, zero = scalar(True), scalar(False), scalar(0)
    n = table.num_rows
    eid = table["event_id"]
    eid_len = pc.utf8_length(eid)
    ok = pc.fill_null(
        pc.and_(
            pc.greater_equal(eid_len, scalar(1)), pc.less_equal(eid_len, scalar(MAX_EVENT_ID_CHARS))
        ),
        false,
    )

    ts = table["event_ts"]
    canonical = _canonical_ts(ts)
    # Python has no year 0
    canonical = pc.and_(canonical, pc.fill_null(pc.invert(pc.starts_with(ts, "0000")), false))
    placeholder = scalar("1970-01-01T00:00:00.000Z")
    utc_ms = pa.timestamp("ms", tz="UTC")
    safe_ts = pc.if_else(canonical, ts, placeholder)
    # Arrow's ISO-8601 cast is strict (no Feb 30, hour 24, second 60) and fast, but fails for the
    # whole array: rows that are not real instants are found by bisection and left to the
    # per-line validator.
    instants, not_instants = _cast_instants(safe_ts, utc_ms)
    if not_instants is not None:
        canonical = pc.and_(canonical, pc.invert(not_instants))
        instants = pc.cast(pc.if_else(canonical, ts, placeholder), utc_ms)
    ts_us = pc.cast(instants, pa.timestamp("us", tz="UTC")).cast(pa.int64())
    ok = pc.and_(ok, canonical)
    ok = pc.and_(ok, pc.less_equal(ts_us, limit_us))
    ok = pc.and_(ok, pc.greater_equal(ts_us, floor_us))

    ok = pc.and_(ok, pc.fill_null(pc.greater(table["user_id"], zero), false))
    action = table["action"]
    ok = pc.and_(
        ok, pc.fill_null(pc.is_in(action, value_set=_strings(sorted(set(ACTIONS)))), false)
    )

    def optional_positive(col):
        return pc.fill_null(pc.greater(col, zero), true)

    def required_for(col, actions):
        needs = pc.fill_null(pc.is_in(action, value_set=_strings(sorted(actions))), false)
        return pc.or_(pc.invert(needs), pc.is_valid(col))

    post_id, target = table["post_id"], table["target_user_id"]
    ok = pc.and_(ok, pc.and_(optional_positive(post_id), required_for(post_id, POST_ACTIONS)))
    ok = pc.and_(ok, pc.and_(optional_positive(target), required_for(target, TARGET_ACTIONS)))
    text = table["text"]
    text_ok = pc.fill_null(pc.less_equal(pc.utf8_length(text), scalar(MAX_TEXT_CHARS)), true)
    ok = pc.and_(ok, pc.and_(text_ok, required_for(text, TEXT_ACTIONS)))
    country = table["country"]
    # ^[A-Z]{2}$: two bytes, both ASCII letters, upper case (cheaper than a regex)
    two_upper = pc.and_(
        pc.equal(pc.binary_length(country), scalar(2)),
        pc.and_(pc.ascii_is_alpha(country), pc.ascii_is_upper(country)),
    )
    country_ok = pc.fill_null(two_upper, true)
    ok = pc.and_(ok, pc.and_(country_ok, required_for(country, {"login"})))
    fp_len = pc.utf8_length(table["fingerprint"])
    fp_ok = pc.and_(
        pc.greater_equal(fp_len, scalar(1)), pc.less_equal(fp_len, scalar(MAX_FINGERPRINT_CHARS))
    )
    ok = pc.and_(ok, pc.fill_null(fp_ok, true))
    ok = pc.fill_null(ok, false)  # a null would be neither accepted nor re-checked
    assert len(ok) == n
    return ok, ts_us


def _strings(values: list[str]):
    import pyarrow as pa

    return from_pylist(values, pa.string())


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
        table["fingerprint"],
        source_files,
        source_lines,
        global_index,
    ]
    full = pa.Table.from_arrays(arrays, schema=event_schema().append(pa.field("_g", pa.int64())))
    return full if pc.all(ok).as_py() else full.filter(ok)


class _BatchReader:
    """One batch of hour files joined into one buffer of lines, validated in named steps:
    :meth:`_route` sends runs of lines to :meth:`_bulk` (parse; :meth:`_accept` checks every
    parsed piece at once) and single
    lines to :meth:`_slow` (the per-line validator); :meth:`_assemble` puts the rows back in file
    and line order. Lines are numbered globally across the batch; ``_file_of`` maps them back."""

    def __init__(
        self, files: list[tuple[Path, str, int]], max_age_days: float, digests: dict | None
    ) -> None:
        import numpy as np

        self.files = files
        self.data, counts = _join_files((path for path, _, _ in files), digests)
        self.n_lines = sum(counts)
        # first global line of each file, and the file of each global line
        self._starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._file_of = np.repeat(np.arange(len(files), dtype=np.int64), counts)
        windows = [event_window_us(start, max_age_days) for _, _, start in files]
        self._floors = np.array([lo for lo, _ in windows], dtype=np.int64)
        self._limits = np.array([hi for _, hi in windows], dtype=np.int64)
        self._names = _strings([name for _, name, _ in files])
        self._view = memoryview(self.data)
        self._lines: list[bytes] | None = None  # split only when some line needs a closer look
        self._newlines = None  # positions of the newlines, found only when needed
        self.result = _BatchResult(table=None, read=counts)
        self._tables: list = []
        self._parsed: list[tuple] = []  # (table, lo, hi) of each bulk-parsed piece, in order
        self._slow_rows: list[tuple] = []
        self._slow_where: list[int] = []  # global line index of each slow row

    def lines(self) -> list[bytes]:
        if self._lines is None:
            self._lines = self.data.split(b"\n")
            self._lines.pop()  # data ends with a newline
        return self._lines

    def _line(self, g: int) -> bytes:
        """Line ``g`` without its newline, sliced out (splitting every line costs more when
        only a few need a closer look)."""
        if self._lines is not None:
            return self._lines[g]
        nl = self.newlines()
        return self.data[(int(nl[g - 1]) + 1 if g else 0) : int(nl[g])]

    def newlines(self):
        import numpy as np

        if self._newlines is None:
            self._newlines = np.flatnonzero(np.frombuffer(self.data, dtype=np.uint8) == 10)
        return self._newlines

    def _chunk_of(self, lo: int, hi: int):
        nl = self.newlines()
        return self._view[(int(nl[lo - 1]) + 1 if lo else 0) : int(nl[hi - 1]) + 1]

    def _line_number(self, g: int, f: int) -> int:
        return g - int(self._starts[f]) + 1

    def _slow(self, lo: int, hi: int) -> None:
        """Lines [lo, hi) through the exact per-line validator."""
        self.result.slow_lines += hi - lo
        line_of = self._line if hi - lo < SPLIT_MIN_LINES else self.lines().__getitem__
        for g in range(lo, hi):
            f = int(self._file_of[g])
            line = line_of(g)
            try:
                row = check_event(parse_line(line), int(self._limits[f]), int(self._floors[f]))
            except Bad as bad:
                name = self.files[f][1]
                self.result.quarantine.append(
                    (name, self._line_number(g, f), bad.args[0], raw_text(line))
                )
                continue
            self._slow_rows.append(row)
            self._slow_where.append(g)

    def _accept(self) -> None:
        """Keep the rows of every bulk-parsed piece the vector check accepts (one check for the
        whole batch); the per-line validator gives the others their reason (or accepts them,
        e.g. a timestamp with an offset)."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        if not self._parsed:
            return
        table = pa.concat_tables([t for t, _, _ in self._parsed])
        where = np.concatenate([np.arange(lo, hi, dtype=np.int64) for _, lo, hi in self._parsed])
        fidx = self._file_of[where]
        ok, ts_us = _vector_check(
            table, from_numpy(self._limits[fidx]), from_numpy(self._floors[fidx])
        )
        source_lines = from_numpy(where - self._starts[fidx] + 1)
        self._tables.append(
            _fast_table(
                table,
                ts_us,
                ok,
                self._names.take(from_numpy(fidx)),
                source_lines,
                from_numpy(where),
            )
        )
        for i in pc.indices_nonzero(pc.invert(ok)).to_pylist():
            g = int(where[i])
            self._slow(g, g + 1)

    def _bulk(self, lo: int, hi: int, first: tuple | None = None) -> None:
        """Lines [lo, hi): bulk where possible; a bad line is checked alone, the rest resumes.
        ``first``: the parse of [lo, hi) when already done. Parsed pieces wait in ``_parsed``
        for :meth:`_accept`."""
        while lo < hi:
            if first is not None:
                (table, hint), first = first, None
            elif hi - lo < BISECT_MIN_LINES:
                self._slow(lo, hi)
                return
            else:
                table, hint = _bulk_parse(self._chunk_of(lo, hi), hi - lo)
            if table is not None:
                self._parsed.append((table, lo, hi))
                return
            if hint is not None and 0 <= hint < hi - lo:
                self._bulk(lo, lo + hint)  # the rows before the reported one parsed
                self._slow(lo + hint, lo + hint + 1)
                lo += hint + 1
            elif hi - lo == 1:
                self._slow(lo, hi)
                return
            else:  # no usable hint: bisect
                mid = (lo + hi) // 2
                self._bulk(lo, mid)
                lo = mid

    def _pieces(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """[lo, hi) cut at line ends into runs of about PARSE_PIECE_BYTES: a line the parser
        rejects then costs a re-parse of at most one piece, not of everything before it."""
        import numpy as np

        if hi - lo <= 1:
            return [(lo, hi)] if hi > lo else []
        nl = self.newlines()
        start = int(nl[lo - 1]) + 1 if lo else 0
        end = int(nl[hi - 1]) - PARSE_PIECE_BYTES // 2  # no short last piece
        targets = np.arange(start + PARSE_PIECE_BYTES, end, PARSE_PIECE_BYTES)
        # cut after the line holding each target byte
        cuts = (lo + np.searchsorted(nl[lo:hi], targets) + 1).tolist()
        bounds = [lo, *sorted(set(cuts) - {lo, hi}), hi]
        return list(itertools.pairwise(bounds))

    def _route(self) -> None:
        """Runs of lines between those the bulk reader must not see go in bulk, in pieces parsed
        on up to PARSE_THREADS threads (the reader releases the GIL); a piece the reader rejects
        is then split where it says, in order."""
        bad = _precheck(self.data, self.n_lines, self.newlines)
        pieces, lo = [], 0
        for g in [*bad, self.n_lines]:
            for a, b in self._pieces(lo, g):
                # short runs between rejected lines go line by line (a clean batch: never)
                if bad and b - a < BISECT_MIN_LINES:
                    self._slow(a, b)
                else:
                    pieces.append((a, b))
            if g < self.n_lines:
                self._slow(g, g + 1)
            lo = g + 1
        for (a, b), parsed in zip(pieces, self._parse_all(pieces), strict=True):
            self._bulk(a, b, first=parsed)
        self._accept()

    def _parse_all(self, pieces: list[tuple[int, int]]) -> list[tuple]:
        def parse(piece: tuple[int, int]) -> tuple:
            return _bulk_parse(self._chunk_of(*piece), piece[1] - piece[0])

        threads = min(PARSE_THREADS, len(pieces))
        if threads <= 1:
            return [parse(piece) for piece in pieces]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=threads) as pool:
            return list(pool.map(parse, pieces))

    def _assemble(self):
        """The accepted rows as one table in file and line order."""
        import numpy as np
        import pyarrow as pa

        tables = self._tables
        if self._slow_rows or not tables:
            schema = event_schema()
            rows = self._slow_rows
            cols = list(zip(*rows)) if rows else [[] for _ in EVENT_FIELDS]
            where = np.asarray(self._slow_where, dtype=np.int64)
            fidx = self._file_of[where]
            arrays = [from_pylist(col, schema.field(i).type) for i, col in enumerate(cols)]
            arrays += [
                self._names.take(from_numpy(fidx)),
                from_numpy(where - self._starts[fidx] + 1),
            ]
            arrays.append(from_numpy(where))
            tables.append(
                pa.Table.from_arrays(arrays, schema=schema.append(pa.field("_g", pa.int64())))
            )
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        if len(tables) > 1:  # back to file and line order, so partition-sort ties keep that order
            table = table.combine_chunks().sort_by("_g")
        return table.drop_columns(["_g"])

    def read(self, fast: bool) -> _BatchResult:
        if fast:
            self._route()
        else:
            self._slow(0, self.n_lines)
        self.result.table = self._assemble()
        self.result.quarantine.sort()
        assert self.result.table.num_rows + len(self.result.quarantine) == self.n_lines
        return self.result


def _join_files(paths, digests: dict | None = None) -> tuple[bytes, list[int]]:
    """The files' bytes joined, each ending with a newline, and the number of lines of each.
    A file's final newline ends its last line; it does not start a new one. ``digests``: path ->
    SHA-256 hex digest, filled in for the files it lacks, of the bytes read."""
    import hashlib

    datas, counts = [], []
    for path in paths:
        data = path.read_bytes()
        if digests is not None and path not in digests:
            digests[path] = hashlib.sha256(data).hexdigest()
        n = data.count(b"\n")
        if data and not data.endswith(b"\n"):
            n += 1
            data += b"\n"
        datas.append(data)
        counts.append(n)
    return b"".join(datas), counts


def read_event_batch(
    files: list[tuple[Path, str, int]],
    fast: bool = True,
    max_age_days: float | None = None,
    digests: dict | None = None,
) -> _BatchResult:
    """Validate hour files ``(path, source_file, hour_start_us)`` as one batch: one bulk parse
    and one vector check for all of them, so small files do not pay per-call overheads.
    ``max_age_days``: how far before its file's hour an event may be stamped (default:
    ``VIGIL_MAX_EVENT_AGE_DAYS``). ``fast=False`` checks every line with the per-line validator.
    ``digests``: path -> SHA-256 of the bytes read, added for the files it does not hold yet."""
    if max_age_days is None:
        max_age_days = config.max_event_age_days()
    return _BatchReader(files, max_age_days, digests).read(fast)


def read_event_file(path: Path, source_file: str, hour_start_us: int, fast: bool = True):
    """Validate one hour file (see :func:`read_event_batch`)."""
    return read_event_batch([(path, source_file, hour_start_us)], fast=fast)
