"""Windowed counters and distinct counts kept in Redis: the rules engine's counters for a
deployment where the state lives outside the processor (issue 21).

``Engine(ruleset, counter_factory=RedisCounters(client, prefix))`` keeps every counter of a rule
set in Redis; the rules, labels and cooldowns stay in the engine. The windows are the in-process
counters' (:class:`vigil.rules.engine.Counter`): buckets of ``spec.bucket_ms``, the window at an
event is the ``spec.n_buckets`` buckets ending with the event's bucket, and only buckets less
than two windows older than the entity's newest one count.

**Layout.** One Redis hash per (counter, entity value), ``<prefix><spec hash>:<entity>`` (the
entity typed ``i:42`` / ``s:https://...``): bucket -> the bucket's count, or for a distinct count
the bucket's values as a JSON list; ``<prefix><spec hash>:entities`` ranks the entities by newest
bucket (for the watermark prune). Another process reads an entity's window from its hash.

**Write-through, arithmetic in the processor.** :class:`RedisCounter` is the in-process
:class:`~vigil.rules.engine.Counter` (the same code, so the same answers) over the entities this
processor holds, recording the value each bucket had before its first change since the last
flush. The engine counts and evaluates a chunk of events locally (:meth:`RedisCounters.load`
first reads from Redis, in one pipelined round trip, the entities the chunk needs that are not
held: none on a run from position 0, which holds everything there is); :meth:`RedisCounters.flush`
writes the changed buckets (one ``HSET`` per changed entity, whatever the number of its events,
and an ``HDEL`` of the buckets that left two windows) in one Lua call, every ``flush_events``
events without waiting for the answer (Redis applies it while the engine goes on; one flush in
flight) and at each checkpoint, waiting, before the checkpoint commits.

**Versioned, exactly once.** Every event gets the next stream position (the stream checkpoints
the last one with its offsets). Redis keeps the position it holds (``<prefix>pos``); a flush
applies only on top of the position this processor wrote last (else one error: another writer on
the prefix). Each flush appends its undo record (per changed field, the value before this flush;
``<prefix>undo``) to the epoch's (``<prefix>epoch``: the last committed checkpoint's position;
the first flush after the next checkpoint starts a new one). A processor restarting at
checkpoint position P on a Redis that holds V > P (the lost tail: events applied after the last
checkpoint, their effects never committed) restores each field's earliest recorded value in one
script (:meth:`RedisCounters.recover`), so Redis holds the counters as of P exactly and the
replayed events count once. V < P (keys lost) or an undo epoch other than P is refused. The
watermark prune deletes entities without undo, so it runs one checkpoint late (at a committed
horizon: nothing it deletes is visible to an event the stream can still accept, replayed or not).

The scripts touch keys they build, so a Redis Cluster would need one hash tag per prefix.
"""

from __future__ import annotations

import hashlib
import json
import logging

from vigil.errors import UserError
from vigil.rules.engine import Counter
from vigil.rules.language import CounterSpec

log = logging.getLogger(__name__)


def flush_events_setting() -> int:
    """``VIGIL_RULES_REDIS_FLUSH_EVENTS`` (:func:`vigil.config.rules_redis_flush_events`); a bad
    value is one error."""
    from vigil import config

    try:
        return config.rules_redis_flush_events()
    except ValueError as exc:
        raise UserError(str(exc)) from None


# ARGV: expected position, new position, epoch, pos key, epoch key, undo key, undo record, then
# per counter: key base, index key, n entities, then per entity: member, newest bucket ('' if
# gone), n set, n del, n set x (field, value), n del x field
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
redis.call('APPEND', undo, ARGV[7])
local i, n = 8, #ARGV
while i <= n do
  local base, idx, ne = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  local zs, k = {}, 0
  for _ = 1, ne do
    local mem, hi, ns, nd = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
    local key = base .. mem
    i = i + 4
    local sd = i + 2 * ns
    if ns > 0 then redis.call('HSET', key, unpack(ARGV, i, sd - 1)) end
    if nd > 0 then redis.call('HDEL', key, unpack(ARGV, sd, sd + nd - 1)) end
    if hi ~= '' then
      zs[k + 1], zs[k + 2] = hi, mem
      k = k + 2
    end
    i = sd + nd
  end
  for j = 1, k, 4000 do
    redis.call('ZADD', idx, 'GT', unpack(zs, j, math.min(j + 3999, k)))
  end
