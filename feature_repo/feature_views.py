"""Feature views over the feature marts: typed schemas, ttl, owner and description tags.

The ttl is how far back a point-in-time join (and an online read) looks for a row: the user marts
have one row per user and active day, so 30 days; post snapshots are hourly and a post's
behaviour after a week no longer matters to moderation, so 7 days.
"""

from datetime import timedelta

from data_sources import (
    account_features_source,
    contributor_reputation_source,
    creator_context_push,
    note_status_source,
    post_behavior_source,
    post_best_note_source,
    ranking_sources,
    user_activity_push,
    user_graph_embedding_source,
    user_labels_source,
)
from entities import author, contributor, note, post, topic, user
from feast import FeatureView, Field
from feast.types import Float64, Int64, String

from vigil.accounts import features as account_features
from vigil.graph import features as graph_features
from vigil.notes import features as note_features
from vigil.ranking import feature_tables as ranking_features
from vigil.rules import label_features

OWNER = "trust-and-safety-data"

user_activity_fv = FeatureView(
    name="user_activity",
    entities=[user],
    ttl=timedelta(days=30),
    schema=[
        Field(name="uam_30d", dtype=Int64, description="active minutes, last 30 days"),
        Field(name="active_days_30d", dtype=Int64, description="days with activity, last 30"),
        Field(name="uam_1d", dtype=Int64, description="active minutes on the day"),
    ],
    source=user_activity_push,
    online=True,
    description="User activity as of the start of each day (UAM and active days).",
    tags={"owner": OWNER, "description": "User Active Minutes and active days per user and day"},
)

_COUNT_7D_30D = ("reports", "dislikes", "blocks", "mutes", "shares")

creator_context_fv = FeatureView(
    name="creator_context",
    entities=[user],
    ttl=timedelta(days=30),
    schema=[
        *[
            Field(name=f"{kind}_received_{window}", dtype=Int64)
            for kind in _COUNT_7D_30D
            for window in ("7d", "30d")
        ],
        Field(name="views_received_30d", dtype=Int64),
        Field(name="posts_authored_30d", dtype=Int64),
        Field(name="posts_authored_total", dtype=Int64),
        Field(name="account_age_days", dtype=Float64),
        Field(name="login_countries_30d", dtype=Int64),
        Field(name="removals_total", dtype=Int64),
        Field(name="report_rate_bayes", dtype=Float64),
        Field(name="dislike_rate_bayes", dtype=Float64),
        Field(name="block_rate_bayes", dtype=Float64),
    ],
    source=creator_context_push,
    online=True,
    description="What happened to a user's content, as of the start of each day.",
    tags={
        "owner": OWNER,
        "description": "Creator reputation: reactions received, tallies and Bayesian rates",
    },
)

post_behavior_fv = FeatureView(
    name="post_behavior",
    entities=[post],
    ttl=timedelta(days=7),
    schema=[
        Field(name="author_id", dtype=Int64),
        Field(name="post_age_hours", dtype=Float64),
        Field(name="views", dtype=Int64),
        Field(name="likes", dtype=Int64),
        Field(name="shares", dtype=Int64),
        Field(name="replies", dtype=Int64),
        Field(name="dislikes", dtype=Int64),
        Field(name="reports", dtype=Int64),
        Field(name="blocks", dtype=Int64),
        Field(name="negative_replies", dtype=Int64),
        Field(name="negative_reactions_per_view", dtype=Float64),
        Field(name="reports_per_view", dtype=Float64),
        Field(name="shares_per_view", dtype=Float64),
    ],
    source=post_behavior_source,
    online=True,
    description="Audience behaviour on a post up to the top of each hour.",
    tags={"owner": OWNER, "description": "Hourly post behaviour counts and Bayesian ratios"},
)


# Community Notes views: columns defined once in vigil.notes.features.
_TYPES = {"int": Int64, "float": Float64, "string": String}


def _notes_view(table: str, entity, source, description: str) -> FeatureView:
    _, _, _, fields = note_features.VIEWS[table]
    return FeatureView(
        name=table,
        entities=[entity],
        ttl=timedelta(days=note_features.TTL_DAYS),
        schema=[
            Field(name=name, dtype=_TYPES[kind], description=text)
            for name, (kind, text) in fields.items()
        ],
        source=source,
        online=True,
        description=description,
        tags={"owner": OWNER, "description": description},
    )


