"""Data sources: the feature marts exported by dbt (docs/contracts.md section 3).

Paths are absolute and resolved from the data root when this module is imported (Feast's DuckDB
offline store resolves relative paths against the current directory, not the repo). Every row's
``event_timestamp`` is the moment its values became true; counts cover events strictly before it.
"""

from feast import FileSource, PushSource

from vigil.accounts import features as account_features
from vigil.config import paths
from vigil.graph import features as graph_features
from vigil.notes import features as note_features
from vigil.ranking import feature_tables as ranking_features
from vigil.rules import label_features


def _parquet(table: str) -> str:
    return str(paths().features / f"{table}.parquet")


user_activity_source = FileSource(
    name="user_activity_source",
    path=_parquet("user_activity"),
    timestamp_field="event_timestamp",
    description="Daily user activity snapshots (UAM, active days), one row per user and day.",
    tags={"owner": "trust-and-safety-data"},
)

creator_context_source = FileSource(
    name="creator_context_source",
    path=_parquet("creator_context"),
    timestamp_field="event_timestamp",
    description="Daily creator context snapshots: what happened to a user's content.",
    tags={"owner": "trust-and-safety-data"},
)

post_behavior_source = FileSource(
    name="post_behavior_source",
    path=_parquet("post_behavior"),
    timestamp_field="event_timestamp",
    description="Hourly post behavior snapshots: audience reactions up to the top of each hour.",
    tags={"owner": "trust-and-safety-data"},
)

# Push sources: the stream processor writes fresher values of the user views online. Their batch
# source is the mart above, used for point-in-time retrieval and materialization.
user_activity_push = PushSource(
    name="user_activity_push",
    batch_source=user_activity_source,
    description="Live UAM updates from `vigil stream`.",
    tags={"owner": "trust-and-safety-data"},
)

creator_context_push = PushSource(
    name="creator_context_push",
    batch_source=creator_context_source,
    description="Live creator tallies from `vigil stream`.",
    tags={"owner": "trust-and-safety-data"},
)

# Community Notes: the feature tables `vigil notes run` publishes (vigil.notes.features), one row
# per entity and change at the scoring run's time.
note_sources = {
    table: FileSource(
        name=f"{table}_source",
        path=_parquet(table),
        timestamp_field="event_timestamp",
        description=f"Community Notes {table.replace('_', ' ')}, one row per change.",
        tags={"owner": "trust-and-safety-data"},
    )
    for table in note_features.VIEWS
}
note_status_source = note_sources["note_status"]
post_best_note_source = note_sources["post_best_note"]
contributor_reputation_source = note_sources["contributor_reputation"]

# GraphSAGE user embeddings (`vigil graph embed`, columns in vigil.graph.features): one row per
# user and snapshot day.
user_graph_embedding_source = FileSource(
    name=f"{graph_features.VIEW}_source",
    path=_parquet(graph_features.VIEW),
    timestamp_field="event_timestamp",
    description="Daily GraphSAGE embeddings of users from the follow and interaction graph.",
    tags={"owner": "trust-and-safety-data"},
)

# Account integrity (issue 21): daily point-in-time account features (vigil.accounts.features).
account_features_source = FileSource(
    name=f"{account_features.TABLE}_source",
    path=_parquet(account_features.TABLE),
    timestamp_field="event_timestamp",
    description="Daily account features: cadence, duplication, churn, fingerprints, targets.",
    tags={"owner": "trust-and-safety-data"},
)

# Active labels per user (issue 21): the rules' applied labels and reviewers' verdicts, one row
# per user and moment they change (dbt mart user_labels; vigil.rules.label_features).
user_labels_source = FileSource(
    name=f"{label_features.TABLE}_source",
    path=_parquet(label_features.TABLE),
    timestamp_field="event_timestamp",
    description="A user's active labels (rules' effects, reviewers' verdicts) at every change.",
    tags={"owner": "trust-and-safety-data"},
)

# The ranking features (issue 23): the dbt marts over the topic step's post topics
# (vigil.ranking.feature_tables), one row per key and the moment its values became true.
ranking_sources = {
    table: FileSource(
        name=f"{table}_source",
        path=_parquet(table),
        timestamp_field="event_timestamp",
        description=f"Ranking feature mart {table} (empty without a topic model).",
        tags={"owner": "trust-and-safety-data"},
    )
    for table in ranking_features.VIEWS
}
post_topics_source = ranking_sources["post_topics"]
user_topic_interest_source = ranking_sources["user_topic_interest"]
user_author_affinity_source = ranking_sources["user_author_affinity"]
topic_velocity_source = ranking_sources["topic_velocity"]
