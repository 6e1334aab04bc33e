"""Vigil's processes take turns on the DuckDB warehouse: one writer, or any number of readers."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from pathlib import Path

from vigil import config
from vigil.errors import UserError

log = logging.getLogger(__name__)


_held = {"depth": 0}


class WarehouseBusy(UserError):
    """The warehouse is held by another Vigil process and the caller chose not to wait."""


def _lock_path() -> Path:
    # beside the data, not in it: taking turns leaves the warehouse folder as it was
    return config.paths().home / "run" / "warehouse.lock"


@contextlib.contextmanager
def access(exclusive: bool, purpose: str, wait: bool = True):
    """Hold the warehouse for ``purpose``: exclusively to write (dbt, ``vigil uam-update``), shared
    to read (gates, exports, ``vigil uam``). DuckDB lets one process write a database file, and no
    other process even read it meanwhile: a second opener fails at once ("Could not set lock on
    file"). This advisory lock (flock on ``$VIGIL_HOME/run/warehouse.lock``) makes Vigil's processes
    wait for each other instead, saying for whom; ``wait=False`` raises :class:`WarehouseBusy`.
    Nested use in one process passes through (the outer hold covers it)."""
    if _held["depth"]:
        _held["depth"] += 1
        try:
            yield
        finally:
            _held["depth"] -= 1
        return
    path = _lock_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - held for the whole block
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    try:
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "a reader"
            if not wait:
                raise WarehouseBusy(
                    f"the warehouse is held by {holder}: try again when it is done."
                ) from None
            log.info("%s: waiting for the warehouse (held by %s)", purpose, holder)
            started = time.perf_counter()
            fcntl.flock(handle, mode)
            log.info("%s: got the warehouse after %.1f s", purpose, time.perf_counter() - started)
        if exclusive:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} ({purpose})")
            handle.flush()
        _held["depth"] = 1
        try:
            yield
        finally:
            _held["depth"] = 0
            if exclusive:
                handle.truncate(0)
    finally:
        handle.close()  # releases the lock


# What DuckDB says when a database file is truncated, overwritten or fails its checksums.
DAMAGE_SIGNS = (
    "not a valid DuckDB database file",
    "Corrupt database file",
    "Could not read enough bytes from file",
    "does not match stored checksum",
)


def damaged_warehouse(message: str) -> bool:
    return any(sign in message for sign in DAMAGE_SIGNS)


def damaged_warehouse_sentence(message: str) -> str:
    """One sentence naming the damaged file and the command that rebuilds it."""
    path = config.paths().warehouse
    detail = next(
        (ln.strip() for ln in message.splitlines() if damaged_warehouse(ln)), message.strip()
    )
    return (
        f"the warehouse file {path} is damaged ({detail[:160]}): remove it "
        f"(`rm {path} {path}.wal`) and rebuild it with `vigil dbt all --full-refresh`."
    )


@contextlib.contextmanager
def reading(purpose: str, wait: bool = True):
    """A read-only connection to the warehouse, held shared (:func:`access`) until it closes.
    A damaged warehouse file ends in one :class:`UserError` naming it and the fix."""
    import duckdb

    with access(exclusive=False, purpose=purpose, wait=wait):
        try:
            con = duckdb.connect(str(config.paths().warehouse), read_only=True)
        except duckdb.Error as exc:
            if damaged_warehouse(str(exc)):
                raise UserError(damaged_warehouse_sentence(str(exc))) from None
            raise
        try:
            yield con
        except duckdb.Error as exc:
            if damaged_warehouse(str(exc)):
                raise UserError(damaged_warehouse_sentence(str(exc))) from None
            raise
        finally:
            con.close()
