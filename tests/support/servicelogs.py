"""A hand-made data root with the scoring service's logs (decision log, appeal labels) beside a
tiny raw folder: every count, reason and label the tests expect is worked out from these lines."""

from __future__ import annotations

import json
from pathlib import Path

USERS = [
    {"user_id": u, "created_at": "2026-09-01T00:00:00Z", "home_country": "US", "handle": f"u{u}"}
    for u in (1, 2)
]
# Posts 10 and 11 by user 1, 12 and 13 by user 2.
POSTS = {10: 1, 11: 1, 12: 2, 13: 2}
LABELS = [
    {
        "post_id": 10,
        "is_harmful": True,
        "harm_types": ["spam"],
        "labeled_at": "2026-10-01T05:00:00Z",
        "queue": "reported",
        "sampling_weight": 1.0,
    },
    {
        "post_id": 11,
        "is_harmful": True,
        "harm_types": ["spam"],
        "labeled_at": "2026-10-01T05:00:00Z",
        "queue": "reported",
        "sampling_weight": 1.0,
    },
    {
        "post_id": 12,
        "is_harmful": False,
        "harm_types": [],
        "labeled_at": "2026-10-01T06:00:00Z",
        "queue": "random",
        "sampling_weight": 40.0,
    },
]
REVERSED_10 = {
    "post_id": 10,
    "is_harmful": False,
    "harm_types": [],
    "labeled_at": "2026-10-02T09:00:00+00:00",
    "queue": "appeal",
    "sampling_weight": 1.0,
    "model_id": "m1",
    "appeal_id": 1,
}
APPEAL_LINES = [
    json.dumps(REVERSED_10),  # loaded: post 10 reversed -> benign
    # upheld: post 11 harmful, its type the removal's (hate)
    json.dumps(
        REVERSED_10 | {"appeal_id": 2, "post_id": 11, "is_harmful": True, "harm_types": ["hate"]}
    ),
    json.dumps(REVERSED_10 | {"appeal_id": 3, "post_id": 13}),  # loaded: post 13 benign
    json.dumps(REVERSED_10 | {"appeal_id": 4, "post_id": 99}),  # loaded; post 99 not in the lake
    json.dumps(REVERSED_10 | {"appeal_id": 5, "queue": "random"}),  # invalid value: queue
    json.dumps(REVERSED_10 | {"appeal_id": 6, "harm_types": ["spam"]}),  # invalid value: harm_types
    json.dumps({k: v for k, v in REVERSED_10.items() if k != "appeal_id"}),  # missing: appeal_id
]
APPEAL_REASONS = {
    5: "invalid value: queue",
    6: "invalid value: harm_types",
    7: "missing field: appeal_id",
}
DECISION = {
    "post_id": 10,
    "decided_at": "2026-10-01T00:10:01+00:00",
    "model_id": "m1",
    "student": 0.93,
    "routed_to_heavy": True,
    "probability": 0.97,
    "decision": "remove",
    "trigger": "created",
    "content_hash": "c10",
    "harm_type": "spam",
    "author_age_bucket": "30-180d",
    "author_id": 1,
}
# A restoring row after a reversal: no student, probability of its own, nor content hash.
RESTORED = {
    "post_id": 10,
    "decided_at": "2026-10-02T09:00:00+00:00",
    "model_id": "m1",
    "student": None,
    "routed_to_heavy": None,
    "probability": None,
    "decision": "allow",
    "trigger": "appeal_reversed",
    "content_hash": None,
    "harm_type": "spam",
    "author_age_bucket": "30-180d",
    "author_id": 1,
}
# The re-score head's fields (path, head), optional: the first two lines carry them, the others
# are logged as before them (null in the lake).
DECISIONS_DAY1 = [
    json.dumps(DECISION | {"path": "cascade", "head": None}),  # loaded
    # loaded (shadow): the candidate's re-score head removes it
    json.dumps(DECISION | {"trigger": "shadow", "model_id": "m2", "path": "head", "head": 0.88}),
    json.dumps(DECISION | {"decision": "ban"}),  # invalid value: decision
    '{"post_id": 11, "decided_at": ',  # not JSON (a line cut by a crash)
    json.dumps(DECISION | {"post_id": 11, "probability": 1.2}),  # invalid value: probability
    json.dumps(DECISION | {"post_id": 12, "decided_at": "2026-10-01 00:30"}),  # timestamp
    json.dumps(DECISION | {"post_id": 13, "trigger": ""}),  # invalid value: trigger
]
DECISION_REASONS = {
    3: "invalid value: decision",
    4: "not JSON",
    5: "invalid value: probability",
    6: "unparseable timestamp: decided_at",
    7: "invalid value: trigger",
}
DECISIONS_DAY2 = [json.dumps(RESTORED)]  # loaded
DAY1_FILE = "dt=2026-10-01/decisions-101.jsonl"
DAY2_FILE = "dt=2026-10-02/decisions-202.jsonl"


def _lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


def write_root(home: Path) -> Path:
    """The raw folder (users, four posts, three queue labels) and, under ``home``, the decision
    log and the appeal labels. Returns the raw folder."""
    raw = home / "raw"
    events = [
        {
            "event_id": f"p{post}",
            "event_ts": f"2026-10-01T00:{post:02d}:00Z",
            "user_id": author,
            "action": "post",
            "post_id": post,
            "text": f"post {post}",
        }
        for post, author in POSTS.items()
    ]
    _lines(raw / "events" / "dt=2026-10-01" / "hour=00.jsonl", [json.dumps(e) for e in events])
    _lines(raw / "users.jsonl", [json.dumps(u) for u in USERS])
    _lines(raw / "labels.jsonl", [json.dumps(label) for label in LABELS])
    _lines(home / "decisions" / DAY1_FILE, DECISIONS_DAY1)
    _lines(home / "decisions" / DAY2_FILE, DECISIONS_DAY2)
    _lines(home / "appeals" / "labels.jsonl", APPEAL_LINES)
    return raw