end
redis.call('SET', ARGV[4], ARGV[2])
return 1
"""
# ARGV: the checkpoint's position, the position Redis holds, pos key, undo key, then (key,
# field, value before the epoch; '' absent) triples
_RESTORE = """
if (redis.call('GET', ARGV[3]) or '0') ~= ARGV[2] then
  return redis.error_reply('VIGIL position changed during the roll back')
end
for j = 5, #ARGV, 3 do
  if ARGV[j + 2] == '' then
    redis.call('HDEL', ARGV[j], ARGV[j + 1])
  else
    redis.call('HSET', ARGV[j], ARGV[j + 1], ARGV[j + 2])
  end
end
redis.call('DEL', ARGV[4])
redis.call('SET', ARGV[3], ARGV[1])
return 1
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
    """One :class:`CounterSpec`: the in-process counter over the entities held, plus what
    changed since the last flush: ``touched[entity][bucket]`` = the bucket's value before its
    first change (a count, 0 if absent; a distinct count's values, None if absent), the undo
    record. ``table`` is this processor's copy; ``dirty`` stays empty (nothing goes to the
    stream's checkpoint)."""

    __slots__ = ("absent", "base", "index_key", "ints", "owner", "touched")

    def __init__(self, spec: CounterSpec, owner: RedisCounters) -> None:
        super().__init__(spec)
        self.owner = owner
        digest = hashlib.sha1(spec.key.encode()).hexdigest()[:12]
        self.base = f"{owner.prefix}{digest}:"
        self.index_key = f"{self.base}entities"
        self.touched: dict = {}  # entity -> {bucket: its value before the first change}
        self.absent: set = set()  # entities read from Redis and not there
        self.ints = True  # a distinct count's values all ints so far (stored as str(list))

    def _drops(self, v, d: dict, b: int) -> None:
        """Before ``Counter._advance`` to ``b``: the buckets it drops (two windows behind)."""
        if len(d) > 2 * self.n:
            lo = b - 2 * self.n
            t = self.touched.get(v)
            if t is None:
                t = self.touched[v] = {}
            for x, val in d.items():
                if x <= lo and x not in t:
                    t[x] = tuple(val) if self.distinct else val

    def update(self, e: tuple) -> None:
        """Count one event (``Counter.update``, recording the bucket's value before)."""
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
            t = self.touched.get(v)
            if t is None:
                self.touched[v] = {b: 0}
            elif b not in t:
                t[b] = 0
        else:
            d = ent[1]
            if b > ent[0]:
                self._drops(v, d, b)
                self._advance(ent, b)
            x = d.get(b, 0)
            t = self.touched.get(v)
            if t is None:
                self.touched[v] = {b: x}
            elif b not in t:
                t[b] = x
            d[b] = x + 1
            if b > ent[0] - self.n:
                ent[2] += 1

    def _update_distinct(self, e: tuple) -> None:
        v = e[self.ei]
        o = e[self.oi]
        if v is None or o is None:
            return
        b = e[1] // self.bucket_ms
        if self.ints and type(o) is not int:
            self.ints = False
        ent = self.table.get(v)
        t = self.touched.get(v)
        if ent is None:
            self.table[v] = [b, {b: {o}}, {o: 1}]
            if t is None:
                self.touched[v] = {b: None}
            elif b not in t:
                t[b] = None
            return
        d = ent[1]
        if b > ent[0]:
            self._drops(v, d, b)
            self._advance(ent, b)
            t = self.touched.get(v)
        vals = d.get(b)
        if vals is None:
            d[b] = {o}
            pre = None
        elif o in vals:
            return  # already counted in this bucket: nothing changes
        else:
            pre = vals
        if t is None:
            self.touched[v] = {b: None if pre is None else tuple(pre)}
        elif b not in t:
            t[b] = None if pre is None else tuple(pre)
        if pre is not None:
            pre.add(o)
        if b > ent[0] - self.n:
            agg = ent[2]
            agg[o] = agg.get(o, 0) + 1

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
        self.owner.drain()
        for v in [v for v, ent in self.table.items() if ent[0] <= lo]:
            del self.table[v]
        self.absent.clear()
        self.owner.prune_script(keys=[self.index_key], args=[lo, self.base])


