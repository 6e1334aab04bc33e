"""The graph world (issue 26): communities, waves of new users, harassment campaigns.

Switched on by :class:`sim.params.WorldOptions` (all off by default). Everything here draws from
its own generator (``[seed, 5, ...]``), so the default world's draws are untouched.

- **Communities**: each account belongs to one of ``communities`` (shares ~ Dirichlet); abusers
  and bots live in the first ``P.abusive_communities`` ones with probability
  ``P.p_abuser_clustered``, and an abuser's favourite victims are members of its community.
  Follows, views (so replies and reactions) and mentions go within the community with the
  ``P.p_*_within`` probabilities (:class:`CommunityIndex` draws the in-community targets).
- **Arrivals**: ``arrival_share`` of the accounts are created during the month, in
  ``arrival_waves`` waves of ``P.arrival_wave_days`` days (:func:`arrival_schedule`: the same
  number every wave day), with their own mix of kinds (more abusers and bots than the rest).
- **Harassment campaigns**: ``campaigns`` times, ``P.campaign_authors_min``-``max`` abusive
  accounts (newly arrived ones first, then those of the target's community, then any) each write
  1-``P.campaign_posts_max`` harassing posts naming one target within
  ``P.campaign_window_hours``. The plan is truth (``_truth/harassment_campaigns.jsonl``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.params import ABU, BOT, DAY, HOUR, ORD, P, WorldOptions


def arrival_schedule(n_arrivals: int, days: int, waves: int, wave_days: int) -> dict[int, int]:
    """Arrivals per day (0-based day -> count): wave ``i`` starts on day
    ``(i + 1) * days // (waves + 1)`` and lasts ``wave_days`` days (clipped to the period); the
    arrivals are spread evenly over the wave days, the first days taking the remainder."""
    if n_arrivals <= 0 or waves <= 0:
        return {}
    wave_days_all = sorted(
        {
            d
            for i in range(waves)
            for d in range((i + 1) * days // (waves + 1), (i + 1) * days // (waves + 1) + wave_days)
            if 0 <= d < days
        }
    )
    base, extra = divmod(n_arrivals, len(wave_days_all))
    return {d: base + (j < extra) for j, d in enumerate(wave_days_all)}


def arrivals(rng, kind: np.ndarray, users: int, days: int, opts: WorldOptions):
    """(arrival day per account or -1, kinds with the arrivals' own mix): which of the ``users``
    accounts arrive during the month, and as what."""
    n_arr = round(users * opts.arrival_share)
    day_of = np.full(len(kind), -1, np.int64)
    schedule = arrival_schedule(n_arr, days, opts.arrival_waves, P.arrival_wave_days)
    if not schedule:
        return day_of, kind
    chosen = rng.choice(users, size=n_arr, replace=False)
    day_of[chosen] = np.repeat(list(schedule), list(schedule.values()))
    u = rng.random(n_arr)
    kind = kind.copy()
    kind[chosen] = np.select(
        [u < P.arrival_abusive_share, u < P.arrival_abusive_share + P.arrival_bot_share],
        [ABU, BOT],
        ORD,
    ).astype(np.int8)
    return day_of, kind


def arrival_times(rng, day_of: np.ndarray, start_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """(arriving accounts, their creation times in ms): uniform within the arrival day."""
    idx = np.flatnonzero(day_of >= 0)
    return idx, start_ms + day_of[idx] * DAY + rng.integers(0, DAY, len(idx))


def communities(rng, kind: np.ndarray, n_communities: int) -> np.ndarray:
    """Each account's community; abusers and bots mostly in the abusive communities."""
    n = len(kind)
    shares = rng.dirichlet(np.full(n_communities, P.community_size_alpha))
    community = rng.choice(n_communities, size=n, p=shares).astype(np.int64)
    bad = np.flatnonzero((kind == ABU) | (kind == BOT))
    k = max(1, min(P.abusive_communities, n_communities))
    moved = bad[rng.random(len(bad)) < P.p_abuser_clustered]
    community[moved] = rng.integers(0, k, len(moved))
    return community


class CommunityIndex:
    """Draws in-community accounts: by follower weight (follows) or uniformly (mentions)."""

    def __init__(self, community: np.ndarray, followers: np.ndarray, users: int):
        comm = community[:users]
        self.order = np.argsort(comm, kind="stable")
        counts = np.bincount(comm, minlength=int(comm.max()) + 1)
        self.start = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.count = counts
        self.cum = np.cumsum(followers[:users][self.order])
        self.community = community

    def by_followers(self, rng, comm: np.ndarray) -> np.ndarray:
        """One account per entry of ``comm`` (a community), in proportion to its followers."""
        lo = self.start[comm]
        hi = lo + self.count[comm]
        base = np.where(lo > 0, self.cum[np.maximum(lo - 1, 0)], 0.0)
        top = self.cum[np.maximum(hi - 1, 0)]
        x = base + rng.random(len(comm)) * (top - base)
        pos = np.clip(np.searchsorted(self.cum, x, side="right"), lo, np.maximum(hi - 1, lo))
        return self.order[pos]

    def uniform(self, r, comm: int) -> int:
        """One account of community ``comm``, uniformly (``r``: a ``random.Random``)."""
        return int(self.order[self.start[comm] + r.randrange(max(int(self.count[comm]), 1))])


def victims(rng, community, followers, kind, users: int) -> np.ndarray:
    """Each abuser's four favourite victims, drawn from its own community (sqrt-follower weights)."""
    out = np.zeros((len(kind), 4), np.int64)
    vw = np.sqrt(followers[:users])
    for a in np.flatnonzero(kind == ABU).tolist():
        members = np.flatnonzero(community[:users] == community[a])
        members = members[members != a]
        if not len(members):
            members = np.arange(users)
        out[a] = rng.choice(members, size=4, p=vw[members] / vw[members].sum())
    return out


@dataclass
class CampaignPlan:
    """The planned harassment campaigns: per campaign its target and window; per post its
    campaign, author and time (sorted by time)."""

    target: np.ndarray
    start: np.ndarray
    authors: list[list[int]]
    post_campaign: np.ndarray
    post_author: np.ndarray
    post_ts: np.ndarray


def plan_campaigns(rng, w, users: int, days: int, start_ms: int, n: int) -> CampaignPlan:
    """``n`` campaigns on targets of the abusive communities (ordinary accounts that exist from
    the start), at uniform times from the second day on (its accounts must exist before it)."""
    window = int(P.campaign_window_hours * HOUR)
    ordinary = np.flatnonzero((w.kind[:users] == ORD) & (w.created[:users] < start_ms))
    k = max(1, min(P.abusive_communities, int(w.community.max()) + 1))
    pool = ordinary[w.community[ordinary] < k]
    pool = pool if len(pool) else ordinary
    abusers = np.flatnonzero(w.kind[:users] == ABU)
    targets, starts, authors, rows = [], [], [], []
    lo, hi = start_ms + min(DAY, (days * DAY) // 2), start_ms + days * DAY - window
    for c in range(n):
        wt = np.sqrt(w.followers[pool])
        target = int(rng.choice(pool, p=wt / wt.sum()))
        start = int(rng.integers(lo, max(hi, lo + 1)))
        who = _campaign_authors(rng, w, abusers, target, start)
        for a in who:
            for _ in range(int(rng.integers(1, P.campaign_posts_max + 1))):
                rows.append((start + int(rng.integers(0, window)), a, c))
        targets.append(target)
        starts.append(start)
        authors.append(who)
    rows.sort()
    ts, au, cid = (
        (np.array(x, np.int64) for x in zip(*rows)) if rows else (np.zeros(0, np.int64),) * 3
    )
    return CampaignPlan(
        np.array(targets, np.int64), np.array(starts, np.int64), authors, cid, au, ts
    )


def _campaign_authors(rng, w, abusers: np.ndarray, target: int, start: int) -> list[int]:
    """The campaign's accounts: newly arrived abusers (``P.p_campaign_young_author`` each), then
    abusers of the target's community, then any abuser; all created before the campaign."""
    m = int(rng.integers(P.campaign_authors_min, P.campaign_authors_max + 1))
    ok = abusers[(w.created[abusers] < start) & (abusers != target)]
    young = ok[w.arrival_day[ok] >= 0]
    local = ok[(w.community[ok] == w.community[target]) & (w.arrival_day[ok] < 0)]
    picked: list[int] = []
    for _ in range(m):
        free_young, free_local, free_any = (np.setdiff1d(p, picked) for p in (young, local, ok))
        if not len(free_any):
            break
        if len(free_young) and rng.random() < P.p_campaign_young_author:
            src = free_young
        else:
            src = free_local if len(free_local) else free_any
        picked.append(int(rng.choice(src)))
    return sorted(picked)


def resolve(world: WorldOptions | str | None = None, **overrides) -> WorldOptions:
    """The options of a named world (``WORLDS``) with explicit values (not None) on top."""
    from dataclasses import replace

    from sim.params import WORLDS
    from vigil.errors import UserError

    if isinstance(world, WorldOptions):
        base = world
    else:
        name = world or "default"
        if name not in WORLDS:
            raise UserError(f"--world {name!r} is not a world: use one of {', '.join(WORLDS)}.")
        base = WORLDS[name]
    opts = replace(base, **{k: v for k, v in overrides.items() if v is not None})
    if opts.communities < 0 or opts.campaigns < 0 or opts.arrival_waves < 1:
        raise UserError(
            "--communities and --campaigns must be >= 0 and --arrival-waves >= 1 "
            f"(got {opts.communities}, {opts.campaigns}, {opts.arrival_waves})."
        )
    if not 0.0 <= opts.arrival_share <= 0.5:
        raise UserError(f"--arrival-share {opts.arrival_share} must be between 0 and 0.5.")
    return opts


def write_truth(out, w, pile_on_posts: dict[int, list[int]]) -> dict:
    """``_truth/graph_users.jsonl`` (community, arrival day per account) and
    ``_truth/harassment_campaigns.jsonl``; returns the counts for the summary."""
    import json

    from sim.events import _iso

    with open(out / "_truth" / "graph_users.jsonl", "w") as f:
        f.writelines(
            json.dumps({"user_id": i + 1, "community": c, "arrival_day": d}) + "\n"
            for i, (c, d) in enumerate(zip(w.community.tolist(), w.arrival_day.tolist()))
        )
    plan = w.campaigns
    n_campaigns = 0 if plan is None else len(plan.target)
    with open(out / "_truth" / "harassment_campaigns.jsonl", "w") as f:
        for c in range(n_campaigns):
            start = int(plan.start[c])
            row = {
                "campaign": c,
                "target_id": int(plan.target[c]) + 1,
                "starts_at": _iso(start),
                "ends_at": _iso(start + int(P.campaign_window_hours * HOUR)),
                "author_ids": [a + 1 for a in plan.authors[c]],
                "post_ids": pile_on_posts.get(c, []),
            }
            f.write(json.dumps(row) + "\n")
    return {
        "world": w.options.to_dict(),
        "arrivals": int((w.arrival_day >= 0).sum()),
        "harassment_campaigns": n_campaigns,
        "harassment_campaign_posts": int(sum(len(v) for v in pile_on_posts.values())),
    }
