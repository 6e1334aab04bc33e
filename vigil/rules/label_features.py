"""The Feast view of a user's active labels (``user_labels``; docs/features.md), defined once.

Rows come from the dbt mart ``user_labels`` (``features/user_labels.parquet``): one row per user
and moment their labels change, with the values that hold from then on, so Feast's point-in-time
join at t returns the labels active at t (the rules' applied labels and reviewers' verdicts,
``active_labels``: applied_at <= t < expires_at). Plain Python, no Feast import.
"""

from __future__ import annotations

TABLE = "user_labels"
# A row holds until the user's next change, which may be months later (a suspension without
# expiry): the view looks back a year.
TTL_DAYS = 365
# name -> (kind, description)
FEATURES: dict[str, tuple[str, str]] = {
    "active_rule_labels": ("int", "distinct labels set by live rules, active now"),
    "is_throttled": ("int", "1 while a rule's throttle is active, else 0"),
    "is_suspended": ("int", "1 while a rule's suspension is active, else 0"),
    "is_coordinated": ("int", "1 while the coordinated label (default rules) is active, else 0"),
    "last_verdict": (
        "string",
        "the latest reviewer verdict's label (cleared, confirmed_*), or null",
    ),
}


def state_at(path, at):
    """Each user's row of ``features/user_labels.parquet`` (``path``) in force at ``at`` (a
    tz-aware time): the latest row with ``event_timestamp <= at`` (Feast's point-in-time rule).
    Empty when the file is absent (no labels exported yet)."""
    from pathlib import Path

    import pandas as pd

    columns = ["user_id", "event_timestamp", *FEATURES]
    if not Path(path).exists():
        return pd.DataFrame(columns=columns)
    frame = pd.read_parquet(path, columns=columns)
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    frame = frame[frame["event_timestamp"] <= pd.Timestamp(at)]
    return (
        frame.sort_values(["user_id", "event_timestamp"])
        .drop_duplicates("user_id", keep="last")
        .reset_index(drop=True)
    )
