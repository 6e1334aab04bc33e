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
