"""The rules engine: windowed counters, distinct counts, labels with expiry, effects.

:meth:`Engine.process` takes one event context (:data:`vigil.rules.language.FIELDS`, built by
:func:`context`) at a time, in the stream's order: first every counter whose ``when`` covers the
action counts the event, then each rule for the action evaluates its expression, in file order,
and fires its effects (a live rule's labels are visible to the rules after it at once).

Counters are exact over bucketed windows: a counter of window W keeps counts (or, for distinct
counts, the set of values) per bucket of W/60 (at least 1 s) per entity value, and its window at
an event is the 60 buckets ending with the event's bucket. Memory is bounded by the buckets of
two windows: older buckets are dropped as new ones arrive, so counts are exact for events up to
one window behind the newest event of their entity (a later one sees what is left of its window),
and entities idle for two windows are dropped by :meth:`Engine.prune`. All times are event times
(ms), so a replay decides the same.

An effect fires at most once per (rule, effect, entity value) within the rule's cooldown. A live
``label`` effect (and ``throttle``: label ``throttled``; ``suspend``: ``suspended``) sets the label
on the entity until its expiry; shadow rules only log, tagged ``shadow``.

Reviewers' ``cleared`` verdicts (:meth:`Engine.add_clears`) wait in ``pending`` until the stream's
event time passes them: a verdict at t is applied before the first event with a time after t, and
ends every label on its user active at t (set at or before t, expiring after it; the same rule as
the warehouse's ``active_labels``): the label's expiry becomes t and an ``unlabel`` effect is
logged for it with the verdict's id. Labels set later stand; other entities are untouched.

The engine's state is plain dicts with dirty sets; :mod:`vigil.stream.rules` writes the changes
inside the stream checkpoint's transaction.
"""

from __future__ import annotations

import logging
import re

from vigil.rules.language import FIELD_INDEX, FIELDS, CounterSpec, Rule, RuleSet

log = logging.getLogger(__name__)

_LINK = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""


def first_link(text: str | None) -> str | None:
    """The first http(s) URL in a text, lowercased, without trailing punctuation."""
    if not text or "http" not in text.lower():
        return None
    m = _LINK.search(text)
    return m.group(0).rstrip(_TRAILING).lower() if m else None


def context(ev: tuple) -> tuple:
    """The rule context of a parsed stream event ``(event_id, ts_ms, user_id, action, target,
    country, post_id, text[, fingerprint])``: in :data:`FIELDS` order."""
    event_id, ts, user, action, target, country, post, text = ev[:8]
    fingerprint = ev[8] if len(ev) > 8 else None
    return (event_id, ts, user, action, target, country, post, text, first_link(text), fingerprint)


def _sort_key(x) -> tuple:
    return (isinstance(x, str), x)


def _len(x) -> int:
    return 0 if x is None else len(x)


def _contains(text, part) -> bool:
    return text is not None and part is not None and str(part).lower() in str(text).lower()


