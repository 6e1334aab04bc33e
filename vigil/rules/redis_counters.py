"""Windowed counters and distinct counts kept in Redis: the rules engine's counters for a
deployment where the state lives outside the processor (issue 21).

``Engine(ruleset, counter_factory=RedisCounters(client, prefix))`` runs every counter of a rule
set on Redis; the rules, labels and cooldowns stay in the engine. The windows are the in-process
counters' (:class:`vigil.rules.engine.Counter`): buckets of ``spec.bucket_ms``, the window at an
event is the ``spec.n_buckets`` buckets ending with the event's bucket, and only buckets less
than two windows older than the entity's newest one count.

**Layout.** One Redis hash per (counter, entity value): bucket -> the bucket's count, or for a
distinct count the bucket's values (a JSON list); ``<spec hash>:entities`` ranks the entities by
newest bucket (for the watermark prune). An event costs O(1) Redis work: the bucket it lands in
is written once per batch, whatever the number of its events.

**Write-through, arithmetic in the processor.** :class:`RedisCounter` is the in-process
:class:`~vigil.rules.engine.Counter` (same code, so the same answers) over the entities the
processor has read or written: the engine counts and evaluates each batch of ``chunk`` events
locally (:meth:`RedisCounters.load` first reads from Redis the entities the batch needs that it
does not hold, one pipelined round trip), then :meth:`RedisCounters.flush` writes the buckets the
batch changed (and drops the ones that left two windows) in one Lua call. A run on a fresh
prefix (position 0) holds every entity there is and reads nothing; after a restart the
entities are read as events touch them.

**Versioned, exactly once.** Every event gets the next stream position (the stream checkpoints
the last one with its offsets). Redis keeps the position it holds (``<prefix>pos``): a flush
applies only on top of the position the processor wrote last (else one error: another writer).
Before a field first changes after a checkpoint, its value as of that checkpoint is kept in an
undo hash (``<prefix>undo``, epoch ``<prefix>epoch`` = the checkpoint's position; the first
flush after the next checkpoint drops it). A processor restarting at checkpoint position P on a
Redis that holds position V > P (the lost tail: events applied after the last checkpoint, their
effects never committed) restores the undo hash first, so Redis holds the counters as of P
exactly and the replayed events count once (:meth:`RedisCounters.recover`). The watermark prune
deletes entities without undo, so it runs one checkpoint late (at a committed horizon: nothing it
deletes is visible to an event the stream can still accept, replayed or not).

The scripts touch keys they build, so a Redis Cluster would need one hash tag per prefix.
"""

from __future__ import annotations

import hashlib
import json

from vigil.rules.engine import Counter
from vigil.rules.language import CounterSpec

