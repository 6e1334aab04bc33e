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
