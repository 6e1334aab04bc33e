"""Parse and validate a batch of raw event lines at once (msgspec typed decoding).

Each line is decoded by msgspec straight into a typed struct (no intermediate dict); a line that
does not decode to the contract's types, or whose values are not plainly right, goes through
ingest's exact validator (:func:`vigil.stream.events._exact`), which decides and names the
reason. So the batch path accepts exactly what ``vigil ingest`` accepts, with the same values
(``test_batch_parser_agrees_with_ingest_validator``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

import msgspec

from vigil.contracts import ACTIONS, MAX_EVENT_ID_CHARS, MAX_TEXT_CHARS
from vigil.contracts import POST_ACTIONS as _NEEDS_POST
from vigil.contracts import TARGET_ACTIONS as _NEEDS_TARGET
from vigil.contracts import TEXT_ACTIONS as _NEEDS_TEXT
from vigil.stream.events import DAY_MS, INT64_MAX, _exact, day_of


class RawEvent(msgspec.Struct):
    """A raw event line as the contract types it; unknown keys are ignored, as ingest does."""

    event_id: str
    event_ts: str
    user_id: int
    action: str
    post_id: int | None = None
    target_user_id: int | None = None
    text: str | None = None
    country: str | None = None


_decode = msgspec.json.Decoder(RawEvent).decode
_DecodeErrors = (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError)
_ACTIONS = frozenset(ACTIONS)
_NEEDS_POST = frozenset(_NEEDS_POST)
_NEEDS_TARGET = frozenset(_NEEDS_TARGET)
_NEEDS_TEXT = frozenset(_NEEDS_TEXT)
# "YYYY-MM-DDTHH:" (validated once per hour, cached) + "MM:SS.mmmZ"
_HOUR_PREFIX = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:", re.ASCII)
_MINUTE_SUFFIX = re.compile(r"[0-5][0-9]:[0-5][0-9]\.[0-9]{3}Z", re.ASCII)
_COUNTRY = re.compile(r"[A-Z]{2}", re.ASCII)
_hour_us: dict[str, int] = {}


def _hour_start_us(prefix: str) -> int | None:
    """Microseconds of the hour ``YYYY-MM-DDTHH:`` names, or None if it is not a real hour."""
    us = _hour_us.get(prefix)
    if us is not None:
        return us
    if not _HOUR_PREFIX.fullmatch(prefix):
        return None
    try:
        day = day_of(date.fromisoformat(prefix[:10]))
    except ValueError:
        return None
    hour = int(prefix[11:13])
    if hour > 23:
        return None
    us = (day * DAY_MS + hour * 3_600_000) * 1000
    if len(_hour_us) < 200_000:
        _hour_us[prefix] = us
    return us


def _plain(ev: RawEvent) -> bool:
    """Every field plainly right (the canonical form); anything else is for the exact path."""
    action = ev.action
    eid = ev.event_id
    if not (
        0 < ev.user_id <= INT64_MAX
        and action in _ACTIONS
        and 1 <= len(eid) <= MAX_EVENT_ID_CHARS
        and eid.isascii()
    ):
        return False
    post, target, text, country = ev.post_id, ev.target_user_id, ev.text, ev.country
    if post is None:
        if action in _NEEDS_POST:
            return False
    elif not 0 < post <= INT64_MAX:
        return False
    if target is None:
        if action in _NEEDS_TARGET:
            return False
    elif not 0 < target <= INT64_MAX:
        return False
    if text is None:
        if action in _NEEDS_TEXT:
            return False
    elif len(text) > MAX_TEXT_CHARS:  # msgspec never yields lone surrogates: text is UTF-8
        return False
    if country is None:
        return action != "login"
    return _COUNTRY.fullmatch(country) is not None


def parse_lines(lines: Sequence[bytes], limits: int | Sequence[int]) -> list[tuple | str]:
    """Validate raw lines: per line ``(event_id, ts_ms, user_id, action, target_user_id,
    country)`` or the quarantine reason, exactly as :func:`vigil.stream.events.parse_event`.

    ``limits``: the latest acceptable event_ts (µs) for all lines, or one per line.
    """
    out: list[tuple | str] = []
    append = out.append
    one_limit = isinstance(limits, int)
    limit_us = limits if one_limit else 0
    for i, raw in enumerate(lines):
        if not one_limit:
            limit_us = limits[i]
        try:
            if not raw.isascii():
                raw.decode("utf-8")  # msgspec skips unknown keys without checking their bytes
            ev = _decode(raw)
        except _DecodeErrors:
            append(_exact(raw, limit_us))
            continue
        ts = ev.event_ts
        if len(ts) != 24 or not _plain(ev):
            append(_exact(raw, limit_us))
            continue
        base = _hour_start_us(ts[:14])
        if base is None or not _MINUTE_SUFFIX.fullmatch(ts, 14):
            append(_exact(raw, limit_us))
            continue
        ts_us = base + (int(ts[14:16]) * 60 + int(ts[17:19])) * 1_000_000 + int(ts[20:23]) * 1000
        if ts_us > limit_us:
            append(_exact(raw, limit_us))
            continue
        append((ev.event_id, ts_us // 1000, ev.user_id, ev.action, ev.target_user_id, ev.country))
    return out
