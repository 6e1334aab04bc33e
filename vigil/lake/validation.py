"""The definition of a valid raw row: per-line checks of events, users and labels.

A bad row raises :class:`Bad` with its quarantine reason (one of :data:`REASONS`); a good one
becomes a lake row tuple. The bulk Arrow path (:mod:`vigil.lake.bulk`) accepts only rows these
checks accept with identical values; everything else it hands back here, and these checks alone
name the reason.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta

from vigil.contracts import (
    ACTIONS,
    APPEAL_QUEUE,
    DECISION_PATHS,
    DECISIONS,
    ENFORCEMENT_ACTIONS,
    ENFORCEMENT_REASONS,
    HARM_TYPES,
    MAX_EVENT_ID_CHARS,
    MAX_FINGERPRINT_CHARS,
    MAX_RAW_CHARS,
    MAX_TEXT_CHARS,
    MAX_TRIGGER_CHARS,
    POST_ACTIONS,
    QUEUES,
    TARGET_ACTIONS,
    TEXT_ACTIONS,
)

INT64_MAX = 2**63 - 1
US_PER_SECOND = 1_000_000
US_PER_HOUR = 3600 * US_PER_SECOND
US_PER_DAY = 24 * US_PER_HOUR
# An event may be stamped at most 1 day after the end of its file's hour.
FUTURE_SLACK_US = 25 * US_PER_HOUR
_ACTION_SET = frozenset(ACTIONS)
_HARM_TYPE_SET = frozenset(HARM_TYPES)

# Quarantine reasons. Field-level reasons are "<kind>: <field>".
R_UTF8 = "invalid UTF-8"
R_EMPTY = "empty line"
R_JSON = "not JSON"
R_OBJECT = "not a JSON object"
R_ACTION = "unknown action"
R_TEXT = "oversized text"
R_FUTURE = "far-future timestamp: event_ts"
# Older than VIGIL_MAX_EVENT_AGE_DAYS before the start of its file's hour.
R_PAST = "far-past timestamp: event_ts"
REASON_KINDS = (
    "missing field",  # key absent or null where the contract requires a value
    "wrong type",  # a string/bool/list field holding another JSON type
    "invalid id",  # id not an integer, a bool, <= 0 or beyond int64
    "invalid value",  # right type, outside the contract (length, code, enum, range)
    "unparseable timestamp",  # not ISO-8601 with an explicit offset, or not a real instant
)
REASONS = (R_UTF8, R_EMPTY, R_JSON, R_OBJECT, R_ACTION, R_TEXT, R_FUTURE, R_PAST) + tuple(
    f"{kind}: <field>" for kind in REASON_KINDS
)

_TS_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})",
    re.ASCII,
)
_COUNTRY_RE = re.compile(r"[A-Z]{2}", re.ASCII)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def event_window_us(hour_start_us: int, max_age_days: float) -> tuple[int, int]:
    """(earliest, latest) acceptable event_ts for a raw file whose hour starts at
    ``hour_start_us``: at most ``max_age_days`` before the hour, at most 1 day after its end."""
    return hour_start_us - int(max_age_days * US_PER_DAY), hour_start_us + FUTURE_SLACK_US


class Bad(Exception):
    """A row that breaks the contract; ``args[0]`` is the quarantine reason."""


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


def check_event(obj: dict, limit_us: int, floor_us: int | None = None) -> tuple:
    """One event (a parsed JSON object) -> a lake row tuple in EVENT_FIELDS order, or raise Bad.

    ``limit_us``: the latest acceptable event_ts (1 day after the end of the file's hour);
    ``floor_us``: the earliest (None: no bound), see :func:`event_window_us`.
    A field that is absent counts as null.
    """
    event_id = _str(obj, "event_id", required=True)
    if not 1 <= len(event_id) <= MAX_EVENT_ID_CHARS:
        raise Bad("invalid value: event_id")
    ts = _ts(obj, "event_ts")
    user_id = _id(obj, "user_id", required=True)
    action = _str(obj, "action", required=True)
    if action not in _ACTION_SET:
        raise Bad(R_ACTION)
    post_id = _id(obj, "post_id", required=action in POST_ACTIONS)
    target_user_id = _id(obj, "target_user_id", required=action in TARGET_ACTIONS)
    text = _str(obj, "text", required=action in TEXT_ACTIONS)
    if text is not None and len(text) > MAX_TEXT_CHARS:
        raise Bad(R_TEXT)
    country = _country(obj, "country", required=action == "login")
    fingerprint = _str(obj, "fingerprint", required=False)
    if fingerprint is not None and not 1 <= len(fingerprint) <= MAX_FINGERPRINT_CHARS:
        raise Bad("invalid value: fingerprint")
    if ts > limit_us:
        raise Bad(R_FUTURE)
    if floor_us is not None and ts < floor_us:
        raise Bad(R_PAST)
    return (event_id, ts, user_id, action, post_id, target_user_id, text, country, fingerprint)


def check_user(obj: dict) -> tuple:
    """One users.jsonl object -> (user_id, created_at_us, home_country, handle), or raise Bad."""
    user_id = _id(obj, "user_id", required=True)
    created_at = _ts(obj, "created_at")
    home_country = _country(obj, "home_country", required=True)
    handle = _str(obj, "handle", required=True)
    if not handle:
        raise Bad("invalid value: handle")
    return (user_id, created_at, home_country, handle)


def check_label(obj: dict, queues=QUEUES) -> tuple:
    """One labels.jsonl object -> (post_id, is_harmful, harm_types, labeled_at_us, queue,
    sampling_weight), or raise Bad. ``queues``: the labeling queues allowed."""
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
    if not set(harm_types) <= _HARM_TYPE_SET or (harm_types and not is_harmful):
        raise Bad("invalid value: harm_types")
    labeled_at = _ts(obj, "labeled_at")
    queue = _str(obj, "queue", required=True)
    if queue not in queues:
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


def check_appeal_label(obj: dict) -> tuple:
    """One appeals/labels.jsonl object -> (appeal_id, <check_label's row>, model_id), or raise
    Bad. The labels contract with queue ``appeal`` only, plus the appeal's id (required) and the
    model whose removal was appealed (a string or null)."""
    appeal_id = _id(obj, "appeal_id", required=True)
    row = check_label(obj, queues=(APPEAL_QUEUE,))
    return (appeal_id, *row, _str(obj, "model_id", required=False))


def _number(obj: dict, name: str, low: float = -math.inf, high: float = math.inf) -> float | None:
    """An optional finite number in [low, high]."""
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Bad(f"wrong type: {name}")
    if not (math.isfinite(value) and low <= value <= high):
        raise Bad(f"invalid value: {name}")
    return float(value)


def _bool(obj: dict, name: str) -> bool | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, bool):
        raise Bad(f"wrong type: {name}")
    return value


def check_decision(obj: dict) -> tuple:
    """One decision-log object -> a row in RAW_DECISION_COLUMNS order, or raise Bad.

    Required: ``decided_at``, ``decision`` (remove | review | allow) and ``trigger`` (1-64
    characters). A new post scored from its text has no ``post_id``; a restoring decision after a
    reversed appeal has no student or probability of its own: those fields may be null.
    ``path`` and ``head`` (optional: logs written before them stay valid) are checked by
    :func:`_removal_path`."""
    post_id = _id(obj, "post_id", required=False)
    decided_at = _ts(obj, "decided_at")
    model_id = _str(obj, "model_id", required=False)
    student = _number(obj, "student")
    routed_to_heavy = _bool(obj, "routed_to_heavy")
    probability = _number(obj, "probability", 0.0, 1.0)
    decision = _str(obj, "decision", required=True)
    if decision not in DECISIONS:
        raise Bad("invalid value: decision")
    trigger = _str(obj, "trigger", required=True)
    if not 1 <= len(trigger) <= MAX_TRIGGER_CHARS:
        raise Bad("invalid value: trigger")
    content_hash = _str(obj, "content_hash", required=False)
    harm_type = _str(obj, "harm_type", required=False)
    if harm_type is not None and harm_type != "unknown" and harm_type not in _HARM_TYPE_SET:
        raise Bad("invalid value: harm_type")
    return (
        post_id,
        decided_at,
        model_id,
        student,
        routed_to_heavy,
        probability,
        decision,
        trigger,
        content_hash,
        harm_type,
        _str(obj, "author_age_bucket", required=False),
        _id(obj, "author_id", required=False),
        *_removal_path(obj, decision),
    )


def _removal_path(obj: dict, decision: str) -> tuple[str | None, float | None]:
    """(path, head) of a decision: ``path`` is ``cascade`` or ``head`` on a removal, null
    otherwise; ``head`` a probability in [0, 1] or null, required when the head removed."""
    path = _str(obj, "path", required=False)
    head = _number(obj, "head", 0.0, 1.0)
    if path is not None and (path not in DECISION_PATHS or decision != "remove"):
        raise Bad("invalid value: path")
    if path == "head" and head is None:
        raise Bad("missing field: head")
    return path, head


def _key(obj: dict, name: str) -> str:
    value = _str(obj, name, required=True)
    if not 1 <= len(value) <= MAX_EVENT_ID_CHARS:
        raise Bad(f"invalid value: {name}")
    return value


def check_enforcement(obj: dict) -> tuple:
    """One enforcement.jsonl object -> (enforcement_id, user_id, action, reason,
    enforced_at_us), or raise Bad."""
    enforcement_id = _key(obj, "enforcement_id")
    user_id = _id(obj, "user_id", required=True)
    action = _str(obj, "action", required=True)
    if action not in ENFORCEMENT_ACTIONS:
        raise Bad("invalid value: action")
    reason = _str(obj, "reason", required=True)
    if reason not in ENFORCEMENT_REASONS:
        raise Bad("invalid value: reason")
    return (enforcement_id, user_id, action, reason, _ts(obj, "enforced_at"))


def check_device(obj: dict) -> tuple:
    """One devices.jsonl object -> (seen_id, user_id, seen_at_us, device_fp, network_fp), or
    raise Bad. Both fingerprints are required (a login without one is not a sighting)."""
    seen_id = _key(obj, "seen_id")
    user_id = _id(obj, "user_id", required=True)
    seen_at = _ts(obj, "seen_at")
    fps = []
    for name in ("device_fp", "network_fp"):
        value = _str(obj, name, required=True)
        if not 1 <= len(value) <= MAX_FINGERPRINT_CHARS:
            raise Bad(f"invalid value: {name}")
        fps.append(value)
    return (seen_id, user_id, seen_at, fps[0], fps[1])


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


def raw_text(line: bytes) -> str:
    return line.decode("utf-8", errors="replace")[:MAX_RAW_CHARS]