class Counter:
    """One :class:`CounterSpec`'s state: entity value -> [highest bucket, {bucket: n or set of
    values}, the window's aggregate at the highest bucket]. The aggregate (a total, or value ->
    number of the window's buckets holding it) moves with the highest bucket, so an event in
    order is counted and answered in O(1); a late event sums its own window."""

    __slots__ = ("bucket_ms", "dirty", "distinct", "ei", "n", "oi", "spec", "table")

    def __init__(self, spec: CounterSpec) -> None:
        self.spec = spec
        self.table: dict = {}
        self.dirty: set = set()
        self.bucket_ms = spec.bucket_ms
        self.n = spec.n_buckets
        self.ei = FIELD_INDEX[spec.entity]
        self.oi = FIELD_INDEX[spec.of] if spec.of else None
        self.distinct = spec.kind == "distinct"

    def entry(self, hi: int, buckets: dict) -> list:
        """A table entry from its buckets (as loaded from a checkpoint)."""
        lo = hi - self.n
        if self.distinct:
            agg: dict = {}
            for x, vals in buckets.items():
                if lo < x <= hi:
                    for v in vals:
                        agg[v] = agg.get(v, 0) + 1
            return [hi, buckets, agg]
        return [hi, buckets, sum(c for x, c in buckets.items() if lo < x <= hi)]

    def _advance(self, ent: list, b: int) -> None:
        """Move the entry's highest bucket to ``b``: buckets leaving the window leave the
        aggregate; buckets older than two windows are dropped."""
        hi, d, agg = ent
        n = self.n
        if b - hi >= n:
            ent[2] = {} if self.distinct else 0
        else:
            # the buckets hi-n+1 .. b-n leave the window: walk that range or the dict, the shorter
            lo, top = hi - n, b - n
            leaving = (
                range(lo + 1, top + 1) if b - hi <= len(d) else (x for x in d if lo < x <= top)
            )
            if self.distinct:
                for x in [x for x in leaving if x in d]:
                    for v in d[x]:
                        c = agg[v] - 1
                        if c:
                            agg[v] = c
                        else:
                            del agg[v]
            else:
                for x in [x for x in leaving if x in d]:
                    agg -= d[x]
                ent[2] = agg
        ent[0] = b
        if len(d) > 2 * n:  # two windows kept: a late event still sees its whole window
            lo = b - 2 * n
            for old in [x for x in d if x <= lo]:
                del d[old]

    def update(self, e: tuple) -> None:
        """Count one event (the hot path: a count and a distinct version, no shared branches)."""
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
            if b > ent[0]:
                self._advance(ent, b)
            d = ent[1]
            d[b] = d.get(b, 0) + 1
            if b > ent[0] - self.n:
                ent[2] += 1
        self.dirty.add(v)

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
            if b > ent[0]:
                self._advance(ent, b)
            d = ent[1]
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
        self.dirty.add(v)

    def query(self, e: tuple) -> int:
        ent = self.table.get(e[self.ei])
        if ent is None:
            return 0
        b = e[1] // self.bucket_ms
        if b == ent[0]:
            return len(ent[2]) if self.distinct else ent[2]
        lo = b - self.n
        if self.distinct:
            sets = [s for x, s in ent[1].items() if lo < x <= b]
            return len(set().union(*sets)) if sets else 0
        return sum(c for x, c in ent[1].items() if lo < x <= b)

    def members(self, e: tuple) -> list:
        """A distinct counter's values in the window at ``e`` (sorted: ints, then strings)."""
        ent = self.table.get(e[self.ei])
        if ent is None:
            return []
        b = e[1] // self.bucket_ms
        if b == ent[0]:
            return sorted(ent[2], key=_sort_key)
        lo = b - self.n
        sets = [s for x, s in ent[1].items() if lo < x <= b]
        return sorted(set().union(*sets), key=_sort_key) if sets else []

    def prune(self, watermark_ms: int) -> None:
        lo = watermark_ms // self.bucket_ms - 2 * self.n
        for v in [v for v, ent in self.table.items() if ent[0] <= lo]:
            del self.table[v]
            self.dirty.add(v)


