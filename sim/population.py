"""The population: every account's latent kind and habits, drawn once per seed."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim import graph_world, vocabulary
from sim import text as sim_text
from sim.params import (
    ABU,
    BOT,
    CMP,
    COUNTRIES,
    DAY,
    HOUR,
    KIND_SHARES,
    N_HOME,
    ORD,
    REMOTE_COUNTRIES,
    P,
    WorldOptions,
)


@dataclass
class World:
    n: int  # total accounts, campaign bots included (index i is user_id i + 1)
    kind: np.ndarray
    campaign: np.ndarray
    p_active: np.ndarray
    extra_sessions: np.ndarray
    session_mu: np.ndarray
    post_rate: np.ndarray
    country: np.ndarray
    tz_min: np.ndarray
    created: np.ndarray
    followers: np.ndarray
    follow_cdf: np.ndarray
    adversarial: np.ndarray
    targeted: np.ndarray
    victims: np.ndarray  # (n, 4) user indices, meaningful for abusive users
    compromised_at: np.ndarray  # ms or -1
    attack_end: np.ndarray
    attacker_country: np.ndarray
    handle_adj: np.ndarray
    handle_noun: np.ndarray
    handle_num: np.ndarray
    # the graph world (sim.graph_world); defaults: one community, nobody arrives, no campaigns
    options: WorldOptions = field(default_factory=WorldOptions)
    community: np.ndarray | None = None
    arrival_day: np.ndarray | None = None  # 0-based day an account arrives in a wave, or -1
    comm_index: graph_world.CommunityIndex | None = None
    campaigns: graph_world.CampaignPlan | None = None

    def handle(self, i: int) -> str:
        return sim_text.handle(
            int(self.handle_adj[i]), int(self.handle_noun[i]), int(self.handle_num[i])
        )


def make_world(
    users: int,
    days: int,
    start_ms: int,
    seed: int,
    drift_day: int | None,
    options: WorldOptions | None = None,
) -> World:
    """Every account's kind and habits, drawn in a fixed order from one seeded generator; the
    graph world's options (``sim.graph_world``) draw from a second one, so with every option off
    the world is the default one, draw for draw."""
    opts = options or WorldOptions()
    rng = np.random.default_rng([seed, 0])
    g = np.random.default_rng([seed, 5])
    n_campaign = max(5, round(users * P.campaign_bot_share)) if drift_day else 0
    kind, campaign = _kinds(rng, users, n_campaign)
    arrival_day = np.full(len(kind), -1, np.int64)
    if opts.arrival_share > 0:
        arrival_day, kind = graph_world.arrivals(g, kind, users, days, opts)
    fields = {"n": len(kind), "kind": kind, "campaign": campaign}
    fields |= _habits(rng, kind)
    fields |= _homes(rng, len(kind))
    fields["created"] = _created(rng, kind, campaign, days, start_ms, drift_day)
    idx, when = graph_world.arrival_times(g, arrival_day, start_ms)
    fields["created"][idx] = when
    fields |= _audience(rng, kind, users)
    fields |= _takeovers(rng, kind, days, start_ms)
    fields |= _handles(rng, len(kind))
    w = World(**fields, options=opts, arrival_day=arrival_day)
    w.community = np.zeros(w.n, np.int64)
    if opts.communities > 0:
        w.community = graph_world.communities(g, kind, opts.communities)
        w.victims = graph_world.victims(g, w.community, w.followers, kind, users)
        w.comm_index = graph_world.CommunityIndex(w.community, w.followers, users)
    if opts.campaigns > 0:
        w.campaigns = graph_world.plan_campaigns(g, w, users, days, start_ms, opts.campaigns)
    return w


def _kinds(rng, users: int, n_campaign: int) -> tuple[np.ndarray, np.ndarray]:
    """Each account's kind; the drift's campaign bots come after the ``users`` accounts."""
    kind = rng.choice(4, size=users, p=KIND_SHARES).astype(np.int8)
    kind = np.concatenate([kind, np.full(n_campaign, BOT, np.int8)])
    campaign = np.zeros(len(kind), bool)
    campaign[users:] = True
    return kind, campaign


def _habits(rng, kind: np.ndarray) -> dict[str, np.ndarray]:
    """How often each account shows up, how many sessions, how long, how much it posts."""
    n = len(kind)
    p_active = np.clip(
        np.exp(rng.normal(P.active_log_mean, P.active_log_sd, n)), P.active_min, P.active_max
    )
    p_active[kind == ABU] = np.clip(
        p_active[kind == ABU] * P.abuser_activity_factor, P.abuser_active_min, P.active_max
    )
    p_active[kind == BOT] = P.bot_p_active
    extra_sessions = np.exp(rng.normal(P.extra_sessions_log_mean, P.extra_sessions_log_sd, n))
    session_mu = rng.normal(P.session_minutes_log_mean, P.session_minutes_log_sd, n)
    lurker = rng.random(n) < P.p_lurker
    post_rate = np.where(
        lurker, P.lurker_post_rate, np.exp(rng.normal(P.post_rate_log_mean, P.post_rate_log_sd, n))
    )
    post_rate[kind == ABU] = np.exp(
        rng.normal(P.abuser_post_rate_log_mean, P.abuser_post_rate_log_sd, int((kind == ABU).sum()))
    )
    return {
        "p_active": p_active,
        "extra_sessions": extra_sessions,
        "session_mu": session_mu,
        "post_rate": post_rate,
    }


def _homes(rng, n: int) -> dict[str, np.ndarray]:
    """Home country and its UTC offset in minutes (for the diurnal cycle)."""
    shares = np.array([s for _, s, _ in COUNTRIES])
    country = rng.choice(N_HOME, size=n, p=shares / shares.sum()).astype(np.int16)
    tz_min = np.array([o for _, _, o in COUNTRIES])[country] * 60
    return {"country": country, "tz_min": tz_min}


def _created(rng, kind, campaign, days: int, start_ms: int, drift_day: int | None) -> np.ndarray:
    """Account creation times (ms): mostly years old, a few sign up during the period."""
    n = len(kind)
    age_days = np.clip(
        np.exp(rng.normal(P.account_age_days_log_mean, P.account_age_days_log_sd, n)),
        P.account_age_days_min,
        P.account_age_days_max,
    )
    created = start_ms - (age_days * DAY).astype(np.int64)
    new_signup = rng.random(n) < P.p_new_signup
    created[new_signup] = start_ms + rng.integers(0, days * DAY, int(new_signup.sum()))
    bots = (kind == BOT) & ~campaign
    created[bots] = start_ms - rng.integers(DAY, P.bot_account_age_days_max * DAY, int(bots.sum()))
    n_campaign = int(campaign.sum())
    if n_campaign:
        created[campaign] = start_ms + (drift_day - 1) * DAY + rng.integers(0, 2 * HOUR, n_campaign)
    return created


def _audience(rng, kind: np.ndarray, users: int) -> dict[str, np.ndarray]:
    """Followers (and whom new follows go to), adversarial reporters and the creators they
    target, and each abuser's four favourite victims."""
    n = len(kind)
    followers = np.exp(rng.normal(P.followers_log_mean, P.followers_log_sd, n))
    followers[kind == BOT] = np.exp(
        rng.normal(P.bot_followers_log_mean, P.bot_followers_log_sd, int((kind == BOT).sum()))
    )
    w = followers / followers.sum()

    adversarial = (kind == ORD) & (rng.random(n) < P.p_adversarial_reporter)
    targeted = np.zeros(n, bool)
    n_targeted = max(1, round(users * P.targeted_creator_share))
    targeted[rng.choice(users, size=n_targeted, replace=False, p=w[:users] / w[:users].sum())] = (
        True
    )
    targeted &= kind == ORD

    vw = np.sqrt(followers[:users])
    victims = np.zeros((n, 4), np.int64)
    abusers = np.flatnonzero(kind == ABU)
    victims[abusers] = rng.choice(users, size=(len(abusers), 4), p=vw / vw.sum())
    return {
        "followers": followers,
        "follow_cdf": np.cumsum(w),
        "adversarial": adversarial,
        "targeted": targeted,
        "victims": victims,
    }


