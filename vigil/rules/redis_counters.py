"""Windowed counters and distinct counts kept in Redis: the rules engine's counters for a
deployment where the state lives outside the processor (issue 21).

:class:`RedisCounter` has the interface of :class:`vigil.rules.engine.Counter` (``update``,
``query``, ``members``, ``prune``) and the same windows: buckets of ``spec.bucket_ms``, the
window at an event is the ``spec.n_buckets`` buckets ending with the event's bucket, buckets two
windows older than the entity's newest one are dropped. ``Engine(ruleset,
counter_factory=redis_counter_factory(client, prefix))`` runs every counter of a rule set on
Redis; the rules, labels and cooldowns stay in the engine.

Keys (``<prefix><spec hash>:<entity>``, the entity typed ``i:42`` / ``s:https://...``):

- ``...:b:<bucket>``: a set per bucket; a count's members are the events' ids, a distinct
  count's the counted values. Counting by event id makes an update idempotent: an event applied
  again (a batch replayed after a crash, before its checkpoint committed) changes nothing, so
  the counts stay exact without a transaction spanning Redis and the checkpoint;
- ``...:idx``: a sorted set of the entity's buckets (score = bucket);
- ``<prefix><spec hash>:entities``: a sorted set of entities by their newest bucket (for prune).

An update is a Lua call (add, index, drop old buckets) queued on a pipeline the counters of
one factory share; the queue is sent before any query, members or prune (and by :meth:`flush`),
so the updates of the events between two rule evaluations travel in one round trip, and a query
is one more. The in-process counters remain the fast path of one processor; these are for
processors that share counters. Call :meth:`RedisCounter.flush` before others read the keys.
"""

from __future__ import annotations

import hashlib

from vigil.rules.language import FIELD_INDEX, CounterSpec

# KEYS: bucket set, index, entities; ARGV: member, bucket, 2 windows (buckets), entity
_UPDATE = """
local b = tonumber(ARGV[2])
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], b, b)
redis.call('ZADD', KEYS[3], 'GT', b, ARGV[4])
local lo = tonumber(redis.call('ZREVRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2]) - tonumber(ARGV[3])
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', lo)
if #old > 0 then
  local base = string.sub(KEYS[1], 1, #KEYS[1] - #ARGV[2])
  for _, x in ipairs(old) do redis.call('DEL', base .. x) end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', lo)
end
return 1
"""
# KEYS: index; ARGV: lowest bucket (exclusive), bucket, key base, distinct (1/0), members (1/0)
_QUERY = """
local buckets = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], ARGV[2])
if #buckets == 0 then
  if ARGV[5] == '1' then return {} end
  return 0
end
if ARGV[4] == '1' then
  local keys = {}
  for i, x in ipairs(buckets) do keys[i] = ARGV[3] .. x end
  local all = redis.call('SUNION', unpack(keys))
  if ARGV[5] == '1' then return all end
  return #all
end
local n = 0
for _, x in ipairs(buckets) do n = n + redis.call('SCARD', ARGV[3] .. x) end
return n
"""
# KEYS: entities; ARGV: highest bucket to forget, key base of the spec
_PRUNE = """
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, ent in ipairs(gone) do
  local idx = ARGV[2] .. ent .. ':idx'
  for _, x in ipairs(redis.call('ZRANGE', idx, 0, -1)) do
    redis.call('DEL', ARGV[2] .. ent .. ':b:' .. x)
  end
  redis.call('DEL', idx)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return #gone
"""


def _encode(v) -> str:
    """A field value as a typed string: ints stay ints when read back."""
    return f"i:{v}" if isinstance(v, int) else f"s:{v}"


def _decode(s: bytes | str):
    s = s.decode() if isinstance(s, bytes) else s
    return int(s[2:]) if s.startswith("i:") else s[2:]


def _sort_key(x) -> tuple:
    return (isinstance(x, str), x)


class _Batch:
    """A pipeline of queued updates, shared by the counters of one factory."""

    def __init__(self, client) -> None:
        self.pipe = client.pipeline(transaction=False)
        self.queued = 0

    def flush(self) -> None:
        if self.queued:
            self.pipe.execute()
            self.queued = 0


class RedisCounter:
    """One :class:`CounterSpec` kept in Redis (see the module doc)."""

    def __init__(self, spec: CounterSpec, client, prefix: str, batch: _Batch | None = None) -> None:
        self.spec = spec
        self.client = client
        self.batch = batch or _Batch(client)
        digest = hashlib.sha1(spec.key.encode()).hexdigest()[:12]
        self.base = f"{prefix}{digest}:"
        self.bucket_ms = spec.bucket_ms
        self.n = spec.n_buckets
        self.ei = FIELD_INDEX[spec.entity]
        self.oi = FIELD_INDEX[spec.of] if spec.of else None
        self.distinct = spec.kind == "distinct"
        # the checkpoint writes these for in-process counters: nothing to write here
        self.table: dict = {}
        self.dirty: set = set()
        self._update = client.register_script(_UPDATE)
        self._query = client.register_script(_QUERY)
        self._prune = client.register_script(_PRUNE)

    def _keys(self, v, b: int) -> list[str]:
        ent = f"{self.base}{_encode(v)}"
        return [f"{ent}:b:{b}", f"{ent}:idx", f"{self.base}entities"]

    def update(self, e: tuple) -> None:
        v = e[self.ei]
        member = e[self.oi] if self.distinct else e[0]
        if v is None or member is None:
            return
        b = e[1] // self.bucket_ms
        self._update(
            keys=self._keys(v, b),
            args=[_encode(member), b, 2 * self.n, _encode(v)],
            client=self.batch.pipe,
        )
        self.batch.queued += 1

    def flush(self) -> None:
        """Send the queued updates (of every counter of the same factory)."""
        self.batch.flush()

    def _window(self, e: tuple, members: bool):
        v = e[self.ei]
        if v is None:
            return [] if members else 0
        self.batch.flush()
        b = e[1] // self.bucket_ms
        ent = f"{self.base}{_encode(v)}"
        distinct = "1" if (self.distinct or members) else "0"
        return self._query(
            keys=[f"{ent}:idx"],
            args=[b - self.n, b, f"{ent}:b:", distinct, "1" if members else "0"],
        )

    def query(self, e: tuple) -> int:
        return int(self._window(e, members=False))

    def members(self, e: tuple) -> list:
        """A distinct counter's values in the window at ``e`` (sorted: ints, then strings)."""
        return sorted((_decode(x) for x in self._window(e, members=True)), key=_sort_key)

    def prune(self, watermark_ms: int) -> None:
        """Forget entities whose newest bucket is two windows behind the watermark."""
        self.batch.flush()
        lo = watermark_ms // self.bucket_ms - 2 * self.n
        self._prune(keys=[f"{self.base}entities"], args=[lo, self.base])


def redis_counter_factory(client, prefix: str):
    """``Engine(..., counter_factory=...)``: every counter spec kept in Redis under ``prefix``."""
    if not prefix:
        raise ValueError(
            "a Redis key prefix is required (e.g. 'vigil:rules:'), so keys never collide"
        )

    batch = _Batch(client)

    def make(spec: CounterSpec) -> RedisCounter:
        return RedisCounter(spec, client, prefix, batch)

    return make
