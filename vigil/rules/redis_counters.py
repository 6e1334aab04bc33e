"""Windowed counters and distinct counts kept in Redis: the rules engine's counters for a
deployment where the state lives outside the processor (issue 21).

``Engine(ruleset, counter_factory=RedisCounters(client, prefix))`` runs every counter of a rule
set on Redis; the rules, labels and cooldowns stay in the engine. The windows are the in-process
counters' (:class:`vigil.rules.engine.Counter`): buckets of ``spec.bucket_ms``, the window at an
event is the ``spec.n_buckets`` buckets ending with the event's bucket, and only buckets less
than two windows older than the entity's newest one count.

**Positions.** Every event the engine processes gets the next stream position (1, 2, ...; the
stream checkpoints the last one with its offsets, so after a crash the events replayed from the
checkpoint get the positions they had). Each set member is scored by the position that added it
(the lowest, for a value counted again), and a query at position p counts only members scored
<= p, with "the entity's newest bucket" taken as of p too. So an event replayed after a crash
sees exactly what it saw the first time, although Redis already holds the later events of the
lost tail (which the replay then adds again, unchanged: same members, same positions). Nothing
an event after the last checkpoint can still see is deleted: buckets are dropped two windows
behind the newest bucket *as of the committed position* (:attr:`RedisCounters.committed`), and
the watermark prune runs one checkpoint late (the horizon of a committed checkpoint).

**One script per batch.** :meth:`RedisCounters.run` sends the updates and queries of up to
``chunk`` events in one Lua call, in the engine's order (each event's updates, then every query
its action's rules can make); the engine then evaluates the rules on the answers. A query has no
side effect, so asking every query up front decides the same as the in-process engine's lazy
``and``/``or``. ``members`` (for ``from:`` effects, when a rule fires) is one more call.

**Fast path.** The key ``<prefix>maxpos`` holds the highest position applied. An event above
it (not a replay) reads running tallies: a count's total of the window ending at the entity's
newest bucket (moved like the in-process counter's), a distinct count's values by last bucket,
and the newest buckets memoized for the call; an event replayed at or below it (after a crash)
reads the members with their positions, bucket by bucket.

Keys (``<prefix><spec hash>:<entity>``, the entity typed ``i:42`` / ``s:https://...``):
``...:b:<bucket>`` a sorted set per bucket (a count's members are the events' ids, a distinct
count's the counted values; score: position), ``...:c`` members per bucket (a hash),
``...:h`` the entity's newest-bucket history (member: bucket, score: the position it became the
newest), ``...:a`` a count's window total ("<newest bucket> <total>"), ``...:l`` a distinct
count's values by their last bucket, and ``<prefix><spec hash>:entities`` entities by newest
bucket (for the watermark prune). The scripts touch keys they build, so a Redis Cluster would
need one hash tag per counter.
"""

from __future__ import annotations

import hashlib

from vigil.rules.language import FIELD_INDEX, CounterSpec