class Engine:
    """Counters, labels and cooldowns for a :class:`RuleSet`; effects collected in ``effects``.

    ``features(user_id)`` returns the user's features for ``score()`` (None: all 0).
    ``counter_factory(spec)`` makes each counter: in process (:class:`Counter`, the default) or
    in Redis (:class:`vigil.rules.redis_counters.RedisCounters`, batched: :meth:`process_all`
    reads and writes them per chunk of events)."""

    def __init__(self, ruleset: RuleSet, features=None, counter_factory=None) -> None:
        self.features = features
        self.counter_factory = counter_factory or Counter
        self.counters: dict[str, Counter] = {}
        self.labels: dict[tuple, tuple[int | None, str, int]] = {}  # -> (expires, rule, set at)
        self.fired: dict[tuple, int] = {}  # (rule, effect index, value) -> cooldown end (ms)
        self.dirty_labels: set[tuple] = set()
        self.dirty_fired: set[tuple] = set()
        self.dropped_counters: set[str] = set()
        self.effects: list[dict] = []
        # cleared verdicts not yet applied: (time ms, order read, verdict id, user id), sorted
        self.pending: list[tuple[int, int, str, int]] = []
        self.pending_dirty = False
        # cleared verdicts applied, per user: [(time ms, verdict id)], sorted, kept to the
        # lateness horizon: a late event's label active at one of them ends there too
        self.cleared: dict[int, list[tuple[int, str]]] = {}
        self.cleared_dirty = False
        self.errors: dict[str, int] = {}
        self.evaluated = 0
        self._score_cache: tuple = (None, None)
        self.set_rules(ruleset)

    # -- rules --------------------------------------------------------------------------------
    def set_rules(self, ruleset: RuleSet) -> None:
        """Install a rule set; counters of unchanged specs keep their state, new ones start empty."""
        self.ruleset = ruleset
        old = self.counters
        make = self.counter_factory
        self.counters = {s.key: old.get(s.key) or make(s) for s in ruleset.counters}
        self.dropped_counters |= set(old) - set(self.counters)
        self.dropped_counters -= set(self.counters)
        g = {
            "__builtins__": {},
            "L": self._label,
            "S": self._score,
            "_len": _len,
            "_contains": _contains,
        }
        self.by_action: dict[str, list] = {}
        for rule in ruleset.rules:
            queries = [self.counters[s.key].query for s in rule.counters]
            fn = eval(rule.code, {**g, "Q": queries})
            for action in rule.when:
                self.by_action.setdefault(action, []).append((rule, fn))
        self.updates: dict[str, list] = {}
        for c in self.counters.values():
            for action in c.spec.actions:
                self.updates.setdefault(action, []).append(c.update)
        # counters kept outside (Redis): per action, (counters updated, counters queried), what
        # a batch of events needs read first (process_all)
        self.batched = getattr(make, "batched", False)
        self.plan: dict[str, tuple[list, list]] = {}
        for c in self.counters.values():
            for action in c.spec.actions:
                self.plan.setdefault(action, ([], []))[0].append(c)
        for action, pairs in self.by_action.items():
            queried = self.plan.setdefault(action, ([], []))[1]
            for rule, _ in pairs:
                for s in rule.counters:
                    if self.counters[s.key] not in queried:
                        queried.append(self.counters[s.key])

    # -- functions the expressions call -------------------------------------------------------
    def _label(self, e: tuple, idx: int, name: str) -> bool:
        v = e[idx]
        if v is None:
            return False
        got = self.labels.get((FIELDS[idx], v, name))
        return got is not None and (got[0] is None or got[0] > e[1])

    def _score(self, e: tuple, name: str) -> float:
        if self.features is None:
            return 0
        key, feats = self._score_cache
        if key != e[0]:
            feats = self.features(e[2]) or {}
            self._score_cache = (e[0], feats)
        return feats.get(name, 0)

    # -- events -------------------------------------------------------------------------------
    def process(self, e: tuple) -> None:
        if self.batched:
            self.process_all((e,))
            return
        if self.pending and e[1] > self.pending[0][0]:
            self._apply_clears(e[1])
        for update in self.updates.get(e[3], ()):
            update(e)
        self._evaluate(e)

    def _process_one(self, e: tuple) -> None:
        """``process`` for a counter that is batched (its chunk loaded)."""
        if self.pending and e[1] > self.pending[0][0]:
            self._apply_clears(e[1])
        for update in self.updates.get(e[3], ()):
            update(e)
        self._evaluate(e)

    def process_all(self, events) -> None:
        """Process events in order. With counters kept outside (Redis), ``chunk`` events at a
        time: the counters read what the chunk needs first (``load``), then the events are counted
        and evaluated here as in process (``done``: the counters write the changes back when
        they choose: at the next checkpoint)."""
        if not self.batched:
            for e in events:
                self.process(e)
            return
        make = self.counter_factory
        events = list(events)
        for i in range(0, len(events), make.chunk):
            part = events[i : i + make.chunk]
            make.load(self.plan, part)
            for e in part:
                self._process_one(e)
            make.done(len(part))

    def _evaluate(self, e: tuple) -> None:
        rules = self.by_action.get(e[3])
        if not rules:
            return
        for rule, fn in rules:
            self.evaluated += 1
            try:
                hit = fn(e)
            except Exception as exc:  # noqa: BLE001 - a None field in arithmetic: the rule is false
                n = self.errors.get(rule.name, 0)
                self.errors[rule.name] = n + 1
                if n == 0:
                    log.warning("rule %s: expression failed on event %s (%s)", rule.name, e[0], exc)
                continue
            if hit:
                self._fire(rule, e)

    def _fire(self, rule: Rule, e: tuple) -> None:
        for k, eff in enumerate(rule.effects):
            if eff.via is None:
                v = e[FIELD_INDEX[eff.entity]]
                if v is not None:
                    self._effect(rule, k, eff, v, e)
            else:  # every value of the rule's distinct counter in the window
                for v in self.counters[rule.counters[eff.via].key].members(e):
                    self._effect(rule, k, eff, v, e)

    def _effect(self, rule: Rule, k: int, eff, v, e: tuple) -> None:
        ts = e[1]
        key = (rule.name, k, v)
        until = self.fired.get(key)
        if until is not None and until > ts:
            return
        self.fired[key] = ts + rule.cooldown_ms
        self.dirty_fired.add(key)
        expires = ts + eff.expires_ms if eff.expires_ms is not None else None
        ended = None
        if rule.mode == "live" and eff.label is not None:
            until = expires
            if self.cleared and eff.entity == "user":
                ended = self._cleared_at(v, ts, expires)
                if ended is not None:
                    until = ended[0]
            lkey = (eff.entity, v, eff.label)
            old = self.labels.get(lkey)
            if old is None or old[0] is not None and (until is None or until > old[0]):
                self.labels[lkey] = (until, rule.name, ts)
                self.dirty_labels.add(lkey)
        self.effects.append(
            {
                "rule": rule.name,
                "version": rule.version,
                "mode": rule.mode,
                "effect": eff.do,
                "entity": eff.entity,
                "entity_id": v,
                "label": eff.label,
                "expires_ms": expires,
                "event_id": e[0],
                "event_ms": ts,
            }
        )
        if ended is not None:  # a late event's label, ended by a verdict already applied
            self._unlabel(rule.name, rule.version, v, eff.label, ended[1], ended[0])

    # -- reviewers' verdicts ------------------------------------------------------------------
    def add_clears(self, clears: list[tuple[int, int, str, int]]) -> None:
        """Queue cleared verdicts ``(reviewed_at ms, order read, verdict id, user id)``."""
        if clears:
            # a set: a line read again (the same time and line) is queued once
            self.pending = sorted(set(self.pending) | set(clears))
            self.pending_dirty = True

    def _apply_clears(self, ts: int) -> None:
        """Apply every pending verdict at or before ``ts`` (before the event at ``ts``)."""
        n = 0
        while n < len(self.pending) and self.pending[n][0] < ts:
            t, _, verdict_id, user = self.pending[n]
            self.clear_user(t, verdict_id, user)
            self.cleared[user] = sorted([*self.cleared.get(user, ()), (t, verdict_id)])
            self.cleared_dirty = True
            n += 1
        del self.pending[:n]
        self.pending_dirty = True

    def clear_user(self, t: int, verdict_id: str, user: int) -> int:
        """End the user's labels active at ``t`` (set at or before t, expiring after it): their
        expiry becomes t, an ``unlabel`` effect is logged for each. How many."""
        versions = {r.name: r.version for r in self.ruleset.rules}
        ended = 0
        for key in sorted(k for k in self.labels if k[0] == "user" and k[1] == user):
            exp, rule, set_ms = self.labels[key]
            if set_ms > t or (exp is not None and exp <= t):
                continue
            self.labels[key] = (t, rule, set_ms)
            self.dirty_labels.add(key)
            ended += 1
            self._unlabel(rule, versions.get(rule, 1), user, key[2], verdict_id, t)
        return ended

    def _unlabel(self, rule: str, version: int, user, label: str, verdict_id: str, t: int) -> None:
        self.effects.append(
            {
                "rule": rule,
                "version": version,
                "mode": "live",
                "effect": "unlabel",
                "entity": "user",
                "entity_id": user,
                "label": label,
                "expires_ms": None,
                "event_id": verdict_id,
                "event_ms": t,
            }
        )

    def _cleared_at(self, user, ts: int, expires: int | None) -> tuple[int, str] | None:
        """The first applied cleared verdict that ends a label set on ``user`` at ``ts`` (a late
        event's: at or after ts, before the expiry), or None."""
        for t, verdict_id in self.cleared.get(user, ()):
            if t >= ts and (expires is None or t < expires):
                return t, verdict_id
        return None

    def take_effects(self) -> list[dict]:
        out, self.effects = self.effects, []
        return out

    def prune(self, watermark_ms: int) -> None:
        """Forget what no later event can see: idle counter entities, expired labels and
        cooldowns (by the watermark, in event time)."""
        for c in self.counters.values():
            c.prune(watermark_ms)
        for k in [k for k, v in self.labels.items() if v[0] is not None and v[0] <= watermark_ms]:
            del self.labels[k]
            self.dirty_labels.add(k)
        for k in [k for k, until in self.fired.items() if until <= watermark_ms]:
            del self.fired[k]
            self.dirty_fired.add(k)
        for user, clears in list(self.cleared.items()):
            keep = [c for c in clears if c[0] >= watermark_ms]
            if len(keep) < len(clears):
                self.cleared_dirty = True
                if keep:
                    self.cleared[user] = keep
                else:
                    del self.cleared[user]

    def active_labels(self, at_ms: int) -> list[dict]:
        return [
            {
                "entity": ent,
                "entity_id": v,
                "label": name,
                "expires_ms": exp,
                "rule": rule,
                "set_ms": set_ms,
            }
            for (ent, v, name), (exp, rule, set_ms) in sorted(self.labels.items(), key=str)
            if exp is None or exp > at_ms
        ]
