"""Feature services, defined once: per model version, the features it reads, by feature view.

Plain Python with no Feast import, so the stream processor, training and the monitor can read it
cheaply. ``feature_repo/feature_services.py`` builds the Feast ``FeatureService`` objects from it;
:mod:`vigil.serving.features` derives the ``view:feature`` refs and column names from it.
"""

from __future__ import annotations

# post_behavior's counters of a post's reactions, in this order (the stream's exact post
# counters, vigil.stream.post_counters, keep the same ones).
POST_COUNTERS: tuple[str, ...] = (
    "views",
    "likes",
    "shares",
    "replies",
    "dislikes",
    "reports",
    "blocks",
    "negative_replies",
)

# moderation_v1: the harmful-content models (training/). Every feature of the three views but
# post_behavior.author_id (a key, not a signal) and user_activity.uam_1d (one day is noise).
MODERATION_V1: dict[str, tuple[str, ...]] = {
    "post_behavior": (
        "post_age_hours",
        *POST_COUNTERS,
        "negative_reactions_per_view",
        "reports_per_view",
        "shares_per_view",
    ),
    "creator_context": (
        "reports_received_7d",
        "reports_received_30d",
        "dislikes_received_7d",
        "dislikes_received_30d",
        "blocks_received_7d",
        "blocks_received_30d",
        "mutes_received_7d",
        "mutes_received_30d",
        "shares_received_7d",
        "shares_received_30d",
        "views_received_30d",
        "posts_authored_30d",
        "posts_authored_total",
        "account_age_days",
        "login_countries_30d",
        "removals_total",
        "report_rate_bayes",
        "dislike_rate_bayes",
        "block_rate_bayes",
    ),
    "user_activity": ("uam_30d", "active_days_30d"),
}

SERVICES: dict[str, dict[str, tuple[str, ...]]] = {"moderation_v1": MODERATION_V1}


def refs(service: str) -> tuple[str, ...]:
    """The ``view:feature`` refs of a service, in definition order."""
    return tuple(f"{view}:{name}" for view, names in SERVICES[service].items() for name in names)
