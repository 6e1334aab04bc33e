"""The harassment campaign generator (``sim.graph_world.plan_campaigns``) on a hand-made tiny graph.

20 accounts (start of the month at t = 0, 6 days):
- ordinary 0, 1, 2, 4 exist from the start, in the abusive communities 0 and 1: the only
  possible targets (3 arrives on day 2; 5 and 18 live in communities 5 and 7);
- abusers 6-13 in community 0 (eight: a campaign on a community-0 target never needs anyone
  else), 14-16 in community 1, and 19, a newly arrived abuser (day 3, community 9);
- 17 is a spam bot (community 0): never an author.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from sim import graph_world
from sim.params import ABU, BOT, DAY, HOUR, ORD, P

DAYS = 6
WINDOW = int(P.campaign_window_hours * HOUR)
YOUNG = 19
YOUNG_CREATED = 3 * DAY + HOUR


def _graph():
    kind = np.array([ORD] * 6 + [ABU] * 11 + [BOT, ORD, ABU], np.int8)
    community = np.array([0, 0, 1, 0, 1, 5] + [0] * 8 + [1] * 3 + [0, 7, 9], np.int64)
    created = np.full(20, -DAY, np.int64)
    created[3] = 2 * DAY + 5
    created[YOUNG] = YOUNG_CREATED
    arrival_day = np.full(20, -1, np.int64)
    arrival_day[3], arrival_day[YOUNG] = 2, 3
    return SimpleNamespace(
        kind=kind,
        community=community,
        created=created,
        arrival_day=arrival_day,
        followers=np.full(20, 10.0),
    )


def _plan(seed: int, n: int = 60):
    return graph_world.plan_campaigns(np.random.default_rng(seed), _graph(), 20, DAYS, 0, n)


def test_members_target_and_timing_on_a_hand_made_graph():
    plan = _plan(1)
    w = _graph()
    assert len(plan.target) == 60
    assert set(plan.target.tolist()) <= {0, 1, 2, 4}
    for c, (target, start, authors) in enumerate(zip(plan.target, plan.start, plan.authors)):
        # from the second day on, and the whole window inside the month
        assert DAY <= start < DAYS * DAY - WINDOW
        assert P.campaign_authors_min <= len(authors) <= P.campaign_authors_max
        assert len(set(authors)) == len(authors) and target not in authors
        assert all(w.kind[a] == ABU and w.created[a] < start for a in authors)
        if start <= YOUNG_CREATED:
            assert YOUNG not in authors  # not yet created
        # a community-0 target: eight local abusers, so everyone else is local
        if w.community[target] == 0:
            assert {w.community[a] for a in authors if a != YOUNG} == {0}
        posts = plan.post_campaign == c
        ts, who = plan.post_ts[posts], plan.post_author[posts]
        assert ((ts >= start) & (ts < start + WINDOW)).all()  # within hours of each other
        per_author = {a: int((who == a).sum()) for a in authors}
        assert set(who.tolist()) == set(authors)
        assert all(1 <= k <= P.campaign_posts_max for k in per_author.values())
    assert (np.diff(plan.post_ts) >= 0).all()  # sorted by time
    # the newly arrived abuser joins campaigns after its arrival (p 0.5 per slot)
    late = [a for s, a in zip(plan.start, plan.authors) if s > YOUNG_CREATED]
    assert late and sum(YOUNG in a for a in late) >= len(late) // 4


def test_campaign_plan_is_seeded():
    a, b, c = _plan(5), _plan(5), _plan(6)
    for field in ("target", "start", "post_campaign", "post_author", "post_ts"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert a.authors == b.authors
    assert not np.array_equal(a.post_ts, c.post_ts)
