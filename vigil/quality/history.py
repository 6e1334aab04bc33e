"""Row counts of accepted gate runs, kept per table for the volume check
(``reports/quality/row_count_history.json``)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

from vigil import config

log = logging.getLogger(__name__)

HISTORY_KEEP = 90  # accepted row counts kept per table


def _history_file() -> Path:
    return config.paths().reports / "quality" / "row_count_history.json"


def read_history() -> dict:
    f = _history_file()
    if f.is_file():
        try:
            return json.loads(f.read_text())
        except json.JSONDecodeError:
            log.warning("row count history %s is not JSON: starting a new one", f)
    return {}


def previous_rows(history: dict, key: str, day: dt.date) -> dict | None:
    earlier = [e for e in history.get(key, []) if e["run_date"] < day.isoformat()]
    return max(earlier, key=lambda e: e["run_date"]) if earlier else None


def record_history(stage: str, day: dt.date, tables: dict[str, dict]) -> None:
    history = read_history()
    for table, info in tables.items():
        if info.get("rows") is None:
            continue
        key = f"{stage}/{table}"
        entries = [e for e in history.get(key, []) if e["run_date"] != day.isoformat()]
        entries.append({"run_date": day.isoformat(), "rows": int(info["rows"])})
        history[key] = sorted(entries, key=lambda e: e["run_date"])[-HISTORY_KEEP:]
    f = _history_file()
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_suffix(".tmp")
    tmp.write_text(json.dumps(history, indent=1, sort_keys=True))
    tmp.replace(f)
