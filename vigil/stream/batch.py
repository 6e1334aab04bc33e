"""Parse and validate a batch of raw event lines (msgspec typed decoding).

Each line is decoded by msgspec straight into a typed struct, one struct type per action (a
tagged union on ``action``), whose field types carry the contract's checks: positive int64 ids,
id and text lengths, the canonical timestamp form, 2-letter countries, and the fields each action
requires. msgspec checks all of that in C while decoding. A line that does not decode, or whose
hour is not a real one, or which is later than its file allows, goes through ingest's exact
validator (:func:`vigil.stream.events._exact`), which decides and names the reason. So the batch
path accepts exactly what ``vigil ingest`` accepts, with the same values
(``test_fast_and_batch_paths_agree_with_ingest_validator``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Annotated, Union

import msgspec

from vigil.contracts import (
    ACTIONS,
    MAX_EVENT_ID_CHARS,
    MAX_FINGERPRINT_CHARS,
    MAX_TEXT_CHARS,
    POST_ACTIONS,
    TARGET_ACTIONS,
    TEXT_ACTIONS,
)
from vigil.stream.events import DAY_MS, INT64_MAX, _exact, day_of

# Field types of the canonical form; msgspec checks them while decoding (in C).
PositiveId = Annotated[int, msgspec.Meta(gt=0, le=INT64_MAX)]
EventId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_EVENT_ID_CHARS)]
# The canonical timestamp's form and the country code are checked in Python (a cached prefix and
# one regex): msgspec's pattern constraints call Python's re for every value, which costs more.
CanonicalTs = Annotated[str, msgspec.Meta(min_length=24, max_length=24)]
Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT_CHARS)]  # msgspec yields no lone surrogate
Country = Annotated[str, msgspec.Meta(min_length=2, max_length=2)]
Fingerprint = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_FINGERPRINT_CHARS)]


class RawEvent(msgspec.Struct, tag_field="action", gc=False):
    """A raw event line in canonical form; one subclass per action (the tag), whose required
    fields are those the contract requires for it. Unknown keys are ignored, as ingest does.
    Not tracked by the garbage collector (fields are str, int or None: no cycles), so a batch
    of them does not trigger collections."""

    event_id: EventId
    event_ts: CanonicalTs
    user_id: PositiveId


def _event_type(action: str) -> type:
    fields = []
    for name, typ, required in (
        ("post_id", PositiveId, action in POST_ACTIONS),
        ("target_user_id", PositiveId, action in TARGET_ACTIONS),
        ("text", Text, action in TEXT_ACTIONS),
        ("country", Country, action == "login"),
        ("fingerprint", Fingerprint, False),
    ):
        fields.append((name, typ) if required else (name, typ | None, None))
    fields.sort(key=lambda f: len(f) == 3)  # required fields first
    return msgspec.defstruct(f"Raw_{action}", fields, bases=(RawEvent,), tag=action)


_TYPES = {action: _event_type(action) for action in ACTIONS}
ACTION_OF = {t: a for a, t in _TYPES.items()}
_DecodeErrors = (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError)
_decode = msgspec.json.Decoder(Union[tuple(_TYPES.values())]).decode  # noqa: UP007
_PREFIX = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-5][0-9]", re.ASCII).fullmatch
_SUFFIX = re.compile(r":[0-5][0-9]\.[0-9]{3}Z", re.ASCII).fullmatch
_COUNTRY = re.compile(r"[A-Z]{2}", re.ASCII).fullmatch
_countries: set[str] = set()
_minute_us: dict[str, int] = {}
_suffix_ms: dict[str, int] = {}


def _minute_start_us(prefix: str) -> int | None:
    """Microseconds of the minute ``YYYY-MM-DDTHH:MM`` names, or None if that is not the
    canonical form of a real minute (Feb 30, hour 24, other digits)."""
    us = _minute_us.get(prefix)
    if us is not None:
        return us
    if not _PREFIX(prefix):
        return None
    try:
        day = day_of(date.fromisoformat(prefix[:10]))
    except ValueError:
        return None
    hour = int(prefix[11:13])
    if hour > 23:
        return None
    us = (day * DAY_MS + hour * 3_600_000 + int(prefix[14:16]) * 60_000) * 1000
    if len(_minute_us) >= 500_000:
        _minute_us.clear()
    _minute_us[prefix] = us
    return us


def _second_ms(suffix: str) -> int | None:
    """Milliseconds into the minute that ``:SS.mmmZ`` names, or None if not canonical."""
    ms = _suffix_ms.get(suffix)
    if ms is None and _SUFFIX(suffix) is not None:  # at most 60,000 distinct suffixes
        ms = _suffix_ms[suffix] = int(suffix[1:3] + suffix[4:7])
    return ms


def _country_ok(code: str | None) -> bool:
    if code is None or code in _countries:
        return True
    if _COUNTRY(code) is None:
        return False
    _countries.add(code)
    return True


def parse_lines(lines: Sequence[bytes], limits: int | Sequence[int]) -> list[tuple | str]:
    """Validate raw lines: per line ``(event_id, ts_ms, user_id, action, target_user_id,
    country, post_id, text, fingerprint)`` or the quarantine reason, exactly as
    :func:`vigil.stream.events.parse_event`.

    ``limits``: the latest acceptable event_ts (µs) for all lines, or one per line.
    """
    out: list[tuple | str] = []
    append = out.append
    one_limit = isinstance(limits, int)
    limit_us = limits if one_limit else 0
    minute_get = _minute_us.get
    second_get = _suffix_ms.get
    countries = _countries
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
        base = minute_get(ts[:16]) or _minute_start_us(ts[:16])
        second = second_get(ts[16:])
        if second is None:
            second = _second_ms(ts[16:])
        country = ev.country
        if (
            base is None
            or second is None
            or not (country is None or country in countries or _country_ok(country))
        ):
            append(_exact(raw, limit_us))
            continue
        ts_us = base + second * 1000
        if ts_us > limit_us:
            append(_exact(raw, limit_us))
            continue
        append(
            (
                ev.event_id,
                ts_us // 1000,
                ev.user_id,
                ACTION_OF[type(ev)],
                ev.target_user_id,
                country,
                ev.post_id,
                ev.text,
                ev.fingerprint,
            )
        )
    return out
