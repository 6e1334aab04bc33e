"""Feast's stores written safely: the registry replaced by rename, one writer at a time."""

from __future__ import annotations

import contextlib
import logging
import os

from vigil import config

log = logging.getLogger("vigil.serving.features")


def atomic_registry_writes() -> None:
    """Make Feast's file registry replace ``registry.db`` by rename. Feast 0.67 truncates the
    file and then writes it, so a process killed in between leaves an empty registry, and a
    reader at that moment sees no feature views."""
    import uuid

    from feast.infra.registry import file as registry_file

    store_class = registry_file.FileRegistryStore
    if getattr(store_class, "_vigil_atomic", False):
        return

    def write(self, registry_proto) -> None:
        from feast.utils import _utc_now

        registry_proto.version_id = str(uuid.uuid4())
        registry_proto.last_updated.FromDatetime(_utc_now())
        self._filepath.parent.mkdir(exist_ok=True)
        tmp = self._filepath.with_name(f".{self._filepath.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, mode="wb") as out:
                out.write(registry_proto.SerializeToString())
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self._filepath)
        finally:
            tmp.unlink(missing_ok=True)

    store_class._write_registry = write
    store_class._vigil_atomic = True


@contextlib.contextmanager
def writing(purpose: str):
    """One writer of the Feast registry and online store at a time (apply, materialize): a flock
    on ``$VIGIL_HOME/run/feast.lock``; a second writer says for whom it waits, then waits."""
    import fcntl

    path = config.paths().home / "run" / "feast.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            log.warning("feast: %s waits for the Feast stores (held by %s)", purpose, holder)
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} ({purpose})")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