# ARGV: expected position, new position, epoch, pos key, epoch key, undo key, then per entity:
# key, index key, member, newest bucket, n set, n del, n undo, n set x (field, value),
# n del x field, n undo x field (fields whose value before this epoch goes to the undo hash)
_FLUSH = """
local cur = redis.call('GET', ARGV[4]) or '0'
if cur ~= ARGV[1] then
  return redis.error_reply('VIGIL position ' .. cur .. ' in Redis, expected ' .. ARGV[1])
end
local undo = ARGV[6]
if (redis.call('GET', ARGV[5]) or '0') ~= ARGV[3] then
  redis.call('DEL', undo)
  redis.call('SET', ARGV[5], ARGV[3])
end
local i, n = 7, #ARGV
while i <= n do
  local key, ns, nd, nu = ARGV[i], tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6])
  local idx, mem, hi = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  i = i + 7
  local sd = i + 2 * ns
  local su = sd + nd
  if nu > 0 then
    local fs = {}
    for j = 1, nu do fs[j] = ARGV[su + j - 1] end
    local olds = redis.call('HMGET', key, unpack(fs))
    local u = {}
    for j = 1, nu do
      u[2 * j - 1] = key .. '|' .. fs[j]
      u[2 * j] = olds[j] or ''
    end
    redis.call('HSET', undo, unpack(u))
  end
  if ns > 0 then redis.call('HSET', key, unpack(ARGV, i, sd - 1)) end
  if nd > 0 then redis.call('HDEL', key, unpack(ARGV, sd, su - 1)) end
  if hi ~= '' then redis.call('ZADD', idx, 'GT', hi, mem) end
  i = su + nu
end
redis.call('SET', ARGV[4], ARGV[2])
return 1
"""
# ARGV: the checkpoint's position, pos key, epoch key, undo key. Returns {status, position,
# epoch, fields restored}: status 0 nothing to do, 1 rolled back, -1 behind, -2 cannot roll back
_RECOVER = """
local p = tonumber(ARGV[1])
local v = tonumber(redis.call('GET', ARGV[2]) or '0')
local e = tonumber(redis.call('GET', ARGV[3]) or '0')
if v == p then return {0, v, e, 0} end
if v < p then return {-1, v, e, 0} end
if e ~= p then return {-2, v, e, 0} end
local kv = redis.call('HGETALL', ARGV[4])
for j = 1, #kv, 2 do
  local key, f = string.match(kv[j], '^(.*)|(%-?%d+)$')
  if kv[j + 1] == '' then
    redis.call('HDEL', key, f)
  else
    redis.call('HSET', key, f, kv[j + 1])
  end
end
redis.call('DEL', ARGV[4])
redis.call('SET', ARGV[2], ARGV[1])
return {1, v, e, #kv / 2}
"""
# KEYS: entities; ARGV: highest bucket to forget, key base of the spec
_PRUNE = """
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, ent in ipairs(gone) do
  redis.call('DEL', ARGV[2] .. ent)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return #gone
"""


class RedisStateError(RuntimeError):
    """Redis does not hold the counters the stream's checkpoint expects."""


def _encode(v) -> str:
    """A field value as a typed string: ints stay ints when read back."""
    return f"i:{v}" if isinstance(v, int) else f"s:{v}"


class RedisCounter(Counter):
    """One :class:`CounterSpec`: the in-process counter over the entities held, plus what the
    current batch changed (``touched``: (entity, bucket); ``dropped``: (entity, [buckets]) that
    left two windows), written to Redis by :meth:`RedisCounters.flush`. ``table`` is this
    processor's copy; ``dirty`` stays empty (nothing goes to the stream's checkpoint)."""

    __slots__ = ("absent", "base", "dropped", "index_key", "owner", "touched")

    def __init__(self, spec: CounterSpec, owner: RedisCounters) -> None:
        super().__init__(spec)
        self.owner = owner
        digest = hashlib.sha1(spec.key.encode()).hexdigest()[:12]
        self.base = f"{owner.prefix}{digest}:"
        self.index_key = f"{self.base}entities"
        self.touched: set = set()
        self.dropped: list = []
        self.absent: set = set()  # entities read from Redis and not there

    def _drops(self, v, d: dict, b: int) -> None:
        """The buckets ``Counter._advance`` to ``b`` will drop (two windows behind)."""
        if len(d) > 2 * self.n:
            lo = b - 2 * self.n
            old = [x for x in d if x <= lo]
            if old:
                self.dropped.append((v, old))

    def update(self, e: tuple) -> None:
        """Count one event (``Counter.update``, recording the bucket for the flush)."""
        if self.distinct:
            self._update_distinct(e)
            return
        v = e[self.ei]
        if v is None:
            return
        b = e[1] // self.bucket_ms
        ent = self.table.get(v)
        if ent is None:
            self.table[v] = [b, {b: 1}, 1]
        else:
            d = ent[1]
            if b > ent[0]:
                self._drops(v, d, b)
                self._advance(ent, b)
            d[b] = d.get(b, 0) + 1
            if b > ent[0] - self.n:
                ent[2] += 1
        self.touched.add((v, b))

    def _update_distinct(self, e: tuple) -> None:
        v = e[self.ei]
        o = e[self.oi]
        if v is None or o is None:
            return
        b = e[1] // self.bucket_ms
        ent = self.table.get(v)
        if ent is None:
            self.table[v] = [b, {b: {o}}, {o: 1}]
        else:
            d = ent[1]
            if b > ent[0]:
                self._drops(v, d, b)
                self._advance(ent, b)
            vals = d.get(b)
            if vals is None:
                d[b] = {o}
            elif o in vals:
                return  # already counted in this bucket: nothing changes
            else:
                vals.add(o)
            if b > ent[0] - self.n:
                agg = ent[2]
                agg[o] = agg.get(o, 0) + 1
        self.touched.add((v, b))

    def prune(self, watermark_ms: int) -> None:
        """Forget entities whose newest bucket is two windows behind the watermark, here and in
        Redis (with ``owner.defer_prune``: the watermark given at the previous call, a committed
        one: the prune keeps no undo)."""
        if self.owner.defer_prune:
            watermark_ms, self.owner.next_prune[self.spec.key] = (
                self.owner.next_prune.get(self.spec.key),
                watermark_ms,
            )
            if watermark_ms is None:
                return
        lo = watermark_ms // self.bucket_ms - 2 * self.n
        for v in [v for v, ent in self.table.items() if ent[0] <= lo]:
            del self.table[v]
        self.absent.clear()
        self.owner.prune_script(keys=[self.index_key], args=[lo, self.base])


