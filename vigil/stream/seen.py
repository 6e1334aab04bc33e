"""The event ids the stream has applied within the lateness horizon, kept compact and exact.

An id is kept as its 128-bit BLAKE2b digest (16 bytes, fixed width): two different ids share a
digest with probability 2**-128 per pair, so for any real stream the set answers exactly. Ids
live in buckets by the UTC day of their event: a sorted numpy array (``S16``) per day, plus a
small set of the digests added since the last compaction. A bucket costs 16 bytes per id once
compacted (a Python set of str cost ~100); a whole day is forgotten at once when it leaves the
horizon.

Membership is asked for a batch at a time (:meth:`SeenIds.hits`: one ``searchsorted`` per day
present in the batch) against the sorted arrays, and per event against the recent set, which
catches duplicates inside the batch.
"""

from __future__ import annotations

import hashlib
import sys

import numpy as np

DIGEST_BYTES = 16
# merge the recent set into the day's sorted array once it holds this many, or a quarter of it
_MIN_MERGE = 4096


def digest(event_id: str) -> bytes:
    """The 16-byte id digest kept in memory and in the checkpoint's ``seen`` table."""
    return hashlib.blake2b(event_id.encode("utf-8"), digest_size=DIGEST_BYTES).digest()


_EMPTY = np.empty(0, dtype=f"S{DIGEST_BYTES}")


class SeenIds:
    """Digests of seen event ids per UTC day (days as ints since 1970-01-01)."""

    def __init__(self) -> None:
        self.sorted: dict[int, np.ndarray] = {}
        self.recent: dict[int, set[bytes]] = {}

    def __len__(self) -> int:
        return sum(map(len, self.sorted.values())) + sum(map(len, self.recent.values()))

    def days(self) -> set[int]:
        return set(self.sorted) | set(self.recent)

    def load(self, day: int, digests: list[bytes]) -> None:
        """Add many digests of one day (e.g. from the checkpoint), compacted at once."""
        if not digests:
            return
        self.recent.setdefault(day, set()).update(digests)
        self._merge(day)

    def hits(self, days: list[int], digests: list[bytes]) -> list[bool]:
        """For each (day, digest): is it in that day's sorted array? (the recent sets are not
        asked: callers check them per event, as they add)."""
        if not self.sorted or not digests:
            return [False] * len(digests)
        keys = np.array(digests, dtype=f"S{DIGEST_BYTES}")
        day_arr = np.asarray(days, dtype=np.int64)
        out = np.zeros(len(digests), dtype=bool)
        for day in np.unique(day_arr).tolist():
            arr = self.sorted.get(day)
            if arr is None or not len(arr):
                continue
            mask = day_arr == day
            want = keys[mask]
            idx = np.minimum(np.searchsorted(arr, want), len(arr) - 1)
            out[mask] = arr[idx] == want
        return out.tolist()

    def contains(self, day: int, dg: bytes) -> bool:
        recent = self.recent.get(day)
        if recent is not None and dg in recent:
            return True
        arr = self.sorted.get(day)
        if arr is None or not len(arr):
            return False
        i = int(np.searchsorted(arr, np.bytes_(dg)))
        return i < len(arr) and arr[i] == np.bytes_(dg)

    def recent_has(self, day: int, dg: bytes) -> bool:
        recent = self.recent.get(day)
        return recent is not None and dg in recent

    def add(self, day: int, dg: bytes) -> None:
        recent = self.recent.get(day)
        if recent is None:
            recent = self.recent[day] = set()
        recent.add(dg)

    def compact(self) -> None:
        """Merge the recent sets that grew large into their day's sorted array."""
        for day, recent in list(self.recent.items()):
            arr = self.sorted.get(day)
            if len(recent) >= max(_MIN_MERGE, (0 if arr is None else len(arr)) // 4):
                self._merge(day)

    def _merge(self, day: int) -> None:
        recent = self.recent.pop(day, None)
        if not recent:
            return
        new = np.array(list(recent), dtype=f"S{DIGEST_BYTES}")
        old = self.sorted.get(day, _EMPTY)
        merged = np.concatenate([old, new]) if len(old) else new
        merged.sort(kind="stable")
        self.sorted[day] = merged

    def drop_before(self, day: int) -> None:
        """Forget every bucket of a day before ``day``."""
        for d in [d for d in self.days() if d < day]:
            self.sorted.pop(d, None)
            self.recent.pop(d, None)

    def clear(self) -> None:
        self.sorted.clear()
        self.recent.clear()

    def nbytes(self) -> int:
        """Measured memory: the arrays' buffers and objects, the recent sets and their bytes."""
        size = sys.getsizeof(self.sorted) + sys.getsizeof(self.recent)
        for arr in self.sorted.values():
            size += sys.getsizeof(arr)  # includes the owned data buffer
        for s in self.recent.values():
            size += sys.getsizeof(s) + sum(map(sys.getsizeof, s))
        return size
