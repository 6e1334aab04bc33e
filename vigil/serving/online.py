"""Online features fast enough to serve: Feast's online store read directly, registry resolved once.

Feast's ``get_online_features`` resolves the feature service against the registry, groups refs by
view, builds protobuf responses and converts them back on every call (~1 ms); ``features.
online_features`` also looks the registry up each time (~20 ms). :class:`OnlineReader` does the
registry work once, at construction, and then reads Feast's own key/value layout:

- SQLite (embedded default): one table ``<project>_<view>`` per feature view, one row per
  (serialized entity key, feature name) holding a serialized ``ValueProto``: one ``SELECT`` per
  entity covers every view on that entity (``UNION ALL``).
- Redis (production profile): one hash per entity, key = serialized entity key + project, field =
  murmur3(``<view>:<feature>``), plus ``_ts:<view>``: one ``HMGET`` per entity covers every view.

Values are decoded with Feast's own ``feast_value_type_to_python_type``, so a read returns exactly
what ``get_online_features(...).to_dict()`` returns for one row (a missing entity: every value
None). Feast 0.67's ``precompute_online`` keys a service's vector on its first view's entity only,
so a service over a post and its author (moderation_v1) cannot use it; reading per entity as
here gives the same "one lookup per entity".
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Any

from vigil.errors import UserError
from vigil.serving import features

log = logging.getLogger(__name__)

AUTHOR_KEY = "author_id"  # post_behavior's column naming a post's author (not a model feature)


class OnlineReader:
    """Reads one feature service's online vector for a post and its author (see module doc)."""

    def __init__(self, feature_service: str = "moderation_v1") -> None:
        from feast.infra.online_stores.helpers import compute_table_id

        fs = features.store()
        features._require_applied(fs)
        self.store_kind = fs.config.online_store.type
        self.project = fs.project
        self.key_version = fs.config.entity_key_serialization_version
        service = fs.get_feature_service(feature_service)
        self.feature_service = feature_service
        versioning = bool(getattr(fs.config.registry, "enable_online_feature_view_versioning", 0))
        # view -> (join key, table name, requested feature names), in the service's order.
        self.views: dict[str, tuple[str, str, list[str]]] = {}
        for projection in service.feature_view_projections:
            view = fs.get_feature_view(projection.name)
            names = [f.name for f in projection.features]
            table = compute_table_id(self.project, view, versioning)
            self.views[projection.name] = (view.join_keys[0], table, names)
        self.join_keys = list(dict.fromkeys(key for key, _, _ in self.views.values()))
        self.columns = [f"{v}__{n}" for v, (_, _, names) in self.views.items() for n in names]
        self._local = threading.local()
        if self.store_kind == "sqlite":
            self._path = fs.config.online_store.path
            self._sql = {key: self._select_for(key) for key in self.join_keys}
        elif self.store_kind == "redis":
            self._redis = _redis_client(fs.config.online_store.connection_string)
            self._fields = {key: self._fields_for(key) for key in self.join_keys}
        else:
            raise UserError(
                f"online store {self.store_kind!r} is not supported here: use sqlite or redis "
                "(VIGIL_ONLINE_STORE)."
            )
        log.info(
            "online: %s reader for %s (%d views, %d features, project %s)",
            self.store_kind,
            feature_service,
            len(self.views),
            len(self.columns),
            self.project,
        )

    # ---- layout --------------------------------------------------------------------------------

    def _entity_key(self, join_key: str, value: int) -> bytes:
        from feast.infra.key_encoding_utils import serialize_entity_key
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        proto = EntityKey(join_keys=[join_key], entity_values=[Value(int64_val=int(value))])
        return serialize_entity_key(proto, entity_key_serialization_version=self.key_version)

    def _views_on(self, join_key: str) -> list[str]:
        return [view for view, (key, _, _) in self.views.items() if key == join_key]

    def _select_for(self, join_key: str) -> str:
        """One statement reading every view on this entity; the post's also reads its author."""
        parts = []
        for view in self._views_on(join_key):
            names = self.views[view][2] + ([AUTHOR_KEY] if join_key == "post_id" else [])
            marks = ",".join("?" * len(names))
            parts.append(
                f"SELECT '{view}', feature_name, value FROM \"{self.views[view][1]}\" "
                f"WHERE entity_key = ? AND feature_name IN ({marks})"
            )
        return " UNION ALL ".join(parts)

    def _sql_params(self, join_key: str, key: bytes) -> list:
        params: list = []
        for view in self._views_on(join_key):
            names = self.views[view][2] + ([AUTHOR_KEY] if join_key == "post_id" else [])
            params += [key, *names]
        return params

    def _fields_for(self, join_key: str) -> list[tuple[str, str, bytes]]:
        from feast.infra.online_stores.helpers import _mmh3

        fields = []
        for view in self._views_on(join_key):
            names = self.views[view][2] + ([AUTHOR_KEY] if join_key == "post_id" else [])
            fields += [(view, name, _mmh3(f"{view}:{name}")) for name in names]
        return fields

    # ---- reads ---------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True)
            except sqlite3.OperationalError:
                raise UserError(
                    f"the online store {self._path} does not exist: run `vigil features apply` "
                    "and `vigil features materialize`."
                ) from None
            self._local.conn = conn
        return conn

    def _read_entity(self, join_key: str, value: int) -> dict[tuple[str, str], Any]:
        """(view, feature) -> python value for the features stored for one entity."""
        from feast.protos.feast.types.Value_pb2 import Value
        from feast.type_map import feast_value_type_to_python_type

        key = self._entity_key(join_key, value)
        found: dict[tuple[str, str], Any] = {}
        if self.store_kind == "sqlite":
            try:
                rows = self._connection().execute(
                    self._sql[join_key], self._sql_params(join_key, key)
                )
                pairs = [((view, name), blob) for view, name, blob in rows]
            except sqlite3.DatabaseError as exc:
                raise UserError(
                    f"cannot read the online store {self._path} ({features.first_line(exc)}): "
                    "run `vigil features apply` and `vigil features materialize`."
                ) from None
        else:
            fields = self._fields[join_key]
            blobs = self._redis.hmget(key + self.project.encode(), [f for _, _, f in fields])
            pairs = [((view, name), blob) for (view, name, _), blob in zip(fields, blobs)]
        for where, blob in pairs:
            if blob:
                proto = Value()
                proto.ParseFromString(blob)
                found[where] = feast_value_type_to_python_type(proto)
        return found

    def read(self, post_id: int | None = None, user_id: int | None = None) -> dict[str, Any]:
        """The service's vector for a post and its author (or ``user_id``), as one flat dict:
        ``post_id``, ``user_id`` and one ``<view>__<feature>`` key per feature (None = missing),
        as Feast's ``get_online_features(...).to_dict()`` gives it for one row."""
        if post_id is None and user_id is None:
            raise UserError("give a post id, a user id, or both.")
        values: dict[tuple[str, str], Any] = {}
        if post_id is not None and "post_id" in self.join_keys:
            values.update(self._read_entity("post_id", post_id))
            if user_id is None:
                user_id = values.get(("post_behavior", AUTHOR_KEY))
        if user_id is not None and "user_id" in self.join_keys:
            values.update(self._read_entity("user_id", user_id))
        out: dict[str, Any] = {}
        if post_id is not None:
            out["post_id"] = int(post_id)
        out["user_id"] = None if user_id is None else int(user_id)
        for view, (_, _, names) in self.views.items():
            for name in names:
                out[f"{view}__{name}"] = values.get((view, name))
        return out

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _redis_client(connection_string: str):
    """A redis-py client for Feast's ``host:port[,db=..,password=..]`` connection string."""
    from feast.infra.online_stores.redis import RedisOnlineStore
    from redis import Redis

    nodes, params = RedisOnlineStore._parse_connection_string(connection_string)
    return Redis(host=nodes[0]["host"], port=int(nodes[0]["port"]), **params)
