"""Feature services: one per model version, listing exactly the features that model reads."""

from feast import FeatureService
from feature_views import creator_context_fv, post_behavior_fv, user_activity_fv

# moderation_v1: the harmful-content models (training/). Keep in step with
# vigil.serving.features.MODERATION_V1_FEATURES (a test checks they agree).
moderation_v1 = FeatureService(
    name="moderation_v1",
    features=[
        post_behavior_fv[
            [
                "post_age_hours",
                "views",
                "likes",
                "shares",
                "replies",
                "dislikes",
                "reports",
                "blocks",
                "negative_replies",
                "negative_reactions_per_view",
                "reports_per_view",
                "shares_per_view",
            ]
        ],
        creator_context_fv[
            [
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
            ]
        ],
        user_activity_fv[["uam_30d", "active_days_30d"]],
    ],
    description="Features read by the moderation_v1 harmful-content models.",
    tags={"owner": "trust-and-safety-ml", "model": "moderation_v1"},
)
