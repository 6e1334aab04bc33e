"""Parameters of the discovery world (`vigil simulate-discovery`, :mod:`sim.discovery`).

Kept apart from :mod:`sim.params` so the default world (``vigil simulate``) never changes.
"""

from __future__ import annotations

from dataclasses import dataclass

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR

REGIONS = ("US", "GB", "IN", "BR", "DE")
REGION_WEIGHTS = (0.35, 0.15, 0.25, 0.15, 0.10)


@dataclass(frozen=True)
class DiscoveryParams:
    # people
    interest_alpha: float = 0.35  # Dirichlet concentration of topic interests (small: focused)
    viewpoint_majority: float = 0.6  # share of users in viewpoint camp +1
    abusive_share: float = 0.03  # authors who sometimes post harmful content
    p_harmful_abusive: float = 0.35  # chance an abusive author's post is harmful
    follows_mean: float = 30.0
    # posting
    posts_per_user_day: float = 1.6  # mean; each user's rate is lognormal around it
    diurnal_amplitude: float = 0.3  # posting and sessions follow the clock mildly
    # events (bursts): per day, share worldwide, posts per hour in the burst
    events_per_day: float = 3.0
    p_worldwide: float = 0.3
    event_rate_regional: tuple[float, float] = (50.0, 120.0)
    event_rate_worldwide: tuple[float, float] = (120.0, 300.0)
    event_hours: tuple[float, float] = (1.0, 3.0)
    event_rate_users: int = 2000  # event rates above are for this many users; scaled linearly
    # sessions and impressions
    p_active_day: float = 0.75
    sessions_per_active_day: float = 1.5
    impressions_per_session: int = 20
    p_explore_session: float = 0.2
    candidate_window_hours: float = 48.0
    # true utility (see sim.discovery.utility)
    w_interest: float = 3.0
    w_affinity: float = 1.0
    w_fresh: float = 1.2
    fresh_hours: float = 10.0
    w_quality: float = 1.0
    w_news: float = 1.5
    w_harm: float = 6.0
    w_viewpoint: float = 0.3  # a post from the other camp is worth a little less
    # engagement given utility u (logits) and position bias
    position_decay: float = 0.08
    like_bias: float = -5.0
    reply_bias: float = -7.0
    share_bias: float = -7.5
    slope: float = 1.3
    # moderation: harmful posts removed (labels.jsonl) with this chance, after a delay
    p_removed: float = 0.6
    removal_delay_hours: tuple[float, float] = (0.5, 12.0)


P = DiscoveryParams()
