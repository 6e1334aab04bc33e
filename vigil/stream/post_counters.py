"""Exact per-post counters: the ``post_behavior`` features as of the moment (issue 22).

The batch mart ``post_behavior`` is an hourly snapshot: a re-score in a post's first hour sees no
post counters at all. :class:`PostCounters` keeps, per post, the counts of the events applied so
far and serves the ``post_behavior`` features as of any moment, with the mart's definitions
(``dbt/models/marts/features/post_behavior.sql``):

- counts: views, likes, shares, replies, dislikes, reports, blocks, negative replies (a reply is
  also negative when its text matches the disgust pattern, :func:`vigil.stream.rescore.
  is_negative_reply`); an event counts when it carries the post's id;
- ``post_age_hours``: the moment minus the post's creation (known when its ``post`` event was
  seen, or given with :meth:`PostCounters.created`);
- the ratios, Bayesian-averaged: ``(x + m p) / (views + m)`` with ``m`` = ``PRIOR_VIEWS`` (dbt's
  var ``prior_views``) and ``p`` the platform rate among reactions that happened while their post
  was at most as old as this post is now (age buckets ``floor(log2(age + 1))``, capped at 8),
  counted over the reactions applied so far to posts whose creation is known.

This is the one definition: the stream processor serves it (:class:`PostCounterFeed`, pushed to
the online store by :mod:`vigil.stream.post_push`), and the re-scoring replay's exact mode
(``sim.rescore_replay --features exact``) computes its moments with :func:`features_at`.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Iterable

from vigil.serving.services import POST_COUNTERS
from vigil.stream.hooks import chain_hooks

log = logging.getLogger(__name__)

PRIOR_VIEWS = 100.0  # dbt var prior_views (dbt/dbt_project.yml): pseudo-views of the ratios
MAX_AGE_BUCKET = 8  # post_behavior.sql's max_bucket
HOUR_MS = 3_600_000
COUNTERS = POST_COUNTERS  # the order _INDEX and the stored rows use
_INDEX = {"view": 0, "like": 1, "share": 2, "reply": 3, "dislike": 4, "report": 5, "block": 6}
_NEGATIVE_REPLY = 7
# ratio -> the counters of its numerator (negative reactions = dislikes, reports, blocks and
# negative replies), and the platform tally of its prior
RATIOS = {
    "negative_reactions_per_view": ("dislikes", "reports", "blocks", "negative_replies"),
    "reports_per_view": ("reports",),
    "shares_per_view": ("shares",),
}
# the platform tallies per age bucket: views, negative reactions, reports, shares
_PLATFORM = {"view": (0,), "dislike": (1,), "block": (1,), "report": (1, 2), "share": (3,)}
_SLOTS = tuple(_PLATFORM.get(a, ()) for a in sorted(_INDEX, key=_INDEX.get))  # by counter index
_PRIOR_SLOT = {"negative_reactions_per_view": 1, "reports_per_view": 2, "shares_per_view": 3}
# what the stream serves of the post_behavior view (author_id is its key to the author)
FEATURES = ("post_age_hours", *COUNTERS, *RATIOS)

_SCHEMA = """
create table if not exists post_counter (post_id integer primary key, views integer not null,
    likes integer not null, shares integer not null, replies integer not null,
    dislikes integer not null, reports integer not null, blocks integer not null,
    negative_replies integer not null, created_ms integer, author_id integer);
create table if not exists post_platform (bucket integer primary key, views integer not null,
    negative integer not null, reports integer not null, shares integer not null);
create table if not exists post_push_pending (post_id integer primary key);
"""


def age_bucket(age_hours: float) -> int:
    """post_behavior.sql's age bucket: ``least(floor(log2(greatest(age, 0) + 1)), 8)``."""
    return min(math.floor(math.log2(max(age_hours, 0.0) + 1.0)), MAX_AGE_BUCKET)


