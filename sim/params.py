"""The simulated world's fixed parameters: units, populations, rates and probabilities.

Module constants are the world's shape (countries, the diurnal cycle, the view-age distribution,
the labeling queue's inclusion probabilities); :data:`P` names every other probability and rate
the simulator draws with. Changing a value changes the world: the same arguments then give other,
but again byte-identical, files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vigil.contracts import ACTIONS, HARM_TYPES

DAY = 86_400_000
HOUR = 3_600_000
MINUTE = 60_000

KINDS = ("ordinary", "abusive", "spam_bot", "compromised")
ORD, ABU, BOT, CMP = range(4)
KIND_SHARES = (0.9855, 0.0100, 0.0015, 0.0030)
ACT = {name: i for i, name in enumerate(ACTIONS)}
HT_BIT = {name: 1 << i for i, name in enumerate(HARM_TYPES)}

# Countries: (alpha-2, share of users, UTC offset in hours for the diurnal cycle).
COUNTRIES = [
    ("US", 0.28, -5),
    ("IN", 0.11, 5),
    ("BR", 0.08, -3),
    ("GB", 0.07, 0),
    ("DE", 0.05, 1),
    ("FR", 0.04, 1),
    ("CA", 0.04, -5),
    ("MX", 0.04, -6),
    ("JP", 0.04, 9),
    ("AU", 0.03, 10),
    ("NG", 0.03, 1),
    ("PH", 0.03, 8),
    ("ID", 0.03, 7),
    ("ES", 0.02, 1),
    ("IT", 0.02, 1),
    ("KR", 0.02, 9),
    ("TR", 0.02, 3),
    ("PL", 0.015, 1),
    ("NL", 0.015, 1),
    ("SE", 0.01, 1),
    ("ZA", 0.01, 2),
    ("AR", 0.01, -3),
    ("EG", 0.01, 2),
]
# Where account takeovers and bot farms log in from (appended after the home countries).
REMOTE_COUNTRIES = ["RO", "VN", "KZ", "PA", "SC", "MD", "LT", "BY"]
COUNTRY_CODES = [c for c, _, _ in COUNTRIES] + REMOTE_COUNTRIES
N_HOME = len(COUNTRIES)

# Local-hour activity profile (quiet nights, evening peak).
DIURNAL = np.array(
    [
        3.5,
        2.0,
        1.2,
        0.8,
        0.7,
        1.0,
        2.0,
        3.5,
        4.5,
        4.5,
        4.5,
        4.8,
        5.2,
        5.0,
        4.7,
        4.6,
        4.8,
        5.5,
        6.2,
        6.8,
        7.0,
        6.8,
        6.0,
        4.8,
    ]
)
DIURNAL = DIURNAL / DIURNAL.sum()

# Views: post age (hours) ~ Lomax(scale, shape), truncated at a week.
VIEW_SCALE_H = 1.5
VIEW_SHAPE = 1.3
VIEW_HORIZON_H = 7 * 24.0
REACH_BASE = 0.85  # expected views = REACH_BASE * (followers + 1) ** 0.55 * virality
VIEW_SLICE = 300_000  # views generated (and their reactions) per vectorised slice

# Labeling queue: inclusion probabilities (sampling_weight = 1 / p) and moderator accuracy.
P_REPORTED = 0.9
P_RANDOM = 0.004  # audit: a uniform sample of posts nobody reported
P_REACH = 0.025  # audit: posts with at least REACH_VIEWS views in their first 24 h
REACH_VIEWS = 100
P_REPEAT = 0.025  # audit: posts by authors with an earlier post labeled harmful (abusers repeat)
MODERATOR_ACCURACY = 0.99

LATE_RATE = 0.005
DUPLICATE_RATE = 0.002
CORRUPTION_KINDS = (
    "not_json",
    "missing_field",
    "unknown_action",
    "bad_timestamp",
    "far_future_timestamp",
    "negative_id",
    "mistyped_field",
    "oversized_text",
    "invalid_utf8",
)


@dataclass(frozen=True)
class WorldParams:
    """Every probability and rate the simulator draws with, by the step that uses it.

    ``p_``: a probability; ``rate_``: a Poisson mean; ``log_mean``/``log_sd``: a log-normal's
    parameters. Reaction probabilities are per view; ``contr`` is a benign post's controversy
    (0..1), ``q`` its quality and ``early`` the share of a harmful post's audience that is hostile
    yet (it grows with the post's age). The delays between an event and what it triggers (a like
    seconds after its view) stay by the step that draws them, as do structural constants (24
    hours, 1440 minutes).
    """

    # population (sim.population)
    campaign_bot_share: float = 0.0015  # of --users, at least 5, only with --drift-day
    active_log_mean: float = -1.7  # daily probability of showing up: exp(normal), clipped
    active_log_sd: float = 1.2
    active_min: float = 0.02
    active_max: float = 0.97
    abuser_activity_factor: float = 2.0
    abuser_active_min: float = 0.1
    bot_p_active: float = 0.85
    extra_sessions_log_mean: float = -0.8
    extra_sessions_log_sd: float = 1.3
    session_minutes_log_mean: float = 0.7
    session_minutes_log_sd: float = 0.9
    p_lurker: float = 0.4
    lurker_post_rate: float = 0.01
    post_rate_log_mean: float = -0.4
    post_rate_log_sd: float = 0.9
    abuser_post_rate_log_mean: float = 0.0
    abuser_post_rate_log_sd: float = 0.4
    account_age_days_log_mean: float = 6.0
    account_age_days_log_sd: float = 1.0
    account_age_days_min: int = 10
    account_age_days_max: int = 4000
    bot_account_age_days_max: int = 60  # bots (but campaign bots) were created 1 to 60 days ago
    p_new_signup: float = 0.02
    followers_log_mean: float = 2.5
    followers_log_sd: float = 1.5
    bot_followers_log_mean: float = 2.0
    bot_followers_log_sd: float = 0.8
    p_adversarial_reporter: float = 0.004  # ordinary users who mass-report targeted creators
    targeted_creator_share: float = 0.003  # of --users, at least 1
    # sessions (sim.world)
    bot_sessions_min: int = 2
    bot_session_minutes_max: int = 3  # a bot session lasts 1 to this many minutes
    bot_rate_extra_sessions: int = 6
    session_minutes_noise_sd: float = 0.9
    session_minutes_max: int = 240
    rate_attacker_extra_sessions: float = 1.0
    attacker_session_minutes_max: int = 5  # a takeover session lasts 1 to this many minutes
    # logins
    p_login_attacker: float = 1.0
    p_login_bot: float = 0.5
    p_login_human: float = 0.45
    p_travel: float = 0.01  # a human logs in from another home country
    p_bot_vpn: float = 0.6  # a bot logs in from a remote country
    # posts
    p_campaign_bot_posts: float = 0.5  # per session
    rate_campaign_bot_extra_posts: float = 1.5
    p_bot_posts: float = 0.06
    rate_bot_extra_posts: float = 0.3
    p_attacker_posts: float = 0.35
    rate_attacker_extra_posts: float = 0.3
    virality_tail: float = 1.4  # Pareto exponent of a post's reach multiplier
    virality_max: float = 3000.0
    reach_followers_exponent: float = 0.55
    p_controversial: float = 0.04  # benign posts that draw dislikes and reports
    controversy_min: float = 0.3  # a controversial post's controversy ~ uniform(min, 1)
    quality_log_sd: float = 0.6
    report_noise_log_sd: float = 0.7
    # harmful posts (sim.posts)
    p_harmful_attacker: float = 0.9
    p_harmful_bot: float = 0.8
    p_harmful_abuser: float = 0.15
    p_harmful_ordinary: float = 0.0007
    p_bot_spam_also_hate: float = 0.03
    abuser_harassment_below: float = 0.5  # primary type: harassment below, hate below the next
    abuser_hate_below: float = 0.8
    other_harassment_below: float = 0.6
    other_hate_below: float = 0.85
    p_harassment_also_hate: float = 0.3
    p_harassment_also_threat: float = 0.15
    p_hate_also_threat: float = 0.2
    p_threat_also_harassment: float = 0.4
    p_threat_names_target: float = 0.6
    p_benign_mention: float = 0.15
    # mentioned users (sim.posts)
    p_mention_seen_harmful: float = 0.85
    p_mention_seen_benign: float = 0.7
    p_victim_reports: float = 0.45
    p_victim_blocks: float = 0.35
    p_victim_blocks_or_mutes: float = 0.45
    p_mentioned_likes: float = 0.45
    p_victim_replies: float = 0.2
    p_mentioned_replies: float = 0.25
    # views and reactions (sim.views)
    p_refresh: float = 0.03
    early_hostile_floor: float = 0.2  # early = floor + (1 - floor) * (1 - exp(-age_h / hours))
    early_hostile_hours: float = 3.0
    p_like_sympathetic: float = 0.25
    p_like_spam: float = 0.004
    p_like_harmful: float = 0.015
    p_like_per_quality: float = 0.06
    p_dislike_harmful: float = 0.10
    p_dislike_benign: float = 0.004
    p_dislike_per_controversy: float = 0.06
    p_dislike_adversarial: float = 0.3
    p_share_sympathetic: float = 0.05
    p_share_harmful: float = 0.002
    p_share_per_quality: float = 0.008
    p_report_spam: float = 0.15
    p_report_harmful: float = 0.30
    p_report_benign: float = 0.00005
    p_report_per_controversy: float = 0.002
    p_report_adversarial: float = 0.25
    p_block_harmful: float = 0.015
    p_block_benign: float = 0.0002
    p_block_per_controversy: float = 0.003
    p_mute_harmful: float = 0.01
    p_mute_benign: float = 0.0006
    p_mute_per_controversy: float = 0.002
    p_reply_harmful: float = 0.025
    p_reply_benign: float = 0.012
    p_reply_per_controversy: float = 0.02
    p_follow_sympathetic: float = 0.02
    p_follow_harmful: float = 0.0005
    p_follow_per_quality: float = 0.003
    p_unfollow_hostile: float = 0.004
    p_unfollow: float = 0.0003
    p_negative_reply_hostile: float = 0.7  # times early
    p_negative_reply_per_controversy: float = 0.6
    positive_reply_above: float = 0.8
    p_positive_benign_reply: float = 0.7
    p_bot_spam_reply: float = 0.3  # per spam-bot session
    # follows (sim.views)
    p_human_follows: float = 0.06  # per session
    rate_human_extra_follows: float = 0.5
    p_bot_follow_burst: float = 0.5
    p_attacker_follow_burst: float = 0.7
    follow_burst_min: int = 5
    follow_burst_max: int = 40
    attacker_burst_factor: float = 1.5
    p_human_unfollows: float = 0.01
    # the log pipeline (sim.writer)
    late_hours_p: float = 0.4  # a late line's delay in hours ~ geometric(p)
    p_late_next_day: float = 0.15
    # labels (sim.labeling)
    p_drop_secondary_type: float = 0.1  # a multi-type verdict misses its last type
    p_false_positive_hate: float = 0.6  # else spam, unless the post mentions someone
    label_delay_hours_median: float = 3.0
    label_delay_log_sd: float = 0.8
    label_delay_hours_min: float = 0.5
    label_delay_hours_max: float = 24.0
    audit_delay_hours_min: float = 2.0
    audit_delay_hours_max: float = 48.0
    # text grammar (sim.text); ``_below``: a uniform draw under it picks that branch
    p_second_topic: float = 0.2  # a benign template mixes in a second topic
    p_hashtag: float = 0.25
    mention_context_below: float = 0.3  # benign mention: context ("saw @x at ..."), then banter
    mention_banter_below: float = 0.5
    toxic_looking_below: float = 0.06  # benign post: toxic-looking, group talk, link, plain
    group_benign_below: float = 0.09
    benign_link_below: float = 0.13
    harass_context_below: float = 0.3  # harassment: context mention, veiled, then insult
    harass_veiled_below: float = 0.42
    p_veiled_hate: float = 0.15  # hate without a slur
    p_obfuscate_insult: float = 0.3
    p_obfuscate_slur: float = 0.3
    p_obfuscate_threat: float = 0.35
    p_obfuscate_drift: float = 0.4  # any post-drift word
    p_drift_insult: float = 0.8  # after the drift, a word comes from the new vocabulary
    p_drift_slur: float = 0.8
    p_drift_threat: float = 0.7
    p_drift_spam_link: float = 0.3
    p_spam_obfuscated: float = 0.1
    p_spam_no_link: float = 0.12
    p_reply_closer: float = 0.2
    # the graph world (sim.population, sim.posts, sim.views; only with WorldOptions switched on)
    community_size_alpha: float = 2.0  # community shares ~ Dirichlet(alpha, ..., alpha)
    abusive_communities: int = 2  # abusers and bots cluster in the first few communities
    p_abuser_clustered: float = 0.8  # an abuser (or bot) lives in an abusive community
    p_follow_within: float = 0.85  # a follow goes to the follower's own community
    p_view_within: float = 0.7  # a view goes to an in-session user of the author's community
    p_mention_within: float = 0.85  # a mention (or a victim) is someone of the author's community
    arrival_wave_days: int = 2  # a wave of new users lasts this many days
    arrival_abusive_share: float = 0.08  # of the arriving accounts (new abusive accounts)
    arrival_bot_share: float = 0.03
    campaign_authors_min: int = 3  # a harassment campaign: at least this many accounts ...
    campaign_authors_max: int = 8
    campaign_window_hours: float = 6.0  # ... pile onto one target within this many hours
    campaign_posts_max: int = 3  # each author writes 1 to this many posts naming the target
    p_campaign_young_author: float = 0.5  # an author is a newly arrived abuser when there is one


P = WorldParams()


@dataclass(frozen=True)
class WorldOptions:
    """Switches of the graph world (issue 26); all off by default, so the default world's files
    (and every figure measured on them) stay the same.

    ``communities``: users belong to this many communities and follow, view (so reply) and
    mention mostly within them; abusers, bots and their victims cluster (0: no communities).
    ``arrival_share``: this share of ``--users`` arrives during the month instead of before it,
    in ``arrival_waves`` waves of ``P.arrival_wave_days`` days, more often abusive than the rest.
    ``campaigns``: this many harassment campaigns, several accounts piling onto one target.
    """

    communities: int = 0
    arrival_share: float = 0.0
    arrival_waves: int = 3
    campaigns: int = 0

    @property
    def active(self) -> bool:
        return self != WorldOptions()

    def to_dict(self) -> dict:
        return {
            "communities": self.communities,
            "arrival_share": self.arrival_share,
            "arrival_waves": self.arrival_waves,
            "campaigns": self.campaigns,
        }


# Named worlds for `vigil simulate --world` and `python -m sim.sweep --world`.
WORLDS = {
    "default": WorldOptions(),
    "graph": WorldOptions(communities=20, arrival_share=0.1, arrival_waves=3, campaigns=12),
}
