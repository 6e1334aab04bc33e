"""Facts read from docs/contracts.md, the written contract: tests check code against the document,
not against the code's own constants."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

CONTRACTS = Path(__file__).resolve().parents[2] / "docs" / "contracts.md"


@cache
def actions() -> tuple[str, ...]:
    """The raw-log action vocabulary, from the `action` row of the events table (section 1)."""
    for line in CONTRACTS.read_text().splitlines():
        match = re.match(r"\|\s*`action`\s*\|[^|]*\|\s*one of `([^`]+)`", line)
        if match:
            return tuple(match.group(1).split())
    raise AssertionError(f"{CONTRACTS} has no `action` row listing the vocabulary")