# ARGV: n counters, committed position, the prefix's max-position key, n x (key base, buckets
# per window, distinct 1/0), then ops: P <position> | U <counter> <entity> <member> <bucket> |
# Q|M <counter> <entity> <bucket>
_BATCH = """
local nc, committed, maxkey = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local base, nb, dist = {}, {}, {}
local i = 4
for c = 1, nc do
  base[c], nb[c], dist[c] = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2] == '1'
  i = i + 3
end
-- fast: no member in Redis above the event's position (not replaying a lost tail); then the
-- newest buckets are memoized and the running tallies (:c, :l) answer queries
local maxpos0 = tonumber(redis.call('GET', maxkey)) or 0
local fast, memo = false, {}
local function newest_at(ent, p)
  local h = redis.call('ZREVRANGEBYSCORE', ent .. ':h', p, '-inf', 'LIMIT', 0, 1)
  if #h > 0 then return tonumber(h[1]) end
  return false
end
local function newest(ent, p)
  if not fast then return newest_at(ent, p) end
  local v = memo[ent]
  if v == nil then
    v = newest_at(ent, p)
    memo[ent] = v
  end
  return v
end
-- the entity's newest bucket for the watermark prune (lagging it by less than a window), and
-- what no position after the committed one sees: buckets two windows behind the newest then
local function cleanup(c, e, ent, b)
  redis.call('ZADD', base[c] .. 'entities', 'GT', b, e)
  local nw_c = newest_at(ent, committed)
  if not nw_c then return end
  local lo, old = nw_c - 2 * nb[c], {}
  for _, x in ipairs(redis.call('HKEYS', ent .. ':c')) do
    if tonumber(x) <= lo then
      old[#old + 1] = x
      redis.call('DEL', ent .. ':b:' .. x)
    end
  end
  if #old > 0 then redis.call('HDEL', ent .. ':c', unpack(old)) end
  if dist[c] then redis.call('ZREMRANGEBYSCORE', ent .. ':l', '-inf', lo) end
  local since = redis.call('ZSCORE', ent .. ':h', tostring(nw_c))
  redis.call('ZREMRANGEBYSCORE', ent .. ':h', '-inf', '(' .. since)
end
-- a count's running total of the window ending at the entity's highest bucket (:a = "hi n"),
-- over every member in Redis (moved as the in-process counter's: buckets leaving it subtracted)
local function tally(c, ent, b)
  local n, a = nb[c], redis.call('GET', ent .. ':a')
  local hi, agg = b, 0
  if a then
    local sp = string.find(a, ' ')
    hi, agg = tonumber(string.sub(a, 1, sp - 1)), tonumber(string.sub(a, sp + 1))
  end
  if b > hi then
    if b - hi >= n then
      agg = 0
    else
      local f = {}
      for x = hi - n + 1, b - n do f[#f + 1] = x end
      for _, v in ipairs(redis.call('HMGET', ent .. ':c', unpack(f))) do
        agg = agg - (tonumber(v) or 0)
      end
    end
    hi = b
  end
  if b > hi - n then agg = agg + 1 end
  redis.call('SET', ent .. ':a', hi .. ' ' .. agg)
end
local function update(c, e, mem, bs, p)
  local ent, b = base[c] .. e, tonumber(bs)
  if redis.call('ZADD', ent .. ':b:' .. bs, 'LT', p, mem) == 1 then
    redis.call('HINCRBY', ent .. ':c', bs, 1)
    if dist[c] then
      redis.call('ZADD', ent .. ':l', 'GT', b, mem)
    else
      tally(c, ent, b)
    end
  end
  local nw = newest(ent, p)
  if nw and b <= nw then return end
  redis.call('ZADD', ent .. ':h', 'LT', p, bs)
  if fast then memo[ent] = b end
  -- at most once per window of advance
  if not nw or math.floor(b / nb[c]) > math.floor(nw / nb[c]) then cleanup(c, e, ent, b) end
end
local function window(c, e, bs, p, members)
  local ent, b = base[c] .. e, tonumber(bs)
  local nw = newest(ent, p)
  if not nw then
    if members then return {} end
    return 0
  end
  local lo = math.max(b - nb[c], nw - 2 * nb[c])
  if fast and not members and dist[c] and b >= nw then
    return redis.call('ZCOUNT', ent .. ':l', '(' .. lo, b)
  end
  if fast and not members and not dist[c] and b == nw then
    local a = redis.call('GET', ent .. ':a')
    local sp = a and string.find(a, ' ')
    if sp and tonumber(string.sub(a, 1, sp - 1)) == b then return tonumber(string.sub(a, sp + 1)) end
  end
  if fast and not members and not dist[c] then
    local kv, n = redis.call('HGETALL', ent .. ':c'), 0
    for j = 1, #kv, 2 do
      local x = tonumber(kv[j])
      if x > lo and x <= b then n = n + tonumber(kv[j + 1]) end
    end
    return n
  end
  local seen, n, out = {}, 0, {}
  for _, x in ipairs(redis.call('HKEYS', ent .. ':c')) do
    local xb = tonumber(x)
    if xb > lo and xb <= b then
      if dist[c] or members then
        for _, m in ipairs(redis.call('ZRANGEBYSCORE', ent .. ':b:' .. x, '-inf', p)) do
          if not seen[m] then
            seen[m] = true
            n = n + 1
            out[n] = m
          end
        end
      else
        n = n + redis.call('ZCOUNT', ent .. ':b:' .. x, '-inf', p)
      end
    end
  end
  if members then return out end
  return n
end
local out, k, p = {}, 0, 0
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'P' then
    p = tonumber(ARGV[i + 1])
    fast = p >= maxpos0
    i = i + 2
  elseif op == 'U' then
    update(tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], p)
    i = i + 5
  else
    k = k + 1
    out[k] = window(tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3], p, op == 'M')
    i = i + 4
  end
end
if p > maxpos0 then redis.call('SET', maxkey, p) end
return out
"""
# KEYS: entities; ARGV: highest bucket to forget, key base of the spec
_PRUNE = """
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, ent in ipairs(gone) do
  local e = ARGV[2] .. ent
  for _, x in ipairs(redis.call('HKEYS', e .. ':c')) do
    redis.call('DEL', e .. ':b:' .. x)
  end
  redis.call('DEL', e .. ':c', e .. ':h', e .. ':l', e .. ':a')
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


class RedisCounter:
    """One :class:`CounterSpec` kept in Redis (see the module doc). ``query(e)`` for the event
    the engine is evaluating returns the answer :meth:`RedisCounters.run` fetched; for any other
    event it asks Redis at the last position processed."""

    def __init__(self, spec: CounterSpec, owner: RedisCounters) -> None:
        self.spec = spec
        self.owner = owner
        digest = hashlib.sha1(spec.key.encode()).hexdigest()[:12]
        self.base = f"{owner.prefix}{digest}:"
        self.bucket_ms = spec.bucket_ms
        self.n = spec.n_buckets
        self.ei = FIELD_INDEX[spec.entity]
        self.oi = FIELD_INDEX[spec.of] if spec.of else None
        self.distinct = spec.kind == "distinct"
        self.answer_for = None  # the event whose answer ``answer`` is
        self.answer = 0
        self.next_prune: int | None = None  # deferred: the watermark of the last checkpoint
        # the checkpoint writes these for in-process counters: nothing to write here
        self.table: dict = {}
        self.dirty: set = set()

    def update(self, e: tuple) -> None:
        """Apply one event alone, at the next position (the engine batches; see ``run``)."""
        self.owner.run({e[3]: ([self], [])}, [e])

    def _ask(self, e: tuple, op: str):
        v = e[self.ei]
        if v is None:
            return [] if op == "M" else 0
        p = self.owner.current if e is self.answer_for else self.owner.position
        head = [1, self.owner.committed, self.owner.maxkey, self.base, self.n, int(self.distinct)]
        return self.owner.script(args=[*head, "P", p, op, 1, _encode(v), e[1] // self.bucket_ms])[0]

    def query(self, e: tuple) -> int:
        if e is self.answer_for:
            return self.answer
        return int(self._ask(e, "Q"))

    def members(self, e: tuple) -> list:
        """A distinct counter's values in the window at ``e`` (sorted: ints, then strings)."""
        return sorted((_decode(x) for x in self._ask(e, "M")), key=_sort_key)

    def prune(self, watermark_ms: int) -> None:
        """Forget entities whose newest bucket is two windows behind the watermark (with
        ``owner.defer_prune``: the watermark given at the previous call, a committed one)."""
        if self.owner.defer_prune:
            watermark_ms, self.next_prune = self.next_prune, watermark_ms
            if watermark_ms is None:
                return
        lo = watermark_ms // self.bucket_ms - 2 * self.n
        self.owner.prune_script(keys=[f"{self.base}entities"], args=[lo, self.base])