class RedisCounters:
    """The counter factory (``Engine(..., counter_factory=RedisCounters(client, prefix))``) and
    the positions: ``position`` is the last event's, ``committed`` the last checkpoint's (both
    set by the stream at start; ``committed`` at each checkpoint, before its commit).

    ``flush_events``: write every that many events (and at each checkpoint; None: the setting
    ``VIGIL_RULES_REDIS_FLUSH_EVENTS``, default 20,000). ``hold``: after a
    flush, a counter holding more entities than that forgets them all (they are read back from
    Redis as events need them; None, the default: the processor holds every entity it touched,
    the in-process counters' memory)."""

    batched = True

    def __init__(
        self,
        client,
        prefix: str,
        chunk: int = 5000,
        defer_prune: bool = False,
        flush_events: int | None = None,
        hold: int | None = None,
    ) -> None:
        if not prefix:
            raise ValueError(
                "a Redis key prefix is required (e.g. 'vigil:rules:'), so keys never collide"
            )
        self.client = client
        self.prefix = prefix
        self.defer_prune = defer_prune
        self.next_prune: dict[str, int] = {}
        self.poskey, self.epochkey, self.undokey = (f"{prefix}{k}" for k in ("pos", "epoch", "undo"))
        self.flush_events = flush_events or flush_events_setting()
        self.chunk = min(chunk, self.flush_events)  # the engine's unit: load, evaluate, done
        self.hold = hold  # entities held per counter after a flush (None: all)
        self.position = 0
        self._committed = 0
        self.counters: list[RedisCounter] = []
        self.recovered: dict | None = None  # what recover() found, once it ran
        self.complete = False  # every entity in Redis is held here (a run from position 0)
        self.written = 0  # the position Redis holds (after recover())
        self.epoch = 0  # the checkpoint position the undo records in Redis go back to
        self.calls = 0
        self.reads = 0
        self.flush_sha = hashlib.sha1(_FLUSH.encode()).hexdigest()
        self.conn = None  # the connection the flushes go out on (the first opens it)
        self.in_flight = False
        self.restore_script = client.register_script(_RESTORE)
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
        died after it wrote (the undo records of the epoch, the earliest value of each field
        restored, in one script). Then only a run from position 0 holds everything."""
        p = self._committed
        self.drain()
        v, e, blob = self.client.mget(self.poskey, self.epochkey, self.undokey)
        v, e = int(v or 0), int(e or 0)
        restored = 0
        if v < p:
            raise RedisStateError(
                f"Redis holds the rule counters under {self.prefix!r} at stream position {v}, "
                f"behind the checkpoint's {p} (keys lost?): start a new --state and prefix."
            )
        if v > p:
            if e != p:
                raise RedisStateError(
                    f"Redis holds the rule counters under {self.prefix!r} at stream position "
                    f"{v}, ahead of the checkpoint's {p}, with undo for position {e} only: "
                    "cannot roll back (was the state file replaced?); start a new --state and "
                    "prefix."
                )
            before: dict = {}  # (key, field) -> its value before the epoch: the earliest record
            for line in (blob or b"").split(b"\n"):
                if line:
                    rec = json.loads(line)  # [key, {field: value before}, ...] per flush
                    for j in range(0, len(rec), 2):
                        for field, x in rec[j + 1].items():
                            before.setdefault((rec[j], field), x)
            args: list = [p, v, self.poskey, self.undokey]
            for (key, field), x in before.items():
                if not x:  # 0 / None: absent
                    args += (key, field, "")
                else:
                    args += (key, field, json.dumps(x) if isinstance(x, list) else x)
            self.restore_script(args=args)
            restored = len(before)
            log.info(
                "rules: Redis counters under %r rolled back from stream position %d to the "
                "checkpoint's %d (%d fields restored)",
                self.prefix,
                v,
                p,
                restored,
            )
        self.position = self.written = p
        self.complete = p == 0
        self.recovered = {"position": p, "redis_position": v, "rolled_back_fields": restored}
        for c in self.counters:
            c.table.clear()
            c.absent.clear()
            c.touched.clear()
        return self.recovered

    def load(self, plan: dict, events: list[tuple]) -> None:
        """Read from Redis the entities ``events`` touch that are not held here (one pipelined
        round trip); nothing on a run from position 0. ``plan[action] = (counters updated,
        counters queried)``."""
        if self.recovered is None:
            self.recover()
        if self.complete:
            return
        self.drain()
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
                if c.ints and any(type(o) is not int for vals in d.values() for o in vals):
                    c.ints = False  # written as JSON from now on
            else:
                d = {int(k): int(x) for k, x in got.items()}
            c.table[v] = c.entry(max(d), d)

    def done(self, n: int) -> None:
        """The engine counted and evaluated ``n`` more events (the next positions); their
        changes are written at the next checkpoint (``committed`` set) or once ``flush_events``
        are pending."""
        self.position += n
        if self.position - self.written >= self.flush_events:
            self.flush(wait=False)

    @property
    def committed(self) -> int:
        return self._committed

    @committed.setter
    def committed(self, position: int) -> None:
        """The stream sets it inside its checkpoint's transaction, before the commit: the
        pending changes are written first (so Redis holds the checkpoint's position when it
        commits), then a new undo epoch starts at the next flush."""
        if self.recovered is not None:
            if self.written != self.position:
                self.flush()
            self.drain()
        self._committed = position

    def flush(self, wait: bool = True) -> None:
        """Write the changes of the events since the last flush (with their undo record), on
        top of the position Redis holds (the one this processor wrote), in one Lua call on the
        processor's own connection; ``wait=False``: its answer is read at the next flush or
        :meth:`drain` (Redis applies it while the engine goes on)."""
        if self.recovered is None:
            self.recover()
        self.epoch = self._committed
        dumps = json.dumps
        args: list = []
        undo: list = []
        evict: list = []
        for c in self.counters:
            touched = c.touched
            if not touched:
                continue
            c.touched = {}
            table, distinct, base = c.table, c.distinct, c.base
            if self.hold is not None and len(table) > self.hold:
                evict.append(c)
            enc_vals = str if c.ints else dumps
            args += (base, c.index_key, len(touched))
            for v, t in touched.items():
                ent = table.get(v)
                enc = _encode(v)
                undo += (base + enc, t)
                if ent is None:  # pruned since
                    args += (enc, "", 0, len(t), *t)
                    continue
                d = ent[1]
                if distinct:
                    sets = [y for b in t if (x := d.get(b)) for y in (b, enc_vals(list(x)))]
                else:
                    sets = [y for b in t if (x := d.get(b)) for y in (b, x)]
                if len(sets) == 2 * len(t):
                    args += (enc, ent[0], len(t), 0)
                    args += sets
                else:
                    dels = [b for b in t if b not in d]
                    args += (enc, ent[0], len(sets) // 2, len(dels))
                    args += sets
                    args += dels
        head = [self.written, self.position, self.epoch, self.poskey, self.epochkey, self.undokey]
        head.append(dumps(undo) + "\n" if undo else "")
        self.drain()  # the previous flush's answer (one in flight at most)
        if self.conn is None:
            self.client.script_load(_FLUSH)
            self.conn = self.client.connection_pool.get_connection()
        self.conn.send_command("EVALSHA", self.flush_sha, 0, *head, *args)
        self.in_flight = True
        self.calls += 1
        self.written = self.position
        for c in evict:  # in Redis once this flush is applied (read after a drain)
            c.table.clear()
            c.absent.clear()
            self.complete = False
        if wait:
            self.drain()

    def drain(self) -> None:
        """Wait for the flush in flight, if any (before anything else reads or writes Redis,
        and before a checkpoint commits)."""
        if not self.in_flight:
            return
        self.in_flight = False
        try:
            self.conn.read_response()
        except Exception as exc:
            self.conn.disconnect()
            self.conn = None
            if "VIGIL position" in str(exc):
                raise RedisStateError(
                    f"the rule counters under {self.prefix!r} changed under this processor "
                    f"({exc}): another processor on the same prefix?"
                ) from exc
            raise


def redis_counter_factory(client, prefix: str) -> RedisCounters:
    """``Engine(..., counter_factory=...)``: every counter spec kept in Redis under ``prefix``."""
    return RedisCounters(client, prefix)
