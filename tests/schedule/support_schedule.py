"""Helpers shared by the schedule tests: a moderator with hand-set scores, raw-log readers."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from vigil.schedule.moderation import Check


class WordModerator:
    """Decides by marker words, with fixed probabilities: 'BADWORD' -> remove (0.97),
    'MAYBE' -> review (0.55), anything else -> allow (0.02). Stands for the champion in tests
    that check what the service does with each decision (the model itself is tested in
    tests/training and tests/moderation)."""

    model_id = "word-test-model"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def check(self, text: str, user_id: int | None = None) -> Check:
        self.seen.append(text)
        if "BADWORD" in text:
            return Check("remove", 0.97, self.model_id)
        if "MAYBE" in text:
            return Check("review", 0.55, self.model_id)
        return Check("allow", 0.02, self.model_id)


def raw_event_ids(raw: Path) -> Counter:
    """event_id -> how many lines carry it, over every hour file (counted from the files)."""
    counts: Counter = Counter()
    for path in sorted(raw.glob("events/dt=*/hour=*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                counts[json.loads(line)["event_id"]] += 1
    return counts


def raw_events(raw: Path) -> list[tuple[str, dict]]:
    """(file relative to raw, event) for every line."""
    out = []
    for path in sorted(raw.glob("events/dt=*/hour=*.jsonl")):
        for line in path.read_text().splitlines():
            out.append((path.relative_to(raw).as_posix(), json.loads(line)))
    return out
