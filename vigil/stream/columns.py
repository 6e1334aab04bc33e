"""Parse and validate a batch of raw event lines into columns (the stream's fast parser).

:func:`parse_columns` accepts and rejects exactly what :func:`vigil.stream.batch.parse_lines`
(one tuple per line, the reference) does, with the same values and reasons
(``tests/stream/test_stream_columns.py``), but it does the per-line work once per batch:

1. decode: msgspec decodes every line into its action's typed struct (the same decoder as
   ``parse_lines``: ids, lengths and required fields are checked in C); the lines that do not
   decode are set aside, and the others keep going without a Python step per line;
2. timestamps: the 24-character canonical strings are joined and checked and converted in one
   numpy pass over a (lines x 24) byte matrix: separators, digits, real dates (month lengths,
   leap years), hours, minutes and seconds, then the epoch time and the file's limit;
3. countries: only codes not seen before in the process are checked (a regex each);
4. columns: ids, times, users, action codes and targets as arrays; texts, post ids and
   countries as lists (only the rules engine and the triggers read them, as tuples).

Every line the fast steps reject goes, as in ``parse_lines``, to ingest's exact validator, which
names the reason; if that validator accepts a line the fast steps rejected (a valid but
non-canonical form), the batch is parsed by ``parse_lines`` instead, so order and values stay
those of the reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import filterfalse

import numpy as np

from vigil.contracts import ACTIONS
from vigil.stream.batch import _COUNTRY, _countries, _decode, _DecodeErrors, _exact, parse_lines
from vigil.stream.batch import _TYPES as _STRUCTS
from vigil.stream.events import DAY_MS

ACTION_CODE = {a: k for k, a in enumerate(ACTIONS)}
_CODE_OF = {t: ACTION_CODE[a] for a, t in _STRUCTS.items()}
_TEMPLATE = np.frombuffer(b"0000-00-00T00:00:00.000Z", dtype=np.uint8)
_DIGIT = _TEMPLATE == ord("0")
_SEP = ~_DIGIT
# days of each month (index 1-12) in a common year
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int32)


class Columns:
    """The valid events of a batch, in line order, as columns.

    ``ts`` (ms), ``uids``, ``acts`` (index into ``vigil.contracts.ACTIONS``) and ``tgt`` (the
    target user, 0 when none) are numpy arrays; ``eids``, ``targets``, ``countries``, ``posts``
    and ``texts`` are lists (None where the line has none), as in the reference tuples. Post
    ids and texts are read from the decoded structs only when asked for (the state needs
    neither; the hooks that get tuples do).
    """

    __slots__ = (
        "_evs",
        "_fps",
        "_posts",
        "_texts",
        "acts",
        "countries",
        "eids",
        "targets",
        "tgt",
        "ts",
        "uids",
    )

    def __init__(
        self, eids, ts, uids, acts, targets, countries, posts=None, texts=None, evs=None, fps=None
    ) -> None:
        self.eids: list[str] = eids
        self.ts: np.ndarray = ts
        self.uids: np.ndarray = uids
        self.acts: np.ndarray = acts
        self.targets: list = targets
        self.tgt: np.ndarray = np.array([t or 0 for t in targets], dtype=np.int64)
        self.countries: list = countries
        self._posts, self._texts, self._evs, self._fps = posts, texts, evs, fps

    @property
    def posts(self) -> list:
        if self._posts is None:
            self._posts = [e.post_id for e in self._evs]
        return self._posts

    @property
    def texts(self) -> list:
        if self._texts is None:
            self._texts = [e.text for e in self._evs]
        return self._texts

    @property
    def fps(self) -> list:
        if self._fps is None:
            self._fps = [e.fingerprint for e in self._evs]
        return self._fps

    def __len__(self) -> int:
        return len(self.eids)

    @classmethod
    def from_tuples(cls, events: Sequence[tuple]) -> Columns:
        """Columns of reference tuples ``(event_id, ts_ms, user_id, action, target_user_id,
        country, post_id, text[, fingerprint])``."""
        if not events:
            return cls([], _i64([]), _i64([]), np.zeros(0, np.int8), [], [], [], [], fps=[])
        eids, ts, uids, acts, targets, countries, posts, texts = map(
            list, zip(*(ev[:8] for ev in events))
        )
        fps = [ev[8] if len(ev) > 8 else None for ev in events]
        return cls(
            eids,
            _i64(ts),
            _i64(uids),
            np.array([ACTION_CODE[a] for a in acts], dtype=np.int8),
            targets,
            countries,
            posts,
            texts,
            fps=fps,
        )

    def tuples(self, idx: Sequence[int] | None = None) -> list[tuple]:
        """The events (all, or those at ``idx``) as reference tuples."""
        if idx is None:
            idx = range(len(self.eids))
        eids, ts, uids = self.eids, self.ts.tolist(), self.uids.tolist()
        acts, targets, countries = self.acts.tolist(), self.targets, self.countries
        posts, texts, fps = self.posts, self.texts, self.fps
        return [
            (
                eids[i],
                ts[i],
                uids[i],
                ACTIONS[acts[i]],
                targets[i],
                countries[i],
                posts[i],
                texts[i],
                fps[i],
            )
            for i in idx
        ]


def _i64(values) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def _bad_utf8(lines: Sequence[bytes]) -> set[int]:
    """The lines that are not valid UTF-8: only the non-ASCII lines are decoded (each alone, so
    no batch-wide text is built), and indices are looked up only when one fails."""
    if all(map(bytes.isascii, lines)):
        return set()
    wrong = set()
    for raw in filterfalse(bytes.isascii, lines):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            wrong.add(id(raw))
    if not wrong:
        return set()
    return {i for i, raw in enumerate(lines) if id(raw) in wrong}


def _decode_all(lines: Sequence[bytes]) -> tuple[list, list[int]]:
    """The decoded struct of every line that decodes, and the indices of those that do not."""
    bad = _bad_utf8(lines)  # msgspec skips unknown keys without checking their bytes
    if bad:
        lines = [b"" if i in bad else raw for i, raw in enumerate(lines)]  # b"" never decodes
    evs: list = []
    failed: list[int] = []
    it = map(_decode, lines)
    while True:  # extend() runs the decoder in C; an error stops it at the bad line only
        try:
            evs.extend(it)
            return evs, failed
        except _DecodeErrors:
            failed.append(len(evs) + len(failed))


def timestamps_us(ts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Epoch µs of canonical ``YYYY-MM-DDTHH:MM:SS.mmmZ`` strings (24 characters each) and
    whether each is one: the digits and separators in place, a real date (year >= 1), hour
    <= 23, minute and second <= 59."""
    m = len(ts)
    raw = "".join(ts).encode("ascii", "replace")  # a non-ASCII character fails the checks
    # one row per character position (contiguous), digits as uint8: a non-digit wraps past 9
    chars = np.frombuffer(raw, dtype=np.uint8).reshape(m, 24).T.copy()
    dig = chars - np.uint8(ord("0"))
    ok = (chars[_SEP] == _TEMPLATE[_SEP, None]).all(axis=0)
    ok &= (dig[_DIGIT] <= 9).all(axis=0)
    d = dig.astype(np.int32)
    year = d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3]
    month = d[5] * 10 + d[6]
    mday = d[8] * 10 + d[9]
    hour = d[11] * 10 + d[12]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    ok &= (year >= 1) & (month >= 1) & (month <= 12) & (mday >= 1) & (hour <= 23)
    ok &= (d[14] <= 5) & (d[17] <= 5)
    month = np.where(ok, month, 1)
    ok &= mday <= _MONTH_DAYS[month] + ((month == 2) & leap)
    # days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil)
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + mday - 1
    days = era * 146_097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719_468
    in_day = (
        hour * 3_600_000
        + (d[14] * 10 + d[15]) * 60_000
        + (d[17] * 10 + d[18]) * 1000
        + d[20] * 100
        + d[21] * 10
        + d[22]
    )  # < 2**31, as are the days: int32 is exact
    ms = days.astype(np.int64) * DAY_MS + in_day
    return ms * 1000, ok