def _takeovers(rng, kind: np.ndarray, days: int, start_ms: int) -> dict[str, np.ndarray]:
    """When each compromised account is taken over, until when, and from which remote country."""
    n = len(kind)
    compromised_at = np.full(n, -1, np.int64)
    attack_end = np.full(n, -1, np.int64)
    attacker_country = np.full(n, -1, np.int16)
    cmp = np.flatnonzero(kind == CMP)
    lo, hi = (2 * DAY, (days - 1) * DAY) if days >= 4 else (DAY // 4, days * DAY - DAY // 4)
    compromised_at[cmp] = start_ms + rng.integers(lo, max(hi, lo + 1), len(cmp))
    attack_end[cmp] = compromised_at[cmp] + rng.integers(DAY // 2, 5 * DAY // 2, len(cmp))
    attacker_country[cmp] = N_HOME + rng.integers(0, len(REMOTE_COUNTRIES), len(cmp))
    return {
        "compromised_at": compromised_at,
        "attack_end": attack_end,
        "attacker_country": attacker_country,
    }


def _handles(rng, n: int) -> dict[str, np.ndarray]:
    """The parts of each account's handle (adjective, noun, number)."""
    return {
        "handle_adj": rng.integers(0, len(vocabulary.HANDLE_ADJ), n),
        "handle_noun": rng.integers(0, len(vocabulary.HANDLE_NOUN), n),
        "handle_num": rng.integers(1, 10_000, n),
    }
