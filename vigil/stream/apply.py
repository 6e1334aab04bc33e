"""Applying a batch of validated events to the stream state: the bulk path and the reference.

:func:`apply_bulk` (the default) does per batch what the reference does per event:

1. codes: every id's 16-byte code in one pass (:func:`vigil.stream.seen.digests_of`);
2. classify: which events are too late, duplicates or applied. An event is a candidate if its
   (day, code) is in no sorted seen array and is the first of its key in the batch; the
   watermark before event i is the running maximum of the candidates' times before it (a
   too-late candidate never raises it), so "too late" is one vectorised comparison. This equals
   the per-event order exactly unless a key's first copy in the batch is too late and a later
   copy is not: then the batch goes through the reference loop (it is rare: a duplicate whose
   copies straddle the lateness bound inside one batch);
3. state: the applied events are grouped by (user, day), actor and target side together; per
   group one record lookup, the minute bits OR-ed, the tallies added from a ``bincount``; logins
   are added in arrival order, as the reference does;
4. seen ids: the applied codes are merged into the day's sorted arrays and kept for the
   checkpoint as arrays;
5. the watermark moves once, to the batch's maximum, and the days that left the window are
   dropped after the updates (the records an event created in a day that expired later in the
   same batch are dropped with them, as the reference drops them one event later).

:func:`apply_reference` is the per-event loop: it serves single events (``apply_event``), the
checkpoint-index mode of the seen ids (over the memory budget) and the rare batch above, and it
is the reference the bulk path is tested against (``tests/stream/test_stream_bulk.py``).
"""

from __future__ import annotations

import numpy as np

from vigil.contracts import ACTIONS
from vigil.stream.columns import ACTION_CODE, Columns
from vigil.stream.events import DAY_MS
from vigil.stream.features import BITMAP_BYTES, COUNTRIES, POSTS, TARGET_TALLY, add_country
from vigil.stream.seen import as_bytes, digests_of

# ``state`` below is a vigil.stream.state.StreamState (not imported: state imports this module)

_BIT = [1 << m for m in range(1440)]
# per action code: the tally column of the target's record (1-6), 0 for none
_TARGET_COLUMN = np.array([TARGET_TALLY.get(a, 0) for a in ACTIONS], dtype=np.int64)
_POST_CODE, _LOGIN_CODE = ACTION_CODE["post"], ACTION_CODE["login"]
_BYTE_BIT = np.array([1 << b for b in range(8)], dtype=np.float64)


def _new_rec() -> list:
    return [0, 0, 0, 0, 0, 0, 0, 0, None]


def apply_bulk(state, cols: Columns, arrivals: float | np.ndarray) -> None:
    """Apply a batch's validated events (:class:`vigil.stream.columns.Columns`) in order, a
    batch at a time (see the module doc). ``arrivals``: one time for all, or one per event."""
    n = len(cols)
    if n == 0:
        return
    ts = cols.ts
    days = ts // DAY_MS
    codes = digests_of(cols.eids, state.digest_version)
    hit = state.seen.hits_array(days, codes)
    first, first_idx = _first_of_key(days, codes)
    candidate = first & ~hit
    w0 = state.watermark_ms
    running = np.maximum.accumulate(np.where(candidate, ts, w0))
    before = np.empty(n, dtype=np.int64)
    before[0] = w0
    np.maximum(running[:-1], w0, out=before[1:])
    too_late = ts < before - state.lateness_ms
    # a later copy of a key whose first copy was too late may apply: the order decides
    if first_idx is not None and (too_late[first_idx] & ~first & ~hit & ~too_late).any():
        state.apply_reference(cols.tuples(), as_bytes(codes), hit.tolist(), _per_event(arrivals, n))
        return
    applied = candidate & ~too_late
    sel = np.flatnonzero(applied)
    n_late = int(too_late.sum())
    counters = state.counters
    counters["too_late"] += n_late
    counters["duplicates"] += n - n_late - len(sel)
    counters["applied"] += len(sel)
    if not len(sel):
        return
    state.seen.add_sorted(days[sel], codes[sel])
    state.new_seen_codes.append((days[sel], codes[sel]))
    if state.track_push:
        _track_arrivals(state, arrivals, sel)
    _update_users(state, cols, sel, days)
    _move_watermark(state, ts, applied)
    if state.on_applied is not None:
        state.on_applied(cols.tuples(sel.tolist()))