def parse_columns(
    lines: Sequence[bytes], limits: int | Sequence[int] | np.ndarray
) -> tuple[Columns, list[str], np.ndarray | None]:
    """Validate raw lines as :func:`vigil.stream.batch.parse_lines` does, into columns.

    Returns the valid events, the quarantine reasons of the others (in line order) and the
    indices of the valid lines (None when every line is valid). ``limits``: the latest
    acceptable event_ts (µs) for all lines, or one per line.
    """
    n = len(lines)
    evs, failed = _decode_all(lines)
    pos = np.delete(np.arange(n), failed) if failed else None
    ts_us, ok = timestamps_us([e.event_ts for e in evs]) if evs else (_i64([]), np.ones(0, bool))
    countries = [e.country for e in evs]
    for k, c in enumerate(countries):
        if c is not None and c not in _countries:
            if _COUNTRY(c) is None:
                ok[k] = False
            else:
                _countries.add(c)
    if isinstance(limits, int):
        ok &= ts_us <= limits
    else:
        lim = np.asarray(limits, dtype=np.int64)
        ok &= ts_us <= (lim if pos is None else lim[pos])
    if not failed and ok.all():
        return _columns(evs, ts_us, countries), [], None
    keep = np.flatnonzero(ok)
    rejected = np.concatenate([_i64(failed), np.flatnonzero(~ok) if pos is None else pos[~ok]])
    reasons = []
    for i in np.sort(rejected).tolist():
        got = _exact(lines[i], limits if isinstance(limits, int) else int(limits[i]))
        if type(got) is not str:  # valid, not canonical: the reference decides the batch
            return _from_reference(lines, limits)
        reasons.append(got)
    kept = keep if pos is None else pos[keep]
    kept_list = keep.tolist()
    evs = [evs[k] for k in kept_list]
    return _columns(evs, ts_us[keep], [countries[k] for k in kept_list]), reasons, kept


def _columns(evs: list, ts_us: np.ndarray, countries: list) -> Columns:
    code_of = _CODE_OF
    return Columns(
        [e.event_id for e in evs],
        ts_us // 1000,
        np.array([e.user_id for e in evs], dtype=np.int64),
        np.array([code_of[type(e)] for e in evs], dtype=np.int8),
        [e.target_user_id for e in evs],
        countries,
        evs=evs,
    )


def _from_reference(lines, limits) -> tuple[Columns, list[str], np.ndarray]:
    parsed = parse_lines(lines, limits)
    kept = [i for i, ev in enumerate(parsed) if type(ev) is tuple]
    reasons = [ev for ev in parsed if type(ev) is str]
    return Columns.from_tuples([parsed[i] for i in kept]), reasons, _i64(kept)
