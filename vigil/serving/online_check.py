"""The SQLite online store's structure checked before it is written or served.

SQLite keeps no page checksums. What it can check is the file's structure: ``PRAGMA
integrity_check`` walks every page (header, b-tree pages, cell pointers, record headers, the order
and uniqueness of the keys, the indexes against their tables). `vigil features materialize` and
`vigil features serve` run it first, so a damaged file is one error naming it and the fix instead
of values read from a broken page, or a traceback later.

What no check finds: a byte changed inside a stored value (a feature's bytes, an event time) whose
record still parses. Measured on a materialized store (docs/operations.md, "Fault matrix"): most
single-byte flips are caught here or leave the data as it was; the rest are read as other values.
``integrity_check`` costs about 2 s per 1.5 M online rows (117 MB), ``quick_check`` about half,
but ``quick_check`` skips the key order and index checks that catch most flips in this layout.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from vigil import config
from vigil.errors import UserError

log = logging.getLogger(__name__)

# Problems listed in the error (integrity_check lists up to 100; the first few name the damage).
SHOWN = 3
FIX = "delete it, then run `vigil features apply` and `vigil features materialize --full`"


def online_store_path() -> Path:
    """Where the SQLite online store lives (vigil.serving.features renders the same path)."""
    return config.paths().feast / "online_store.db"


def damaged_online_store(path: Path, reason: str) -> UserError:
    return UserError(f"the online store {path} is damaged ({reason}): {FIX}.")


def check_online_store(path: Path | None = None) -> bool:
    """Raise :func:`damaged_online_store` when the SQLite online store fails ``PRAGMA
    integrity_check``. Returns False when there is nothing to check (Redis, or no file yet)."""
    if path is None:
        if config.online_store() != "sqlite":
            return False
        path = online_store_path()
    if not path.is_file():
        return False
    started = time.perf_counter()
    try:
        # mode=rw, not ro: the check never creates the file, but a writer killed mid-transaction
        # leaves a hot journal that SQLite rolls back on the first read (its crash recovery,
        # which the next writer would do anyway); a read-only connection cannot, and fails with
        # "attempt to write a readonly database", which is not damage
        con = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=60)
        try:
            problems = [row[0] for row in con.execute("pragma integrity_check").fetchall()]
        finally:
            con.close()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "unable to open" in str(exc):
            raise  # busy or unreadable: not damage, and the caller's own error says so
        raise damaged_online_store(path, f"integrity_check: {_first_line(exc)}") from None
    except sqlite3.DatabaseError as exc:  # "file is not a database", "malformed", ...
        raise damaged_online_store(path, f"integrity_check: {_first_line(exc)}") from None
    if problems != ["ok"]:
        shown = "; ".join(problems[:SHOWN])
        more = f"; {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        raise damaged_online_store(path, f"integrity_check: {shown}{more}")
    log.info(
        "feast: online store %s passed integrity_check in %.2f s",
        path,
        time.perf_counter() - started,
    )
    return True


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]
