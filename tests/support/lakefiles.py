"""Write small lakes by hand, exactly as docs/contracts.md section 2 describes them."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

TS = pa.timestamp("us", tz="UTC")
EVENT_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("event_ts", TS),
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
USER_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("created_at", TS),
        ("home_country", pa.string()),
        ("handle", pa.string()),
    ]
)
LABEL_SCHEMA = pa.schema(
    [
        ("post_id", pa.int64()),
        ("is_harmful", pa.bool_()),
        ("harm_types", pa.string()),
        ("labeled_at", TS),
        ("queue", pa.string()),
        ("sampling_weight", pa.float64()),
    ]
)
_ids = itertools.count(1)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def event(ts: datetime | str, user_id: int, action: str = "view", **fields) -> dict:
    """One lake event row; unspecified fields are null."""
    ts = utc(ts) if isinstance(ts, str) else ts
    return {
        "event_id": fields.pop("event_id", f"e{next(_ids)}"),
        "event_ts": ts,
        "user_id": user_id,
        "action": action,
        "post_id": fields.pop("post_id", None),
        "target_user_id": fields.pop("target_user_id", None),
        "text": fields.pop("text", None),
        "country": fields.pop("country", "US" if action == "login" else None),
        "source_file": fields.pop("source_file", f"events/dt={ts.date()}/hour={ts.hour:02d}.jsonl"),
        "source_line": fields.pop("source_line", 1),
    }


def random_views(seed: int, days: list[str], users: int = 40, per_day: int = 150) -> list[dict]:
    """per_day views on each day ('YYYY-MM-DD') by users 1..users, seeded: minutes cluster
    (repeated actions in one minute) and reach both day edges."""
    rng = random.Random(seed)
    events = []
    for day in days:
        start = datetime.fromisoformat(day).replace(tzinfo=UTC)
        for _ in range(per_day):
            offset = timedelta(
                minutes=rng.choice([0, 1, 2, 59, 600, 601, 1438, 1439, rng.randrange(1440)]),
                seconds=rng.randrange(60),
                microseconds=rng.randrange(1_000_000),
            )
            events.append(event(start + offset, rng.randrange(1, users + 1), "view", post_id=1))
    return events


def write_events(lake: Path, events: list[dict]) -> list[str]:
    """(Re)write the day partitions the events fall on; returns the days written."""
    by_day: dict[str, list[dict]] = defaultdict(list)
    for e in events:
        by_day[e["event_ts"].astimezone(UTC).date().isoformat()].append(e)
    for day, rows in by_day.items():
        rows.sort(key=lambda e: (e["user_id"], e["event_ts"]))
        out = lake / "events" / f"dt={day}" / "events.parquet"
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=EVENT_SCHEMA), out)
    return sorted(by_day)


def write_lake(
    lake: Path,
    events: list[dict],
    users: list[dict] | None = None,
    labels: list[dict] | None = None,
) -> None:
    """A whole lake: events by day, users (default: every actor, created 2026-01-01), labels."""
    write_events(lake, events)
    if users is None:
        ids = sorted(
            {e["user_id"] for e in events}
            | {e["target_user_id"] for e in events if e["target_user_id"]}
        )
        users = [
            {
                "user_id": u,
                "created_at": utc("2026-01-01T00:00:00Z"),
                "home_country": "US",
                "handle": f"u{u}",
            }
            for u in ids
        ]
    (lake / "users").mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.Table.from_pylist(users, schema=USER_SCHEMA), lake / "users" / "users.parquet"
    )
    (lake / "labels").mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.Table.from_pylist(labels or [], schema=LABEL_SCHEMA), lake / "labels" / "labels.parquet"
    )


def brute_force_uam(events: list[dict], as_of: date) -> dict[int, int]:
    """User Active Minutes over the 30 days ending ``as_of``, by brute force: a set of distinct
    minutes per user, straight from the event rows (no daily decomposition)."""
    minutes: dict[int, set] = defaultdict(set)
    for e in events:
        ts = e["event_ts"]
        if as_of - timedelta(days=29) <= ts.date() <= as_of:
            minutes[e["user_id"]].add(ts.replace(second=0, microsecond=0))
    return {u: len(m) for u, m in minutes.items()}
