"""The status-distribution gate: a scoring run whose share of notes per status jumps is an alert.

The shares of CURRENTLY_RATED_HELPFUL, CURRENTLY_RATED_NOT_HELPFUL and NEEDS_MORE_RATINGS are
compared with the last *published* run's (``notes/state/status_distribution.json``, written by
``record`` when a run is published). A share that moves by more than ``MAX_SHIFT`` (0.10, ten
percentage points) fails the gate with the numbers in the message. The first run, and runs where
either side has fewer than ``MIN_NOTES`` notes (shares of a handful of notes jump by chance), pass.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from vigil import config
from vigil.errors import UserError
from vigil.notes import format as fmt

log = logging.getLogger(__name__)

MAX_SHIFT = 0.10
MIN_NOTES = 100
STATE_FILE = "status_distribution.json"


class StatusShift(UserError):
    """The status distribution moved more than allowed since the last published run."""


def state_path() -> Path:
    return config.paths().home / "notes" / "state" / STATE_FILE


def shares(counts: dict[str, int]) -> dict[str, float]:
    total = sum(int(counts.get(s, 0)) for s in fmt.STATUSES)
    return {s: (int(counts.get(s, 0)) / total if total else 0.0) for s in fmt.STATUSES}


def compare(
    current: dict[str, int],
    previous: dict[str, int] | None,
    max_shift: float = MAX_SHIFT,
    min_notes: int = MIN_NOTES,
) -> dict:
    """Shares now and before, the largest shift, and whether it passes (pure: no files)."""
    now = shares(current)
    result: dict = {"shares": now, "max_shift": max_shift, "passed": True, "largest": 0.0}
    if previous is None:
        result["reason"] = "first run: nothing to compare with"
        return result
    before = shares(previous)
    result["previous_shares"] = before
    n_now, n_before = sum(current.values()), sum(previous.values())
    if min(n_now, n_before) < min_notes:
        result["reason"] = f"fewer than {min_notes} notes ({n_before} before, {n_now} now)"
        return result
    shifts = {s: now[s] - before[s] for s in fmt.STATUSES}
    result["shifts"] = shifts
    result["largest"] = max(abs(v) for v in shifts.values())
    result["passed"] = result["largest"] <= max_shift + 1e-12  # 0.8 - 0.7 is 0.1000...09
    return result


def check(current: dict[str, int]) -> dict:
    """Compare with the last published run; raise :class:`StatusShift` when a share jumped."""
    saved = _read_state()
    result = compare(current, saved.get("counts") if saved else None)
    if not result["passed"]:
        moved = [
            f"{s} {100 * result['previous_shares'][s]:.1f}% -> {100 * result['shares'][s]:.1f}% "
            f"({100 * v:+.1f} points)"
            for s, v in result["shifts"].items()
            if abs(v) > MAX_SHIFT
        ]
        raise StatusShift(
            f"notes status distribution shifted by more than {100 * MAX_SHIFT:.0f} points since "
            f"the run published at {saved.get('published_at_millis')}: {'; '.join(moved)}. "
            f"Check the ratings that came in (notes/scores/scored_notes.tsv); if the change is "
            f"real, delete {state_path()} and run again to accept it."
        )
    log.info(
        "notes status distribution: %s (largest shift %.3f, limit %.2f)%s",
        ", ".join(f"{s} {100 * v:.1f}%" for s, v in result["shares"].items()),
        result["largest"],
        MAX_SHIFT,
        f"; {result['reason']}" if "reason" in result else "",
    )
    return result


def record(current: dict[str, int], published_at_millis: int | None = None) -> None:
    path = state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    body = {"counts": {s: int(current.get(s, 0)) for s in fmt.STATUSES}}
    body["published_at_millis"] = published_at_millis
    tmp.write_text(json.dumps(body, indent=2))
    os.replace(tmp, path)


def _read_state() -> dict | None:
    path = state_path()
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        log.warning("%s is not JSON: treating this run as the first", path)
        return None
