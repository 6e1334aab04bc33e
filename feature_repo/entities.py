"""Entities: the keys every feature view joins on."""

from feast import Entity, ValueType

user = Entity(
    name="user",
    join_keys=["user_id"],
    value_type=ValueType.INT64,
    description="An account: actor of events, author of posts.",
    tags={"owner": "trust-and-safety-data"},
)

post = Entity(
    name="post",
    join_keys=["post_id"],
    value_type=ValueType.INT64,
    description="A post (top-level content item).",
    tags={"owner": "trust-and-safety-data"},
)

note = Entity(
    name="note",
    join_keys=["note_id"],
    value_type=ValueType.INT64,
    description="A Community Notes note (noteId of the download).",
    tags={"owner": "trust-and-safety-data"},
)

contributor = Entity(
    name="contributor",
    join_keys=["participant_id"],
    value_type=ValueType.STRING,
    description="A Community Notes contributor (participant id of the download).",
    tags={"owner": "trust-and-safety-data"},
)

# The ranking features (issue 23): a topic of the newest topic model version, and a post's author
# as the other side of a user's affinity (an account, keyed apart from the user it is paired with).
topic = Entity(
    name="topic",
    join_keys=["topic_id"],
    value_type=ValueType.INT64,
    description="A topic of the topic model (vigil.ranking.topics; ids 0..n_topics-1).",
    tags={"owner": "trust-and-safety-data"},
)

author = Entity(
    name="author",
    join_keys=["author_id"],
    value_type=ValueType.INT64,
    description="A post's author, paired with a user (user_author_affinity).",
    tags={"owner": "trust-and-safety-data"},
)
