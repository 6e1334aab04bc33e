"""The Redis consumer's bulk merge of its partitions (vigil.stream.sources.RedisSource.pump).

Entries with hand-chosen ids (equal ids in two streams included) are written to 3 partitions;
the consumer reads them with tiny XREADGROUP counts and small pumps, so buffers run dry, are
refilled and entries go back for the next pump. The events must reach the state in the order
of (entry id, stream key), sorted here independently, each once, with the partitions' last ids
as positions; after a restart from the checkpoint, the entries re-delivered as pending are
skipped.
"""

from __future__ import annotations

import json
import uuid

import pytest

from vigil.stream.sources import RedisSource
from vigil.stream.state import StreamState

pytestmark = pytest.mark.redis


def _line(k: int) -> bytes:
    ts = f"2026-09-01T10:{k // 60 % 60:02d}:{k % 60:02d}.000Z"
    return json.dumps(
        {"event_id": f"m{k}", "event_ts": ts, "user_id": 1 + k % 5, "action": "like", "post_id": 1}
    ).encode()


def _fill(client, key: str) -> list[tuple[tuple[int, int], str, list[int]]]:
    """Three partitions; returns (id, stream, event numbers) of every entry."""
    ids = {
        0: ["1000-0", "1000-1", "1005-0", "1010-0", "1010-1", "1011-0", "1030-0"],
        1: ["1000-0", "1004-0", "1005-0", "1012-0", "1013-0", "1020-0"],
        2: ["999-0", "1005-0", "1006-0", "1040-0"],
    }
    entries = []
    k = 0
    for p, stream_ids in ids.items():
        for j, eid in enumerate(stream_ids):
            n = 1 + (j % 3)  # 1 to 3 lines per entry
            nums = list(range(k, k + n))
            k += n
            lines = b"\n".join(_line(x) for x in nums)
            client.xadd(f"{key}:{p}", {"lines": lines, "file": "x"}, id=eid)
            ms, seq = eid.split("-")
            entries.append(((int(ms), int(seq)), f"{key}:{p}", nums))
    return entries


def test_partitions_merge_in_id_then_stream_order_across_refills(tmp_path):
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    key = f"vigil-test-merge:{uuid.uuid4().hex[:8]}"
    try:
        entries = _fill(client, key)
        expected = [f"m{x}" for _, _, nums in sorted(entries) for x in nums]
        src = RedisSource(key, partitions=3, consumer=0, consumers=1, block_ms=10)
        src.count = 2  # refills every two entries
        state = StreamState(tmp_path / "s.sqlite")
        got: list[str] = []
        state.on_applied = lambda evs: got.extend(ev[0] for ev in evs)
        pumps = 0
        while src.pump(state, 4):
            pumps += 1
        assert got == expected
        assert pumps >= len(expected) // 6
        assert state.counters["read"] == len(expected) == state.counters["applied"]
        assert state.positions == {
            f"redis:{key}:0": "1030-0",
            f"redis:{key}:1": "1020-0",
            f"redis:{key}:2": "1040-0",
        }
        state.checkpoint()
        state.close()
        src.close()  # not acknowledged: all entries stay pending for this consumer
        again = RedisSource(key, partitions=3, consumer=0, consumers=1, block_ms=10)
        restarted = StreamState(tmp_path / "s.sqlite")
        assert again.pump(restarted, 100) == 0
        assert restarted.counters["read"] == len(expected)
        restarted.close()
        again.close()
    finally:
        client.delete(*[f"{key}:{p}" for p in range(3)])
        client.close()
