"""The data contracts, defined once: vocabularies and the raw and lake schemas (docs/contracts.md).

The simulator, ingest, the stream processor, training and the quality gates import these names;
none of them spells a vocabulary or a column list again. pyarrow is imported only when an Arrow
schema is asked for: the CLI and the stream processor import this module at start-up.
"""

from __future__ import annotations

# The actions a social network's log pipeline may emit (raw-log contract, section 1).
ACTIONS = (
    "login",
    "post",
    "reply",
    "view",
    "like",
    "share",
    "dislike",
    "report",
    "block",
    "mute",
    "follow",
    "unfollow",
)
# Actions that need a post_id, a target_user_id, a text.
POST_ACTIONS = frozenset({"post", "reply", "view", "like", "share", "dislike", "report"})
TARGET_ACTIONS = frozenset({"block", "mute", "follow", "unfollow"})
TEXT_ACTIONS = frozenset({"post", "reply"})
HARM_TYPES = ("harassment", "hate", "spam", "violent_threat")
# Labeling queues of labels.jsonl.
QUEUES = frozenset({"reported", "random"})
# The raw streams, as named in the quarantine table (enforcement and devices: section 1.1;
# decisions and appeal_labels, the scoring service's own logs: section 1.2; rule_effects and
# account_verdicts, the rules engine's effects and the account reviewers' verdicts: section 1.3).
STREAMS = (
    "events",
    "users",
    "labels",
    "enforcement",
    "devices",
    "decisions",
    "appeal_labels",
    "rule_effects",
    "account_verdicts",
)
# The scoring service's decisions (decision log) and the queue of appeal labels.
DECISIONS = frozenset({"remove", "review", "allow"})
APPEAL_QUEUE = "appeal"
MAX_TRIGGER_CHARS = 64
# enforcement.jsonl: the platform's account actions and their reasons.
ENFORCEMENT_ACTIONS = frozenset({"suspend"})
ENFORCEMENT_REASONS = frozenset({"bot", "spam", "harassment", "ban_evasion", "coordination"})
MAX_FINGERPRINT_CHARS = 128
# The rules engine's effects log (vigil.stream.rules.effect_row; docs/rules.md): rule modes,
# effects, the entities a rule acts on, and the labels the throttle/suspend effects set.
# UNLABEL_EFFECT is not a rule's: the engine logs it when a reviewer's cleared verdict ends a
# live label (event_id = the verdict's id, event_ts = its time, label = the label ended).
RULE_MODES = frozenset({"live", "shadow"})
UNLABEL_EFFECT = "unlabel"
RULE_EFFECTS = frozenset({"label", "review", "throttle", "suspend", UNLABEL_EFFECT})
RULE_ENTITIES = frozenset({"user", "target", "post", "link", "fingerprint"})
THROTTLED_LABEL = "throttled"
SUSPENDED_LABEL = "suspended"
MAX_RULE_NAME_CHARS = 64
MAX_ENTITY_ID_CHARS = 512
# Account reviewers' verdicts (vigil accounts verdict) become labels on the user: a violating
# verdict "confirmed_<reason>" when the reason is one of ENFORCEMENT_REASONS, else
# "confirmed_violation"; an ok verdict "cleared" (which ends the rules' labels on the account).
CLEARED_LABEL = "cleared"
CONFIRMED_LABEL = "confirmed_violation"
VERDICT_LABELS = (CLEARED_LABEL, CONFIRMED_LABEL) + tuple(
    f"confirmed_{reason}" for reason in sorted(ENFORCEMENT_REASONS)
)
MAX_VERDICT_REASON_CHARS = 64


def verdict_label(is_violating: bool, reason: str) -> str:
    """The label a reviewer's verdict on an account becomes (one of VERDICT_LABELS)."""
    if not is_violating:
        return CLEARED_LABEL
    return f"confirmed_{reason}" if reason in ENFORCEMENT_REASONS else CONFIRMED_LABEL


MAX_EVENT_ID_CHARS = 64
MAX_TEXT_CHARS = 5000
# Longest raw line kept in the quarantine table.
MAX_RAW_CHARS = 2000