class RedisCounters:
    """The counter factory (``Engine(..., counter_factory=RedisCounters(client, prefix))``) and
    the positions: ``position`` is the last event's, ``committed`` the last checkpoint's (set by
    the stream; 0 outside it: then nothing is dropped before it)."""

    batched = True

    def __init__(self, client, prefix: str, chunk: int = 500, defer_prune: bool = False) -> None:
        if not prefix:
            raise ValueError(
                "a Redis key prefix is required (e.g. 'vigil:rules:'), so keys never collide"
            )
        self.client = client
        self.prefix = prefix
        self.chunk = chunk
        self.defer_prune = defer_prune
        self.maxkey = f"{prefix}maxpos"  # the highest position applied: above it, a replay
        self.position = 0
        self.committed = 0
        self.current = 0  # the position of the event being evaluated
        self.calls = 0
        self.script = client.register_script(_BATCH)
        self.prune_script = client.register_script(_PRUNE)

    def __call__(self, spec: CounterSpec) -> RedisCounter:
        return RedisCounter(spec, self)

    def has_keys(self) -> bool:
        """Whether any key under the prefix exists (a fresh stream must start on none)."""
        return (
            next(iter(self.client.scan_iter(match=f"{self.prefix}*", count=1000)), None) is not None
        )

    def run(self, plan: dict, events: list[tuple]) -> list[list[tuple]]:
        """Apply ``events`` (the next positions) and answer their queries, ``chunk`` events a
        call. ``plan[action] = (counters updated, counters queried)``. Per event: [(counter,
        answer)] for the counters queried."""
        out: list[list[tuple]] = []
        for i in range(0, len(events), self.chunk):
            out.extend(self._run(plan, events[i : i + self.chunk]))
        return out

    def _run(self, plan: dict, events: list[tuple]) -> list[list[tuple]]:
        index: dict[int, int] = {}  # id(counter) -> its number in this call
        head: list = []
        ops: list = []
        asked: list[list] = []
        p = self.position
        for e in events:
            p += 1
            ups, qs = plan.get(e[3], ((), ()))
            ops += ("P", p)
            for c in ups:
                v = e[c.ei]
                m = e[c.oi] if c.distinct else e[0]
                if v is None or m is None:
                    continue
                k = index.get(id(c))
                if k is None:
                    k = index[id(c)] = len(index) + 1
                    head += (c.base, c.n, int(c.distinct))
                ops += ("U", k, _encode(v), _encode(m), e[1] // c.bucket_ms)
            mine = []
            for c in qs:
                v = e[c.ei]
                if v is None:
                    mine.append((c, None))
                    continue
                k = index.get(id(c))
                if k is None:
                    k = index[id(c)] = len(index) + 1
                    head += (c.base, c.n, int(c.distinct))
                ops += ("Q", k, _encode(v), e[1] // c.bucket_ms)
                mine.append((c, 1))
            asked.append(mine)
        got = iter(())
        if index:
            got = iter(self.script(args=[len(index), self.committed, self.maxkey, *head, *ops]))
            self.calls += 1
        self.position = p
        return [[(c, 0 if x is None else next(got)) for c, x in mine] for mine in asked]


def redis_counter_factory(client, prefix: str) -> RedisCounters:
    """``Engine(..., counter_factory=...)``: every counter spec kept in Redis under ``prefix``."""
    return RedisCounters(client, prefix)
