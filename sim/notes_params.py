"""The Community Notes world's parameters: camps, notes, rating propensities, the colluding group.

A rating's propensity is ``y = base + leniency_u + helpfulness_n + factor_u * slant_n + noise``;
its level is HELPFUL above ``helpful_above``, NOT_HELPFUL below ``not_helpful_below``, SOMEWHAT
in between. The expected rating is then a monotone function of a one-factor model (intercepts
plus one product term), which is what the reference's matrix factorization describes.
"""

from __future__ import annotations

from dataclasses import dataclass

MINUTE = 60_000
HOUR = 3_600_000
DAY = 86_400_000

# Twitter's snowflake epoch: note ids carry their creation time like the real ones do.
SNOWFLAKE_EPOCH_MS = 1_288_834_974_657


@dataclass(frozen=True)
class NotesParams:
    """Every probability and scale the notes world draws with."""

    # contributors
    majority_share: float = 0.65  # camp +1; the rest are camp -1
    factor_mean: float = 1.0  # |viewpoint| of a contributor, camp sign attached
    factor_sd: float = 0.15
    leniency_sd: float = 0.08
    activity_log_sd: float = 1.0  # how many ratings a contributor gives (relative)
    writing_log_sd: float = 1.2  # how many notes a contributor writes (relative)
    p_joins_during_month: float = 0.25  # new contributors (userEnrollment newUser / earnedIn)
    successful_ratings_to_earn_in: int = 5
    # notes
    p_note_on_harmful_post: float = 0.5  # when the posts world has harmful posts
    synthetic_harmful_share: float = 0.02  # harmful share of posts made up from a count
    helpfulness_sd: float = 0.40
    harmful_post_helpfulness: float = 0.10  # notes on harmful posts are a bit more useful
    p_strong_slant: float = 0.30  # share of notes written strongly for the author's camp
    strong_slant_low: float = 0.35
    strong_slant_high: float = 0.70
    mild_slant_sd: float = 0.08
    popularity_log_sd: float = 0.6  # how many ratings a note draws (relative)
    p_misleading: float = 0.85  # classification MISINFORMED_OR_POTENTIALLY_MISLEADING
    p_media_note: float = 0.03
    # ratings
    base: float = 0.45
    rating_noise_sd: float = 0.25
    helpful_above: float = 0.70
    not_helpful_below: float = 0.30
    camp_choice_bias: float = 1.5  # raters pick notes slanted their way: exp(bias * camp * slant)
    delay_log_mean_minutes: float = 5.2  # lognormal delay note -> rating (median ~3 h)
    delay_log_sd: float = 1.3
    p_population_sampled: float = 0.1  # ratingSourceBucketed POPULATION_SAMPLED
    # the colluding group (all from the minority camp)
    colluder_note_share: float = 0.015  # of all notes, written by the group
    colluder_notes_per_member: float = 1.5  # at least this many group notes per member
    colluder_helpfulness_mean: float = -0.35
    colluder_helpfulness_sd: float = 0.15
    p_colluder_joins_burst: float = 0.8  # each other member rates a member's note HELPFUL
    burst_start_minutes: float = 6.0  # mean wait before a burst starts after the note appears
    burst_spread_minutes: float = 8.0  # members rate within this many minutes of the start


P = NotesParams()