class RedisCounters:
    """The counter factory (``Engine(..., counter_factory=RedisCounters(client, prefix))``) and
    the positions: ``position`` is the last event's, ``committed`` the last checkpoint's (both
    set by the stream at start; ``committed`` at each checkpoint, before its commit)."""

    batched = True

    def __init__(self, client, prefix: str, chunk: int = 5000, defer_prune: bool = False) -> None:
        if not prefix:
            raise ValueError(
                "a Redis key prefix is required (e.g. 'vigil:rules:'), so keys never collide"
            )
        self.client = client
        self.prefix = prefix
        self.chunk = chunk
        self.defer_prune = defer_prune
        self.next_prune: dict[str, int] = {}
        self.poskey, self.epochkey, self.undokey = (f"{prefix}{k}" for k in ("pos", "epoch", "undo"))
        self.position = 0
        self.committed = 0
        self.counters: list[RedisCounter] = []
        self.recovered: dict | None = None  # what recover() found, once it ran
        self.complete = False  # every entity in Redis is held here (a run from position 0)
        self.written = 0  # the position Redis holds (after recover())
        self.epoch: int | None = None  # the checkpoint position ``recorded`` is for
        self.recorded: set = set()  # (key, bucket) whose pre-epoch value is in the undo hash
        self.calls = 0
        self.reads = 0
        self.flush_script = client.register_script(_FLUSH)
        self.recover_script = client.register_script(_RECOVER)
        self.prune_script = client.register_script(_PRUNE)

    def __call__(self, spec: CounterSpec) -> RedisCounter:
        c = RedisCounter(spec, self)
        self.counters.append(c)
        return c

    def has_keys(self) -> bool:
        """Whether any key under the prefix exists (a fresh stream must start on none)."""
        return (
            next(iter(self.client.scan_iter(match=f"{self.prefix}*", count=1000)), None) is not None
        )

    def recover(self) -> dict:
        """Bring Redis to the checkpoint's position (``committed``): roll back what a run that
        died after it wrote (the undo hash). Then only a run from position 0 holds everything."""
        p = self.committed
        status, v, e, n = self.recover_script(args=[p, self.poskey, self.epochkey, self.undokey])
        if status == -1:
            raise RedisStateError(
                f"Redis holds the rule counters under {self.prefix!r} at stream position {v}, "
                f"behind the checkpoint's {p} (keys lost?): start a new --state and prefix."
            )
        if status == -2:
            raise RedisStateError(
                f"Redis holds the rule counters under {self.prefix!r} at stream position {v}, "
                f"ahead of the checkpoint's {p}, with undo for position {e} only: cannot roll "
                "back (was the state file replaced?); start a new --state and prefix."
            )
        self.position = self.written = p
        self.complete = p == 0
        self.recovered = {"position": p, "redis_position": v, "rolled_back_fields": n}
        for c in self.counters:
            c.table.clear()
            c.absent.clear()
        return self.recovered

    def load(self, plan: dict, events: list[tuple]) -> None:
        """Read from Redis the entities ``events`` touch that are not held here (one pipelined
        round trip); nothing on a run from position 0. ``plan[action] = (counters updated,
        counters queried)``."""
        if self.recovered is None:
            self.recover()
        if self.complete:
            return
        want: dict = {}
        for e in events:
            ups, qs = plan.get(e[3], ((), ()))
            for c in (*ups, *qs):
                v = e[c.ei]
                if v is not None and v not in c.table and v not in c.absent:
                    want[(id(c), v)] = (c, v)
        if not want:
            return
        pipe = self.client.pipeline(transaction=False)
        for c, v in want.values():
            pipe.hgetall(c.base + _encode(v))
        self.reads += len(want)
        for (c, v), got in zip(want.values(), pipe.execute(), strict=True):
            if not got:
                c.absent.add(v)
                continue
            if c.distinct:
                d = {int(k): set(json.loads(x)) for k, x in got.items()}
            else:
                d = {int(k): int(x) for k, x in got.items()}
            c.table[v] = c.entry(max(d), d)

    def flush(self, n: int) -> None:
        """Write what the last ``n`` events changed, on top of the position Redis holds (the one
        this processor wrote), and move the positions by ``n``."""
        if self.epoch != self.committed:  # a checkpoint committed: a new undo epoch
            self.epoch = self.committed
            self.recorded = set()
        recorded = self.recorded
        args: list = []
        for c in self.counters:
            if not c.touched and not c.dropped:
                continue
            fields: dict = {}
            for v, b in c.touched:
                fields.setdefault(v, set()).add(b)
            dropped: dict = {}
            for v, old in c.dropped:
                dropped.setdefault(v, []).extend(old)
                fields.setdefault(v, set())
            c.touched.clear()
            c.dropped.clear()
            table, distinct, base = c.table, c.distinct, c.base
            for v, bs in fields.items():
                ent = table.get(v)
                d = ent[1] if ent is not None else {}
                enc = _encode(v)
                key = base + enc
                sets, dels = [], [b for b in dropped.get(v, ()) if b not in bs]
                for b in bs:
                    x = d.get(b)
                    if x is None:
                        dels.append(b)
                    elif distinct:
                        sets += (b, json.dumps(list(x)))
                    else:
                        sets += (b, x)
                undo = []
                for b in (*bs, *dels):
                    if (key, b) not in recorded:
                        recorded.add((key, b))
                        undo.append(b)
                hi = ent[0] if ent is not None else ""
                args += (key, c.index_key, enc, hi, len(sets) // 2, len(dels), len(undo))
                args += sets
                args += dels
                args += undo
        new = self.position + n
        if args or new != self.written:
            head = [self.written, new, self.epoch, self.poskey, self.epochkey, self.undokey]
            try:
                self.flush_script(args=head + args)
            except Exception as exc:
                if "VIGIL position" in str(exc):
                    raise RedisStateError(
                        f"the rule counters under {self.prefix!r} changed under this processor "
                        f"({exc}): another processor on the same prefix?"
                    ) from exc
                raise
            self.calls += 1
        self.position = self.written = new


def redis_counter_factory(client, prefix: str) -> RedisCounters:
    """``Engine(..., counter_factory=...)``: every counter spec kept in Redis under ``prefix``."""
    return RedisCounters(client, prefix)
