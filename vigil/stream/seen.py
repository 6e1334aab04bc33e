"""The event ids the stream has applied within the lateness horizon, kept compact and exact.

An id is kept as its 128-bit BLAKE2b digest (16 bytes, fixed width): two different ids share a
digest with probability 2**-128 per pair, so for any real stream the set answers exactly. Ids
live in buckets by the UTC day of their event: a sorted numpy array (``S16``) per day, plus a
small set of the digests added since the last compaction. A bucket costs 16 bytes per id once
compacted (a Python set of str cost ~100); a whole day is forgotten at once when it leaves the
horizon.

Membership is asked for a batch at a time (:meth:`SeenIds.hits`: one ``searchsorted`` per day
present in the batch) against the sorted arrays, and per event against the recent set, which
catches duplicates inside the batch. The bulk path (:mod:`vigil.stream.apply`) merges a batch's
new digests straight into the sorted arrays (:meth:`SeenIds.add_sorted`).

Digest versions (recorded per checkpoint file): 1, the BLAKE2b digest of every id; 2 (new
checkpoints), an id of at most 15 UTF-8 bytes is kept as itself (its bytes, zero-padded, then
its length in the 16th byte: no hashing, no collision at all) and a longer id as its BLAKE2b
digest. A version-2 code of a short id equals the digest of another id only if BLAKE2b hits that
exact 16-byte value: the same 2**-128 chance per pair as two digests. :func:`digests_of`
computes a batch's codes in one pass (numpy) when its ids are ASCII.
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
DIGEST_VERSION = 2  # of new checkpoints; see the module doc
_SHORT = DIGEST_BYTES - 1


def digest_of(event_id: str, version: int = DIGEST_VERSION) -> bytes:
    """The 16-byte code of one id under a digest version (see the module doc)."""
    if version >= 2:
        raw = event_id.encode("utf-8")
        if len(raw) <= _SHORT:
            return raw.ljust(_SHORT, b"\0") + bytes((len(raw),))
    return digest(event_id)


def digests_of(ids: list[str], version: int = DIGEST_VERSION) -> np.ndarray:
    """The codes of many ids as an ``S16`` array (equal to :func:`digest_of` of each)."""
    n = len(ids)
    joined = "".join(ids)
    if version < 2 or not joined.isascii():
        out = np.empty(n, dtype=f"S{DIGEST_BYTES}")
        out[:] = [digest_of(e, version) for e in ids]
        return out
    data = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)  # ASCII: bytes = chars
    lens = np.fromiter(map(len, ids), dtype=np.int64, count=n)
    starts = np.zeros(n, dtype=np.int64)
    np.cumsum(lens[:-1], out=starts[1:])
    codes = np.zeros((n, DIGEST_BYTES), dtype=np.uint8)
    short = lens <= _SHORT
    if short.all():
        rows = np.repeat(np.arange(n), lens)
        cols = np.arange(len(data)) - np.repeat(starts, lens)
        codes[rows, cols] = data
        codes[:, _SHORT] = lens
    else:
        idx = np.flatnonzero(short)
        sl = lens[idx]
        rows = np.repeat(idx, sl)
        src = (
            np.repeat(starts[idx], sl)
            + np.arange(int(sl.sum()))
            - np.repeat(np.cumsum(sl) - sl, sl)
        )
        codes[rows, src - np.repeat(starts[idx], sl)] = data[src]
        codes[idx, _SHORT] = sl
        for i in np.flatnonzero(~short).tolist():
            codes[i] = np.frombuffer(digest(ids[i]), dtype=np.uint8)
    return codes.view(f"S{DIGEST_BYTES}").reshape(n)


def as_bytes(codes: np.ndarray) -> list[bytes]:
    """16-byte ``bytes`` of an ``S16`` array (``tolist`` would strip trailing zero bytes)."""
    raw = np.ascontiguousarray(codes).tobytes()
    return [raw[i : i + DIGEST_BYTES] for i in range(0, len(raw), DIGEST_BYTES)]


class SeenIds:
    """Digests of seen event ids per UTC day (days as ints since 1970-01-01)."""

    def __init__(self) -> None:
        self.sorted: dict[int, np.ndarray] = {}
        self.recent: dict[int, set[bytes]] = {}

    def __len__(self) -> int:
        return sum(map(len, self.sorted.values())) + sum(map(len, self.recent.values()))

    def days(self) -> set[int]:
        return set(self.sorted) | set(self.recent)

    def load(self, day: int, digests: list[bytes], arrays: list[np.ndarray] = ()) -> None:
        """Add many digests of one day (e.g. from the checkpoint: rows and ``S16`` blocks),
        compacted at once."""
        if digests:
            self.recent.setdefault(day, set()).update(digests)
            self._merge(day)
        if arrays:
            old = self.sorted.get(day)
            parts = [a for a in (old, *arrays) if a is not None and len(a)]
            if parts:
                self.sorted[day] = np.unique(np.concatenate(parts))

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

    def hits_array(self, days: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """:meth:`hits` for arrays (int64 days, ``S16`` codes), answered as a bool array; the
        recent sets are merged into the sorted arrays first, so nothing else needs asking."""
        for day in [d for d, r in self.recent.items() if r]:
            self._merge(day)
        out = np.zeros(len(codes), dtype=bool)
        if not self.sorted or not len(codes):
            return out
        for day in np.unique(days).tolist():
            arr = self.sorted.get(day)
            if arr is None or not len(arr):
                continue
            mask = days == day
            want = codes[mask]
            idx = np.minimum(np.searchsorted(arr, want), len(arr) - 1)
            out[mask] = arr[idx] == want
        return out

    def add_sorted(self, days: np.ndarray, codes: np.ndarray) -> None:
        """Add distinct codes not yet present (int64 days, ``S16`` codes) to the sorted arrays."""
        for day in np.unique(days).tolist():
            new = np.sort(codes[days == day])
            arr = self.sorted.get(day)
            if arr is None or not len(arr):
                self.sorted[day] = new
            else:
                self.sorted[day] = np.insert(arr, np.searchsorted(arr, new), new)

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


# -- persistence in the checkpoint ---------------------------------------------------------------
# Within the memory budget the checkpoint keeps a day's new codes of one checkpoint as one row of
# ``seen_block`` (the sorted codes, concatenated): one insert per day and checkpoint instead of
# one B-tree insert per id. Over a quarter of the budget, the processor asks the checkpoint per
# event instead: the codes then live as rows of the indexed table ``seen(day, digest)``
# (:func:`blocks_to_rows` converts, once). Rows written by older versions are read as well.
BLOCKS_BEFORE_MERGE = 32  # a day's blocks are rewritten as one when it has this many


def count_seen(con, from_day: int) -> int:
    rows = con.execute("select count(*) from seen where day >= ?", (from_day,)).fetchone()[0]
    blocks = con.execute(
        "select coalesce(sum(length(digests)), 0) from seen_block where day >= ?", (from_day,)
    ).fetchone()[0]
    return rows + blocks // DIGEST_BYTES


def load_seen(con, seen: SeenIds, from_day: int) -> dict[int, int]:
    """Load the rows and blocks of days >= ``from_day`` into ``seen``; blocks per day."""
    rows: dict[int, list[bytes]] = {}
    for day, dg in con.execute("select day, digest from seen where day >= ?", (from_day,)):
        rows.setdefault(day, []).append(dg)
    blocks: dict[int, list[np.ndarray]] = {}
    for day, blob in con.execute("select day, digests from seen_block where day >= ?", (from_day,)):
        blocks.setdefault(day, []).append(np.frombuffer(blob, dtype=f"S{DIGEST_BYTES}"))
    for day in set(rows) | set(blocks):
        seen.load(day, rows.get(day, []), blocks.get(day, []))
    return {day: len(b) for day, b in blocks.items()}


def write_seen_blocks(
    con, seen: SeenIds, new: dict[int, np.ndarray], blocks: dict[int, int]
) -> None:
    """Insert each day's new codes as one block (inside the caller's transaction); a day with
    many blocks is rewritten as one block of its whole sorted array."""
    seq = con.execute("select coalesce(max(seq), 0) + 1 from seen_block").fetchone()[0]
    for day, codes in sorted(new.items()):
        if blocks.get(day, 0) + 1 >= BLOCKS_BEFORE_MERGE:
            recent = seen.recent.get(day)
            parts = [seen.sorted.get(day, _EMPTY), codes]
            if recent:
                parts.append(np.array(list(recent), dtype=f"S{DIGEST_BYTES}"))
            codes = np.unique(np.concatenate(parts))
            con.execute("delete from seen_block where day = ?", (day,))
            blocks[day] = 0
        con.execute("insert into seen_block values (?,?,?)", (day, seq, codes.tobytes()))
        blocks[day] = blocks.get(day, 0) + 1
        seq += 1


def blocks_to_rows(con) -> None:
    """Move every block's codes into the indexed ``seen`` rows, in one transaction."""
    con.execute("begin immediate")
    try:
        for day, blob in con.execute("select day, digests from seen_block").fetchall():
            codes = np.frombuffer(blob, dtype=f"S{DIGEST_BYTES}")
            con.executemany(
                "insert or ignore into seen values (?,?)", [(day, c) for c in as_bytes(codes)]
            )
        con.execute("delete from seen_block")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