# Column tables: (name, type). Types: "string", "int64", "bool", "float64", "timestamp"
# (timestamp[us, tz=UTC] in the lake; an ISO-8601 string in the raw logs).
RAW_EVENT_COLUMNS = (
    ("event_id", "string"),
    ("event_ts", "timestamp"),
    ("user_id", "int64"),
    ("action", "string"),
    ("post_id", "int64"),
    ("target_user_id", "int64"),
    ("text", "string"),
    ("country", "string"),
    # the device fingerprint of a login (optional, any action; 1-128 characters; issue 21)
    ("fingerprint", "string"),
)
# Columns added to the event contract after lakes were written without them: a partition that
# lacks one reads it as null (vigil.lake.store.read_parquet).
ADDED_EVENT_COLUMNS = ("fingerprint",)
EVENT_FIELDS = tuple(name for name, _ in RAW_EVENT_COLUMNS)
# Where a lake event row came from: its raw file (relative to the raw folder) and 1-based line.
EVENT_COLUMNS = RAW_EVENT_COLUMNS + (("source_file", "string"), ("source_line", "int64"))
USER_COLUMNS = (
    ("user_id", "int64"),
    ("created_at", "timestamp"),
    ("home_country", "string"),
    ("handle", "string"),
)
LABEL_COLUMNS = (
    ("post_id", "int64"),
    ("is_harmful", "bool"),
    ("harm_types", "string"),
    ("labeled_at", "timestamp"),
    ("queue", "string"),
    ("sampling_weight", "float64"),
)
ENFORCEMENT_COLUMNS = (
    ("enforcement_id", "string"),
    ("user_id", "int64"),
    ("action", "string"),
    ("reason", "string"),
    ("enforced_at", "timestamp"),
)
DEVICE_COLUMNS = (
    ("seen_id", "string"),
    ("user_id", "int64"),
    ("seen_at", "timestamp"),
    ("device_fp", "string"),
    ("network_fp", "string"),
)
# The scoring service's decision log (<data root>/decisions/dt=*/decisions-<pid>.jsonl). A lake
# row also names its line: decision_id = "<source_file>:<source_line>" (the log is append-only).
RAW_DECISION_COLUMNS = (
    ("post_id", "int64"),
    ("decided_at", "timestamp"),
    ("model_id", "string"),
    ("student", "float64"),
    ("routed_to_heavy", "bool"),
    ("probability", "float64"),
    ("decision", "string"),
    ("trigger", "string"),
    ("content_hash", "string"),
    ("harm_type", "string"),
    ("author_age_bucket", "string"),
    ("author_id", "int64"),
    # which removal path fired (DECISION_PATHS; null: not removed) and the re-score head's
    # probability (null where it did not run); optional, added by issue 22's re-score head
    ("path", "string"),
    ("head", "float64"),
)
# A removal's path in the decision log: the cascade, or the re-score head at a re-score request.
DECISION_PATHS = frozenset({"cascade", "head"})
# Columns added to the decision contract after lakes were written without them: a lake file that
# lacks one reads it as null (vigil.lake.store.read_parquet), and ingest re-reads the logs.
ADDED_DECISION_COLUMNS = (("path", "string"), ("head", "float64"))
DECISION_COLUMNS = (
    (("decision_id", "string"),)
    + RAW_DECISION_COLUMNS
    + (("source_file", "string"), ("source_line", "int64"))
)
# Appeal verdicts (<data root>/appeals/labels.jsonl): the labels contract plus the appeal's id
# and the model whose removal was appealed; queue is always APPEAL_QUEUE.
APPEAL_LABEL_COLUMNS = (("appeal_id", "int64"),) + LABEL_COLUMNS + (("model_id", "string"),)
# The rules engine's effects log (<data root>/stream/*.effects.jsonl): the log's fields (key
# effect_id), then the line it came from.
RULE_EFFECT_COLUMNS = (
    ("effect_id", "string"),
    ("seq", "int64"),
    ("rule", "string"),
    ("rule_version", "int64"),
    ("mode", "string"),
    ("effect", "string"),
    ("entity", "string"),
    ("entity_id", "string"),
    ("label", "string"),
    ("expires_at", "timestamp"),
    ("event_id", "string"),
    ("event_ts", "timestamp"),
    ("source_file", "string"),
    ("source_line", "int64"),
)
# Account reviewers' verdicts (<data root>/accounts/verdicts.jsonl, append-only): verdict_id =
# "<source_file>:<source_line>".
ACCOUNT_VERDICT_COLUMNS = (
    ("verdict_id", "string"),
    ("user_id", "int64"),
    ("is_violating", "bool"),
    ("reason", "string"),
    ("label", "string"),  # verdict_label(is_violating, reason)
    ("reviewer", "string"),
    ("reviewed_at", "timestamp"),
    ("source_file", "string"),
    ("source_line", "int64"),
)
# raw_dir (the resolved raw folder) + source_file (relative to it) name the rejected line's file.
QUARANTINE_COLUMNS = (
    ("stream", "string"),
    ("raw_dir", "string"),
    ("source_file", "string"),
    ("line_number", "int64"),
    ("reason", "string"),
    ("raw", "string"),
)


def arrow_schema(columns: tuple[tuple[str, str], ...], *, raw_timestamps: bool = False):
    """A column table -> a ``pyarrow.Schema``. ``raw_timestamps``: timestamps as the raw logs'
    ISO-8601 strings (what the bulk JSON reader parses) instead of timestamp[us, UTC]."""
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "int64": pa.int64(),
        "bool": pa.bool_(),
        "float64": pa.float64(),
        "timestamp": pa.string() if raw_timestamps else pa.timestamp("us", tz="UTC"),
    }
    return pa.schema([(name, types[kind]) for name, kind in columns])


def event_schema():
    """lake/events/dt=*/events.parquet"""
    return arrow_schema(EVENT_COLUMNS)


def raw_event_schema():
    """One raw event line as the bulk JSON reader parses it (event_ts still a string)."""
    return arrow_schema(RAW_EVENT_COLUMNS, raw_timestamps=True)


def user_schema():
    """lake/users/users.parquet"""
    return arrow_schema(USER_COLUMNS)


def label_schema():
    """lake/labels/labels.parquet"""
    return arrow_schema(LABEL_COLUMNS)


def enforcement_schema():
    """lake/enforcement/enforcement.parquet"""
    return arrow_schema(ENFORCEMENT_COLUMNS)


def device_schema():
    """lake/devices/devices.parquet"""
    return arrow_schema(DEVICE_COLUMNS)


def decision_schema():
    """lake/decisions/decisions.parquet"""
    return arrow_schema(DECISION_COLUMNS)


def appeal_label_schema():
    """lake/appeal_labels/appeal_labels.parquet"""
    return arrow_schema(APPEAL_LABEL_COLUMNS)


def rule_effect_schema():
    """lake/rule_effects/rule_effects.parquet"""
    return arrow_schema(RULE_EFFECT_COLUMNS)


def account_verdict_schema():
    """lake/account_verdicts/account_verdicts.parquet"""
    return arrow_schema(ACCOUNT_VERDICT_COLUMNS)


def quarantine_schema():
    """lake/quarantine/quarantine.parquet"""
    return arrow_schema(QUARANTINE_COLUMNS)
