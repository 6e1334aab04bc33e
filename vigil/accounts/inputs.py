"""The tables account integrity reads: events, users, the enforcement log, login fingerprints.

``from_lake()`` reads the lake (what the CLI and the DAG use); ``from_raw(dir)`` reads a raw folder
directly, line by line, skipping lines that are not valid (counted and logged), for evaluation
on simulated worlds without an ingest. Both return :class:`AccountInputs`, and ``until(cut)``
keeps only what was known before a moment.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from vigil.config import paths
from vigil.errors import UserError

log = logging.getLogger(__name__)

# country: the login's country (the account features' logins abroad read it)
EVENT_COLUMNS = [
    "event_id",
    "user_id",
    "action",
    "event_ts",
    "post_id",
    "target_user_id",
    "text",
    "country",
]
ENFORCEMENT_COLUMNS = ["user_id", "action", "reason", "enforced_at"]
USER_COLUMNS = ["user_id", "created_at", "home_country", "handle"]
DEVICE_COLUMNS = ["user_id", "seen_at", "device_fp", "network_fp"]


@dataclass
class AccountInputs:
    events: pd.DataFrame
    users: pd.DataFrame
    enforcement: pd.DataFrame
    devices: pd.DataFrame

    def until(self, cut: pd.Timestamp) -> AccountInputs:
        """What the platform knew just before ``cut``."""
        return AccountInputs(
            events=self.events[self.events["event_ts"] < cut],
            users=self.users[self.users["created_at"] < cut],
            enforcement=self.enforcement[self.enforcement["enforced_at"] < cut],
            devices=self.devices[self.devices["seen_at"] < cut],
        )

    @property
    def end(self) -> pd.Timestamp:
        return self.events["event_ts"].max()


def _frame(rows: list[dict], columns: list[str], times: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
    for col in times:
        frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
    return frame


def _read_jsonl(path: Path, required: tuple[str, ...], times: tuple[str, ...]) -> list[dict]:
    rows, bad = [], 0
    if not path.exists():
        return rows
    with path.open() as fh:
        for line in fh:
            try:
                obj = json.loads(line)
                ok = isinstance(obj, dict) and all(obj.get(f) is not None for f in required)
                ok = ok and isinstance(obj["user_id"], int) and obj["user_id"] > 0
                for col in times:
                    pd.Timestamp(obj[col])
            except (ValueError, TypeError, KeyError):
                ok = False
            if ok:
                rows.append(obj)
            else:
                bad += 1
    if bad:
        log.info("inputs: %s: %d invalid lines skipped", path.name, bad)
    return rows


def from_raw(raw: str | Path) -> AccountInputs:
    raw = Path(raw)
    if not (raw / "users.jsonl").exists():
        raise UserError(
            f"{raw} has no users.jsonl: point --raw at a simulated or exported raw folder."
        )
    files = sorted((raw / "events").glob("dt=*/hour=*.jsonl"))
    parts = [pd.read_json(f, lines=True, dtype=False) for f in files if f.stat().st_size]
    events = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=EVENT_COLUMNS)
    events = events.drop_duplicates("event_id") if "event_id" in events else events
    events = events.reindex(columns=EVENT_COLUMNS)
    events["event_ts"] = pd.to_datetime(events["event_ts"], utc=True, format="ISO8601")
    events = events.sort_values(["event_ts", "user_id"], kind="stable").reset_index(drop=True)
    users = _frame(
        _read_jsonl(raw / "users.jsonl", ("user_id", "created_at"), ("created_at",)),
        USER_COLUMNS,
        ("created_at",),
    )
    enforcement = _frame(
        _read_jsonl(raw / "enforcement.jsonl", ("user_id", "enforced_at"), ("enforced_at",)),
        ENFORCEMENT_COLUMNS,
        ("enforced_at",),
    )
    devices = _frame(
        _read_jsonl(raw / "devices.jsonl", ("user_id", "seen_at"), ("seen_at",)),
        DEVICE_COLUMNS,
        ("seen_at",),
    )
    log.info(
        "inputs: %d events, %d users, %d suspensions, %d fingerprint rows from %s",
        len(events),
        len(users),
        len(enforcement),
        len(devices),
        raw,
    )
    return AccountInputs(events, users, enforcement, devices)


def _lake_table(folder: Path, columns: list[str], times: tuple[str, ...]) -> pd.DataFrame:
    files = sorted(folder.glob("**/*.parquet")) if folder.exists() else []
    if not files:
        return _frame([], columns, times)
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    frame = frame.reindex(columns=columns)
    for col in times:
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def from_lake() -> AccountInputs:
    p = paths()
    events = _lake_table(p.lake_events, EVENT_COLUMNS, ("event_ts",))
    if events.empty:
        raise UserError(f"the lake at {p.lake} has no events: run `vigil ingest --raw DIR` first.")
    users = _lake_table(p.lake_users, USER_COLUMNS, ("created_at",))
    enforcement = _lake_table(p.lake_enforcement, ENFORCEMENT_COLUMNS, ("enforced_at",))
    devices = _lake_table(p.lake_devices, DEVICE_COLUMNS, ("seen_at",))
    return AccountInputs(events, users, enforcement, devices)
