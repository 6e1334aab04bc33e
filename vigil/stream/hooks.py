"""The stream state's hooks, chained: re-score triggers, rules and post counters can all be on."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable


def chain_hooks(
    state,
    on_applied: Callable[[list[tuple]], None],
    on_checkpoint: Callable[[sqlite3.Connection], None],
) -> None:
    """Run ``on_applied(events)`` after each batch's applied events and ``on_checkpoint(con)``
    inside each checkpoint's transaction, after the hooks already attached to ``state``."""
    before_applied, before_ckpt = state.on_applied, state.on_checkpoint

    def applied(events: list[tuple]) -> None:
        if before_applied is not None:
            before_applied(events)
        on_applied(events)

    def checkpoint(con: sqlite3.Connection) -> None:
        if before_ckpt is not None:
            before_ckpt(con)
        on_checkpoint(con)

    state.on_applied = applied
    state.on_checkpoint = checkpoint