def _bucket_ms(age_ms: int) -> int:
    """:func:`age_bucket` of an age in whole milliseconds, in integer arithmetic: for an age of h
    hours, floor(log2(h + 1)) = bit_length(floor(h) + 1) - 1."""
    if age_ms < HOUR_MS:
        return 0
    return min((int(age_ms // HOUR_MS) + 1).bit_length() - 1, MAX_AGE_BUCKET)


def bayes_rate(x: float, views: float, prior: float, m: float = PRIOR_VIEWS) -> float:
    """dbt's ``bayes_rate``: ``(x + m p) / (views + m)``."""
    return (x + m * prior) / (views + m)


class PostCounters:
    """Per-post counts and the platform's tallies by age bucket (see the module doc)."""

    def __init__(self) -> None:
        # post_id -> [8 counts..., created_ms or None, author_id or None]
        self.posts: dict[int, list] = {}
        self.platform = [[0, 0, 0, 0] for _ in range(MAX_AGE_BUCKET + 1)]

    def _post(self, post_id: int) -> list:
        rec = self.posts.get(post_id)
        if rec is None:
            rec = self.posts[post_id] = [0, 0, 0, 0, 0, 0, 0, 0, None, None]
        return rec

    def created(self, post_id: int, ts_ms: int, author_id: int | None = None) -> None:
        rec = self._post(post_id)
        rec[8] = int(ts_ms)
        if author_id is not None:
            rec[9] = int(author_id)

    def observe(self, post_id: int, action: str, ts_ms: int, negative: bool = False) -> bool:
        """Count one applied event of a post (``post``: its creation); True when it counted."""
        i = _INDEX.get(action)
        if i is None:
            if action == "post":
                self.created(post_id, ts_ms)
                return True
            return False
        rec = self.posts.get(post_id)
        if rec is None:
            rec = self.posts[post_id] = [0, 0, 0, 0, 0, 0, 0, 0, None, None]
        rec[i] += 1
        negative = negative and i == 3  # a reply
        if negative:
            rec[_NEGATIVE_REPLY] += 1
        if rec[8] is not None:
            tally = self.platform[_bucket_ms(ts_ms - rec[8])]
            for slot in _SLOTS[i]:
                tally[slot] += 1
            if negative:
                tally[1] += 1
        return True

    def prior(self, age_hours: float) -> dict[str, float]:
        """The platform rates among reactions at most as old as ``age_hours`` (0 without views)."""
        b = age_bucket(age_hours)
        sums = [sum(t[k] for t in self.platform[: b + 1]) for k in range(4)]
        return {r: sums[s] / sums[0] if sums[0] else 0.0 for r, s in _PRIOR_SLOT.items()}

    def values(self, post_id: int, at_ms: int) -> dict[str, float | int | None]:
        """The post's ``post_behavior`` features at ``at_ms`` (event time): counts, and when its
        creation is known, the age and the ratios (else None: not known here)."""
        rec = self.posts.get(post_id) or [0] * 8 + [None, None]
        out: dict[str, float | int | None] = dict(zip(COUNTERS, rec[:8]))
        if rec[8] is None:
            out["post_age_hours"] = None
            out.update(dict.fromkeys(RATIOS))
            return out
        age = (at_ms - rec[8]) / HOUR_MS
        out["post_age_hours"] = age
        prior = self.prior(age)
        for ratio, parts in RATIOS.items():
            x = sum(out[k] for k in parts)
            out[ratio] = bayes_rate(x, out["views"], prior[ratio])
        return out


def features_at(
    counters: PostCounters,
    events: Iterable[tuple[int, str, int, bool]],
    moments: list[tuple[int, int]],
) -> list[dict]:
    """The features of each moment ``(post_id, at_ms)``, counting ``events`` ``(post_id, action,
    ts_ms, negative)`` (in time order) up to and including the moment, as the stream would
    serve them then. Moments are answered in the order given (any order of times)."""
    order = sorted(range(len(moments)), key=lambda i: moments[i][1])
    out: list[dict | None] = [None] * len(moments)
    it = iter(events)
    pending = next(it, None)
    observe = counters.observe
    for i in order:
        post_id, at_ms = moments[i]
        while pending is not None and pending[2] <= at_ms:
            observe(*pending)
            pending = next(it, None)
        out[i] = counters.values(post_id, at_ms)
    return out  # type: ignore[return-value]


class PostCounterFeed:
    """The stream's exact post counters, kept in the checkpoint file (``vigil stream
    --post-counters``).

    Exactly-once: the counters, the platform tallies and the posts to write to the online store
    (``post_push_pending``) are written in the checkpoint's transaction, so after a kill -9 the
    restarted processor counts exactly the events its state applied, and posts committed but not
    yet written are written at the restart. Install with :meth:`attach`.
    """

    def __init__(self, con: sqlite3.Connection, track_push: bool = True) -> None:
        from vigil.stream.rescore import is_negative_reply

        self.track_push = track_push  # False (--no-push): no pending list to keep
        self.is_negative = is_negative_reply
        self.con = con
        con.executescript(_SCHEMA)
        self.counters = PostCounters()
        for row in con.execute("select * from post_counter"):
            self.counters.posts[row[0]] = list(row[1:])
        for bucket, *tally in con.execute("select * from post_platform"):
            self.counters.platform[bucket] = list(tally)
        self.dirty: set[int] = set()
        self.pushed: list[int] = []  # written to the online store: leave the pending list
        self.last_changed: list[int] = []  # the posts the last checkpoint committed
        self.state = None
        log.info("post counters: %d posts loaded", len(self.counters.posts))

    def attach(self, state) -> None:
        """Chain onto the state's hooks (the re-score triggers and rules may be there too)."""
        self.state = state
        chain_hooks(state, self.observe, self.write)

    def observe(self, events: list[tuple]) -> None:
        """Applied events ``(event_id, ts_ms, user_id, action, target, country, post_id,
        text)``, in order."""
        counters, dirty, negative = self.counters, self.dirty, self.is_negative
        for ev in events:
            post_id = ev[6]
            if post_id is None:
                continue
            action = ev[3]
            if action == "post":
                counters.created(post_id, ev[1], ev[2])
                dirty.add(post_id)
            elif counters.observe(post_id, action, ev[1], action == "reply" and negative(ev[7])):
                dirty.add(post_id)

    def write(self, con: sqlite3.Connection) -> None:
        """Inside the checkpoint's transaction: changed posts, the platform tallies, the posts
        to write to the online store."""
        posts = self.counters.posts
        rows = [(pid, *posts[pid]) for pid in sorted(self.dirty)]
        con.executemany("insert or replace into post_counter values (?,?,?,?,?,?,?,?,?,?,?)", rows)
        con.executemany(
            "insert or replace into post_platform values (?,?,?,?,?)",
            [(b, *t) for b, t in enumerate(self.counters.platform)],
        )
        con.executemany(
            "delete from post_push_pending where post_id = ?", [(p,) for p in self.pushed]
        )
        if self.track_push:
            con.executemany(
                "insert or ignore into post_push_pending values (?)", [(p,) for p, *_ in rows]
            )
        self.pushed.clear()
        self.last_changed = [r[0] for r in rows]
        self.dirty.clear()

    def clear_pushed(self) -> None:
        """At exit, after the last checkpoint: posts written since leave the pending list."""
        if self.pushed:
            self.con.execute("begin immediate")
            self.con.executemany(
                "delete from post_push_pending where post_id = ?", [(p,) for p in self.pushed]
            )
            self.con.execute("commit")
            self.pushed.clear()

    def pending(self) -> list[int]:
        """Posts committed but not yet written to the online store."""
        return [r[0] for r in self.con.execute("select post_id from post_push_pending")]

    def rows(self, post_ids: Iterable[int], at_ms: int) -> list[dict]:
        """``post_behavior`` rows of the given posts at ``at_ms``: ``post_id``, ``author_id``
        (None when unknown) and :data:`FEATURES`."""
        out = []
        for pid in post_ids:
            row = {"post_id": pid, "author_id": self.counters.posts.get(pid, [None] * 10)[9]}
            row.update(self.counters.values(pid, at_ms))
            out.append(row)
        return out