note_status_fv = _notes_view(
    "note_status", note, note_status_source, "A note's current status and scores."
)
post_best_note_fv = _notes_view(
    "post_best_note", post, post_best_note_source, "The note shown on a post, if any."
)
contributor_reputation_fv = _notes_view(
    "contributor_reputation",
    contributor,
    contributor_reputation_source,
    "A contributor's reputation, helpfulness and collusion flag.",
)

# GraphSAGE user embeddings: columns defined once in vigil.graph.features (docs/graph.md).
user_graph_embedding_fv = FeatureView(
    name=graph_features.VIEW,
    entities=[user],
    ttl=timedelta(days=graph_features.TTL_DAYS),
    schema=[
        *[Field(name=name, dtype=Float64) for name in graph_features.FEATURES],
        Field(name="graph_source", dtype=String, description="graphsage / friends_mean / all_mean"),
    ],
    source=user_graph_embedding_source,
    online=True,
    description="A user's GraphSAGE embedding as of the end of each day.",
    tags={"owner": OWNER, "description": "GraphSAGE embedding of the follow + interaction graph"},
)


# Account features (issue 21): columns defined once in vigil.accounts.features (docs/accounts.md).
account_features_fv = FeatureView(
    name=account_features.TABLE,
    entities=[user],
    ttl=timedelta(days=account_features.TTL_DAYS),
    schema=[
        Field(name=name, dtype=Int64 if kind == "int" else Float64, description=text)
        for name, (kind, text) in account_features.FEATURES.items()
    ],
    source=account_features_source,
    online=True,
    description="An account's behaviour features as of the start of each day.",
    tags={"owner": OWNER, "description": "Account integrity features per user and day"},
)


# Active labels per user (issue 21): columns defined once in vigil.rules.label_features
# (docs/features.md). A row's values hold until the user's next row.
user_labels_fv = FeatureView(
    name=label_features.TABLE,
    entities=[user],
    ttl=timedelta(days=label_features.TTL_DAYS),
    schema=[
        Field(name=name, dtype=_TYPES[kind], description=text)
        for name, (kind, text) in label_features.FEATURES.items()
    ],
    source=user_labels_source,
    online=True,
    description="A user's active labels from the rules and reviewers' verdicts, point in time.",
    tags={"owner": OWNER, "description": "Active rule labels, throttle/suspend, last verdict"},
)


# The ranking features (issue 23): columns defined once in vigil.ranking.feature_tables
# (docs/ranking.md). Offline only (the daily batch ranks with point-in-time joins), so
# `vigil features materialize` does not copy them online.
_RANKING_ENTITIES = {"user_id": user, "post_id": post, "topic_id": topic, "author_id": author}
_RANKING_DESCRIPTIONS = {
    "post_topics": "A post's topic weights and main topic, from its creation.",
    "user_topic_interest": "A user's decayed engagement per topic as of each day's start.",
    "user_author_affinity": "A user's decayed engagement with an author as of each day's start.",
    "topic_velocity": "A topic's posts in the last hour against the 24 h before, hourly.",
}


def _ranking_view(table: str) -> FeatureView:
    keys, fields = ranking_features.VIEWS[table]
    return FeatureView(
        name=table,
        entities=[_RANKING_ENTITIES[k] for k in keys],
        ttl=timedelta(days=ranking_features.TTL_DAYS),
        schema=[
            Field(name=name, dtype=_TYPES[kind], description=text)
            for name, (kind, text) in fields.items()
        ],
        source=ranking_sources[table],
        online=False,
        description=_RANKING_DESCRIPTIONS[table],
        tags={"owner": OWNER, "description": _RANKING_DESCRIPTIONS[table]},
    )


post_topics_fv = _ranking_view("post_topics")
user_topic_interest_fv = _ranking_view("user_topic_interest")
user_author_affinity_fv = _ranking_view("user_author_affinity")
topic_velocity_fv = _ranking_view("topic_velocity")