def _first_of_key(days: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Is each event the first of its (day, code) key in the batch, and the index of its key's
    first event (None when every key is distinct: then each event is its own first)."""
    n = len(codes)
    halves = codes.view(np.uint64).reshape(n, 2)
    mixed = (
        halves[:, 0]
        ^ (halves[:, 1] * np.uint64(0x9E3779B97F4A7C15))
        ^ (days.view(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F))
    )
    mixed.sort()
    if not (mixed[1:] == mixed[:-1]).any():  # distinct mixes: distinct keys, no copies
        return np.ones(n, dtype=bool), None
    keys = np.empty((n, 3), dtype=np.uint64)  # exact: the 24-byte (day, code) keys
    keys[:, 0] = days.view(np.uint64)
    keys[:, 1:] = halves
    _, first_idx, inverse = np.unique(
        keys.view("V24").reshape(n), return_index=True, return_inverse=True
    )
    first = np.zeros(n, dtype=bool)
    first[first_idx] = True
    return first, first_idx[inverse.reshape(n)]


def _move_watermark(state, ts: np.ndarray, applied: np.ndarray) -> None:
    """The watermark after the batch; if it entered a new day, the days out of the horizon are
    dropped as the reference drops them: with the watermark of the event that entered that day."""
    running = np.maximum.accumulate(np.where(applied, ts, state.watermark_ms))
    top = int(running[-1])
    if top <= state.watermark_ms:
        return
    day = top // DAY_MS
    if day != state.wm_day:
        entered = int(np.argmax(running // DAY_MS == day))
        state.watermark_ms = int(running[entered])
        state._advance_day(day)
    state.watermark_ms = top


def _per_event(arrivals: float | np.ndarray, n: int) -> list[float]:
    if isinstance(arrivals, np.ndarray):
        return arrivals.tolist()
    return [arrivals] * n


def _track_arrivals(state, arrivals: float | np.ndarray, sel: np.ndarray) -> None:
    """Arrival-time runs of the applied events, merged as the reference merges them."""
    arr = state.arrivals
    if isinstance(arrivals, np.ndarray):
        a = arrivals[sel]
        cut = np.flatnonzero(a[1:] != a[:-1]) + 1
        bounds = np.concatenate(([0], cut, [len(a)]))
        runs = zip(a[bounds[:-1]].tolist(), np.diff(bounds).tolist(), strict=True)
    else:
        runs = [(arrivals, len(sel))]
    for a, k in runs:
        if arr and arr[-1][0] == a:
            arr[-1][1] += k
        else:
            arr.append([a, k])


def _owned(owns, users: np.ndarray) -> np.ndarray:
    """``owns(user)`` of each user, asked once per distinct user."""
    uniq, inverse = np.unique(users, return_inverse=True)
    return np.array([owns(u) for u in uniq.tolist()], dtype=bool)[inverse.reshape(-1)]


def _update_users(state, cols: Columns, sel: np.ndarray, days: np.ndarray) -> None:
    """Group the applied events' effects by (user, day) and update each record once."""
    acts = cols.acts[sel]
    uids = cols.uids[sel]
    tgt = cols.tgt[sel]
    tcol = _TARGET_COLUMN[acts]
    has_tgt = (tgt != 0) & (tcol > 0)
    if state.owns is not None:  # actor side and target side: only this consumer's users
        act_ok = _owned(state.owns, uids)
        has_tgt[has_tgt] = _owned(state.owns, tgt[has_tgt])
        act = np.flatnonzero(act_ok)
    else:
        act = np.arange(len(sel))
    tg = np.flatnonzero(has_tgt)
    n_act = len(act)
    users = np.concatenate([uids[act], tgt[tg]])
    at = np.concatenate([act, tg])
    gdays = days[sel][at]
    order = np.lexsort((gdays, users))
    su, sd = users[order], gdays[order]
    start = np.ones(len(order), dtype=bool)
    start[1:] = (su[1:] != su[:-1]) | (sd[1:] != sd[:-1])
    group = np.empty(len(order), dtype=np.int64)
    group[order] = np.cumsum(start) - 1  # group of each entry, in entry order
    g_users = su[start].tolist()
    g_days = sd[start].tolist()
    recs, owners = _records(state, g_users, g_days)
    state.dirty.update(zip(g_users, g_days, strict=True))
    if n_act:
        _or_minutes(recs, group[:n_act], (cols.ts[sel][act] % DAY_MS) // 60_000)
    # tallies: posts (actor) and received counts (target), one bincount
    is_post = acts[act] == _POST_CODE
    cols_of = np.concatenate([np.where(is_post, POSTS, 0), tcol[tg]])
    counts = np.bincount(group * 8 + cols_of, minlength=len(recs) * 8)
    counts[::8] = 0
    nz = np.flatnonzero(counts)
    for cell, c in zip(nz.tolist(), counts[nz].tolist(), strict=True):
        g, k = divmod(cell, 8)
        recs[g][k] += c
        if k == POSTS:
            owners[g].posts_total += c
            state.dirty_totals.add(g_users[g])
    # login countries, in arrival order
    logins = np.flatnonzero(acts[act] == _LOGIN_CODE)
    if len(logins):
        countries = cols.countries
        at_sel = sel[act[logins]].tolist()
        for g, i in zip(group[logins].tolist(), at_sel, strict=True):
            rec = recs[g]
            rec[COUNTRIES] = add_country(rec[COUNTRIES], countries[i])


def _or_minutes(recs: list, group: np.ndarray, minutes: np.ndarray) -> None:
    """OR each event's minute bit into its group's bitmap: one OR per distinct (group,
    minute) when groups hold few minutes, else one 1440-bit int built per group."""
    pairs = np.unique(group * 1440 + minutes)
    gs, ms = pairs // 1440, pairs % 1440
    n_groups = len(recs)
    if len(pairs) < 4 * n_groups:
        for g, m in zip(gs.tolist(), ms.tolist(), strict=True):
            recs[g][0] |= _BIT[m]
        return
    cells = np.bincount(
        gs * BITMAP_BYTES + (ms >> 3), weights=_BYTE_BIT[ms & 7], minlength=n_groups * BITMAP_BYTES
    )
    raw = cells.astype(np.uint8).tobytes()  # distinct bits per byte: the sum is their OR
    from_bytes = int.from_bytes
    for g in np.unique(gs).tolist():
        recs[g][0] |= from_bytes(raw[g * BITMAP_BYTES : (g + 1) * BITMAP_BYTES], "little")


def _records(state, g_users: list[int], g_days: list[int]) -> tuple[list, list]:
    """The day record (created if new) and the user of each (user, day) group."""
    users = state.users if state.complete else {}  # a complete cache needs no LRU order
    user = state._user
    day_objs = state._day_objs
    recs, owners = [], []
    for uid, day in zip(g_users, g_days, strict=True):
        u = users.get(uid) or user(uid)
        rec = u.days.get(day)
        if rec is None:  # one int object per day, shared by all records
            rec = u.days[day_objs.setdefault(day, day)] = _new_rec()
        recs.append(rec)
        owners.append(u)
    return recs, owners


def apply_reference(  # one loop, inlined: it runs once per event
    state,
    events: list[tuple],
    digests: list[bytes],
    hits: list[bool],
    arrivals: list[float],
) -> list[tuple]:
    """Apply validated events in order, one at a time; returns the applied ones. ``hits[j]``:
    event j's id is in its day's sorted seen array (asked for the whole batch); the recent ids
    are checked here, as they grow.
    """
    counters = state.counters
    too_late = duplicates = applied = 0
    recent = state.seen.recent
    day_objs = state._day_objs
    new_seen = state.new_seen.append
    done: list[tuple] = []
    applied_ev = done.append
    dirty = state.dirty.add
    # a complete cache needs no LRU order: skip _user's bookkeeping on a hit
    users, user = (state.users if state.complete else {}), state._user
    owns, track, arr = state.owns, state.track_push, state.arrivals
    on_disk = state.seen_on_disk
    horizon = state.watermark_ms - state.lateness_ms
    for ev, dg, hit, arrival in zip(events, digests, hits, arrivals, strict=True):
        _eid, ts_ms, user_id, action, target, country = ev[:6]
        if ts_ms < horizon:
            too_late += 1
            continue
        day = ts_ms // DAY_MS
        rs = recent.get(day)
        if rs is None:
            rs = recent[day] = set()
        if (
            hit
            or dg in rs
            or on_disk
            and state.con.execute(
                "select 1 from seen where day = ? and digest = ?", (day, dg)
            ).fetchone()
        ):
            duplicates += 1
            continue
        rs.add(dg)
        new_seen((day, dg))
        applied_ev(ev)
        if ts_ms > state.watermark_ms:
            state.watermark_ms = ts_ms
            horizon = ts_ms - state.lateness_ms
            if day != state.wm_day:
                state._advance_day(day)
        applied += 1
        if track:
            if arr and arr[-1][0] == arrival:
                arr[-1][1] += 1
            else:
                arr.append([arrival, 1])
        if owns is None or owns(user_id):
            u = users.get(user_id) or user(user_id)
            rec = u.days.get(day)
            if rec is None:  # one int object per day, shared by all records
                rec = u.days[day_objs.setdefault(day, day)] = _new_rec()
            rec[0] |= 1 << ((ts_ms % DAY_MS) // 60_000)
            if action == "post":
                rec[POSTS] += 1
                u.posts_total += 1
                state.dirty_totals.add(user_id)
            elif action == "login":
                rec[COUNTRIES] = add_country(rec[COUNTRIES], country)
            dirty((user_id, day))
        if target is not None:
            idx = TARGET_TALLY.get(action)
            if idx is not None and (owns is None or owns(target)):
                t = users.get(target) or user(target)
                rec = t.days.get(day)
                if rec is None:
                    rec = t.days[day_objs.setdefault(day, day)] = _new_rec()
                rec[idx] += 1
                dirty((target, day))
    counters["too_late"] += too_late
    counters["duplicates"] += duplicates
    counters["applied"] += applied
    return done
