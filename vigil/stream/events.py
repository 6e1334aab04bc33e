"""Raw event lines as ``vigil stream`` reads them: event time helpers and the validator.

An event time is an int of milliseconds since 1970-01-01 UTC; a day is an int (days since
1970-01-01), so day = ts_ms // DAY_MS. ``parse_event`` accepts exactly what ``vigil ingest``
accepts (``vigil.lake.validation`` decides), with a fast path for lines in canonical form.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta

from vigil.contracts import ACTIONS, MAX_FINGERPRINT_CHARS
from vigil.contracts import POST_ACTIONS as _NEEDS_POST
from vigil.contracts import TARGET_ACTIONS as _NEEDS_TARGET
from vigil.contracts import TEXT_ACTIONS as _NEEDS_TEXT

DAY_MS = 86_400_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_HOUR_FILE_RE = re.compile(
    r"(?:^|/)dt=([0-9]{4}-[0-9]{2}-[0-9]{2})/hour=([0-9]{2})\.jsonl$", re.ASCII
)
NO_LIMIT_US = 2**63 - 1


def day_of(d: date) -> int:
    return d.toordinal() - _EPOCH_ORDINAL


def date_of(day: int) -> date:
    return date.fromordinal(day + _EPOCH_ORDINAL)


def ms_to_datetime(ts_ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ts_ms)


def file_limit_us(relative_path: str) -> int:
    """Latest acceptable event_ts (µs) for a raw hour file, as ingest computes it."""
    from vigil.lake.validation import FUTURE_SLACK_US

    m = _HOUR_FILE_RE.search(relative_path.replace("\\", "/"))
    if m is None:
        return NO_LIMIT_US
    try:
        d = date.fromisoformat(m.group(1))
    except ValueError:
        return NO_LIMIT_US
    return (day_of(d) * DAY_MS + int(m.group(2)) * 3_600_000) * 1000 + FUTURE_SLACK_US


_validator = None
INT64_MAX = 2**63 - 1
_CANONICAL_TS = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z", re.ASCII
)
_COUNTRY = re.compile(r"[A-Z]{2}", re.ASCII)
_ACTIONS = frozenset(ACTIONS)
_day_us: dict[str, int] = {}


def _exact(raw: bytes, limit_us: int) -> tuple | str:
    global _validator
    if _validator is None:
        from vigil.lake import validation

        _validator = (validation.Bad, validation.check_event, validation.parse_line)
    Bad, check_event, parse_line = _validator
    try:
        event_id, ts_us, user_id, action, post_id, target, text, country, fp = check_event(
            parse_line(raw), limit_us
        )
    except Bad as exc:
        return exc.args[0]
    return event_id, ts_us // 1000, user_id, action, target, country, post_id, text, fp


def _pos_id(v: object) -> bool:
    return type(v) is int and 0 < v <= INT64_MAX


def parse_event(raw: bytes, limit_us: int) -> tuple | str:
    """Validate one raw line exactly as ``vigil ingest`` does.

    Returns ``(event_id, ts_ms, user_id, action, target_user_id, country, post_id, text,
    fingerprint)`` or
    the quarantine reason (post_id and text are None when the event has none). ``vigil.lake.validation.check_event`` is the definition of a valid event: this function only
    adds a fast path for lines in the canonical form (every field plainly right); anything
    else, and every rejection, goes through ingest's validator, which decides and names the
    reason. ``test_fast_path_agrees_with_ingest_validator`` checks the two agree.
    """
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return _exact(raw, limit_us)
    if type(obj) is not dict:
        return _exact(raw, limit_us)
    g = obj.get
    event_id, ts, user_id, action = g("event_id"), g("event_ts"), g("user_id"), g("action")
    post_id, target, text, country = g("post_id"), g("target_user_id"), g("text"), g("country")
    fp = g("fingerprint")
    if not (
        type(event_id) is str
        and 1 <= len(event_id) <= 64
        and event_id.isascii()
        and type(ts) is str
        and len(ts) == 24
        and _CANONICAL_TS.fullmatch(ts)
        and _pos_id(user_id)
        and type(action) is str
        and action in _ACTIONS
        and (_pos_id(post_id) if post_id is not None else action not in _NEEDS_POST)
        and (_pos_id(target) if target is not None else action not in _NEEDS_TARGET)
        and (
            (type(text) is str and len(text) <= 5000 and (text.isascii() or _utf8_ok(text)))
            if text is not None
            else action not in _NEEDS_TEXT
        )
        and (
            (type(country) is str and _COUNTRY.fullmatch(country) is not None)
            if country is not None
            else action != "login"
        )
        and (
            fp is None
            or (
                type(fp) is str
                and 1 <= len(fp) <= MAX_FINGERPRINT_CHARS
                and (fp.isascii() or _utf8_ok(fp))
            )
        )
    ):
        return _exact(raw, limit_us)
    day_us = _day_us.get(ts[:10])
    if day_us is None:
        try:
            day_us = day_of(date.fromisoformat(ts[:10])) * DAY_MS * 1000
        except ValueError:
            return _exact(raw, limit_us)
        if len(_day_us) < 100_000:
            _day_us[ts[:10]] = day_us
    h, mi, sec = int(ts[11:13]), int(ts[14:16]), int(ts[17:19])
    if h > 23 or mi > 59 or sec > 59:
        return _exact(raw, limit_us)
    ts_us = day_us + ((h * 60 + mi) * 60 + sec) * 1_000_000 + int(ts[20:23]) * 1000
    if ts_us > limit_us:
        return _exact(raw, limit_us)
    return event_id, ts_us // 1000, user_id, action, target, country, post_id, text, fp


def _utf8_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
