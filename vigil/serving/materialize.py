"""Bulk materialization: Feast's semantics and on-disk layout, written in batches.

Feast 0.67's local engine pulls every source row of the interval, de-duplicates them in pandas,
converts each cell to a protobuf ``Value`` one by one and, for SQLite, runs one ``INSERT`` per
(entity, feature). :func:`materialize_view` computes the same thing in bulk:

1. **What**: per entity, the source row with the latest ``event_timestamp`` (then latest created
   timestamp) within ``[start, end]``, both ends included: Feast's ``pull_all_from_table_or_query``
   filter followed by its dedup node, done by DuckDB in one query. No ttl cut, as in Feast
   (the ttl is applied by readers, not by materialization).
2. **Encoding**: each column is factorized and only its distinct values go through Feast's own
   ``python_values_to_proto_values`` (doubles are encoded directly: tag ``0x29`` + 8 bytes, the
   protobuf wire format of ``Value.double_val``); entity keys are Feast's
   ``serialize_entity_key`` prefix + the packed value, checked against Feast on a probe key.
3. **Writes**: SQLite: one ``executemany`` upsert per view in one transaction that leaves rows
   whose value and timestamps are unchanged untouched; Redis: pipelines of a few thousand
   entities that first read ``_ts:<view>`` and write only entities whose row is newer
   (Feast's Redis rule).

Layout (SQLite) is Feast's table ``<project>_<view>`` with the same columns and primary key, so
Feast's ``get_online_features``, its push and :mod:`vigil.serving.online` read it unchanged.
:func:`compact_table` stores it once instead of three times: the table is ``WITHOUT ROWID``
(clustered on the primary key, instead of a rowid table plus a primary-key index), Feast's
second index on ``entity_key`` (a prefix of that primary key) is replaced by an empty partial
index of the same name so that ``feast apply`` does not rebuild it, and ``value_text`` (the value
again, as text, only read by Feast's document search) is left NULL.
"""

from __future__ import annotations

import logging
import sqlite3
import struct
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa
    from feast import FeatureStore, FeatureView

log = logging.getLogger(__name__)

REDIS_CHUNK = 5000  # entities per Redis pipeline round trip
DOUBLE_TAG = b"\x29"  # Value.double_val: field 5, wire type 1 (64-bit)
CACHE_KIB = 256 * 1024  # page cache of the writing connection
COLUMNS = "entity_key, feature_name, value, value_text, event_ts, created_ts"


# --------------------------------------------------------------------------------------------
# 1. What to write: the latest row per entity in [start, end]
# --------------------------------------------------------------------------------------------


def latest_rows(view: FeatureView, start: datetime, end: datetime) -> pa.Table:
    """Per entity, the latest source row with ``start <= event_timestamp <= end`` (Arrow)."""
    import duckdb

    source = view.batch_source
    keys = [c.name for c in view.entity_columns]
    ts = source.timestamp_field
    created = source.created_timestamp_column or None
    wanted = [*keys, *(f.name for f in view.features), ts, *([created] if created else [])]
    cols = ", ".join(_quote(c) for c in wanted)
    order = f"{_quote(ts)} desc" + (f", {_quote(created)} desc" if created else "")
    sql = (
        f"select {cols} from read_parquet(?) where {_quote(ts)} >= ? and {_quote(ts)} <= ? "
        f"qualify row_number() over (partition by {', '.join(map(_quote, keys))} "
        f"order by {order}) = 1"
    )
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        return con.sql(sql, params=[source.path, start, end]).to_arrow_table()
    finally:
        con.close()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --------------------------------------------------------------------------------------------
# 2. Encoding, exactly as Feast's _convert_arrow_to_proto + online_write_batch
# --------------------------------------------------------------------------------------------


def encode_column(column: pa.ChunkedArray, value_type) -> list[bytes]:
    """Serialized ``ValueProto`` per cell, as Feast's materialization writes it."""
    import numpy as np
    import pandas as pd
    from feast.type_map import python_values_to_proto_values
    from feast.value_type import ValueType

    values = column.to_numpy(zero_copy_only=False)  # what Feast converts
    if value_type == ValueType.DOUBLE and values.dtype == np.float64:
        raw = values.astype("<f8").tobytes()
        nan = np.isnan(values)
        return [b"" if nan[i] else DOUBLE_TAG + raw[8 * i : 8 * i + 8] for i in range(len(values))]
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    blobs = [p.SerializeToString() for p in python_values_to_proto_values(uniques, value_type)]
    return [blobs[c] for c in codes.tolist()]


def entity_keys(fs: FeatureStore, view: FeatureView, table: pa.Table) -> list[bytes]:
    """Feast's serialized entity key per row (``serialize_entity_key``)."""
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.type_map import python_values_to_proto_values

    version = fs.config.entity_key_serialization_version
    columns = {c.name: c.dtype.to_value_type() for c in view.entity_columns}
    if len(columns) == 1 and str(next(iter(columns.values()))) == "ValueType.INT64":
        name = next(iter(columns))
        fast = _int64_keys(name, version, table.column(name).to_numpy(zero_copy_only=False))
        if fast is not None:
            return fast
    protos = {
        name: python_values_to_proto_values(
            table.column(name).to_numpy(zero_copy_only=False), value_type
        )
        for name, value_type in columns.items()
    }
    names = list(protos)
    return [
        serialize_entity_key(
            EntityKey(join_keys=names, entity_values=list(vals)),
            entity_key_serialization_version=version,
        )
        for vals in zip(*protos.values())
    ]


def _int64_keys(name: str, version: int, values) -> list[bytes] | None:
    """Prefix + little-endian int64, when Feast's encoding of probe keys has that shape."""
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    def feast_key(v: int) -> bytes:
        proto = EntityKey(join_keys=[name], entity_values=[Value(int64_val=v)])
        return serialize_entity_key(proto, entity_key_serialization_version=version)

    probe = feast_key(0)
    prefix = probe[:-8]
    if any(feast_key(v) != prefix + struct.pack("<q", v) for v in (1, -7, 2**40 + 3)):
        return None
    pack = struct.Struct("<q").pack
    return [prefix + pack(v) for v in values.tolist()]


def _timestamps(column: pa.ChunkedArray) -> list[datetime]:
    """Feast's event/created timestamps: pandas -> python datetimes, per distinct value."""
    import pandas as pd
    from feast.utils import _coerce_datetime

    codes, uniques = pd.factorize(column.to_numpy(zero_copy_only=False))
    converted = [_coerce_datetime(v) for v in pd.to_datetime(uniques)]
    return [converted[c] for c in codes.tolist()]


# --------------------------------------------------------------------------------------------
# 3. Writes
# --------------------------------------------------------------------------------------------


def compact_table(conn: sqlite3.Connection, table: str) -> bool:
    """Give ``table`` the compact layout (see module doc), creating or migrating it; True when
    it was changed. Migration copies the rows into a new table and drops the old one."""
    q = _quote(table)
    sql = conn.execute("select sql from sqlite_master where type='table' and name=?", [table])
    row = sql.fetchone()
    if row is not None and "WITHOUT ROWID" in row[0].upper():
        _placeholder_index(conn, table)
        return False
    create = (
        "CREATE TABLE {} (entity_key BLOB, feature_name TEXT, value BLOB, value_text TEXT, "
        "vector_value BLOB, event_ts timestamp, created_ts timestamp, "
        "PRIMARY KEY(entity_key, feature_name)) WITHOUT ROWID"
    )
    with conn:
        if row is None:
            conn.execute(create.format(q))
        else:
            tmp = _quote(table + "__compact")
            conn.execute(f"DROP TABLE IF EXISTS {tmp}")
            conn.execute(create.format(tmp))
            conn.execute(
                f"INSERT INTO {tmp} ({COLUMNS}, vector_value) "
                f"SELECT {COLUMNS.replace('value_text', 'NULL')}, vector_value FROM {q}"
            )
            conn.execute(f"DROP TABLE {q}")
            conn.execute(f"ALTER TABLE {tmp} RENAME TO {q}")
        _placeholder_index(conn, table)
    log.info(
        "materialize: %s %s in the compact layout", "created" if row is None else "migrated", table
    )
    return True


def _placeholder_index(conn: sqlite3.Connection, table: str) -> None:
    """Feast creates ``<table>_ek`` ON (entity_key) at every apply (``IF NOT EXISTS``): the
    primary key already starts with entity_key, so keep an empty partial index in its place."""
    name = table + "_ek"
    row = conn.execute("select sql from sqlite_master where type='index' and name=?", [name])
    found = row.fetchone()
    if found is not None and "WHERE 0" in (found[0] or "").upper():
        return
    with conn:
        conn.execute(f"DROP INDEX IF EXISTS {_quote(name)}")
        conn.execute(f"CREATE INDEX {_quote(name)} ON {_quote(table)} (entity_key) WHERE 0")


def write_sqlite(
    path: str, table: str, keys, features: dict[str, list[bytes]], event_ts, created_ts
) -> int:
    """Upsert every (entity, feature) cell; unchanged cells are left untouched. Returns the
    number of cells inserted or changed."""
    from feast.infra.online_stores.sqlite import adapt_datetime_epoch
    from feast.utils import to_naive_utc

    # Feast stores timestamps through its sqlite3 adapter: to_naive_utc, then epoch seconds.
    stored: dict[Any, int] = {}

    def epoch(ts):
        if ts is None:
            return None
        if ts not in stored:
            stored[ts] = adapt_datetime_epoch(to_naive_utc(ts))
        return stored[ts]

    ev = [epoch(t) for t in event_ts]
    cr = [epoch(t) for t in created_ts]
    names = sorted(features)
    blobs = [features[n] for n in names]
    # One wide row per entity, bound from Python (binding is the cost), in primary-key order so
    # the B-tree fills page by page; SQLite itself expands it into one row per feature.
    order = sorted(range(len(keys)), key=keys.__getitem__)
    wide = [(keys[i], ev[i], cr[i], *(col[i] for col in blobs)) for i in order]
    values = [f"v{j}" for j in range(len(names))]
    pick = "CASE n.i " + " ".join(f"WHEN {j} THEN w.{v}" for j, v in enumerate(values)) + " END"
    upsert = (
        f"INSERT INTO {_quote(table)} ({COLUMNS}) "
        f"SELECT w.k, n.name, {pick}, NULL, w.ts, w.cr FROM temp._vigil_wide AS w "
        "CROSS JOIN temp._vigil_names AS n WHERE true "
        "ON CONFLICT(entity_key, feature_name) DO UPDATE SET value = excluded.value, "
        "value_text = excluded.value_text, event_ts = excluded.event_ts, "
        "created_ts = excluded.created_ts WHERE value IS NOT excluded.value "
        "OR event_ts IS NOT excluded.event_ts OR created_ts IS NOT excluded.created_ts "
        "OR value_text IS NOT NULL"
    )
    conn = sqlite3.connect(path)
    try:
        compact_table(conn, table)
        conn.execute(f"pragma cache_size = -{CACHE_KIB}")
        conn.execute("pragma temp_store = memory")
        conn.execute(f"CREATE TEMP TABLE _vigil_wide (k BLOB, ts, cr, {', '.join(values)})")
        conn.execute("CREATE TEMP TABLE _vigil_names (i INTEGER, name TEXT)")
        marks = ", ".join("?" * (3 + len(values)))
        with conn:
            conn.executemany("INSERT INTO temp._vigil_names VALUES (?, ?)", enumerate(names))
            conn.executemany(f"INSERT INTO temp._vigil_wide VALUES ({marks})", wide)
            temp = conn.total_changes
            conn.execute(upsert)
        return conn.total_changes - temp
    finally:
        conn.close()


def write_redis(
    client,
    project: str,
    view: str,
    keys,
    features: dict[str, list[bytes]],
    event_ts,
    key_ttl: int | None,
) -> int:
    """HSET each entity's features and ``_ts:<view>``, skipping entities whose stored
    timestamp is as new or newer (Feast's rule). Returns the number of entities written."""
    from feast.infra.online_stores.helpers import _mmh3
    from feast.utils import make_tzaware
    from google.protobuf.timestamp_pb2 import Timestamp

    ts_key = f"_ts:{view}".encode()
    fields = [_mmh3(f"{view}:{name}") for name in features]
    blobs = list(features.values())
    suffix = project.encode()
    encoded: dict[Any, tuple[bytes, int]] = {}

    def stamp(ts) -> tuple[bytes, int]:
        if ts not in encoded:
            proto = Timestamp()
            proto.FromDatetime(make_tzaware(ts))
            encoded[ts] = (proto.SerializeToString(), proto.seconds * 10**9 + proto.nanos)
        return encoded[ts]

    written = 0
    for lo in range(0, len(keys), REDIS_CHUNK):
        chunk = range(lo, min(lo + REDIS_CHUNK, len(keys)))
        redis_keys = [keys[i] + suffix for i in chunk]
        with client.pipeline(transaction=False) as pipe:
            for k in redis_keys:
                pipe.hget(k, ts_key)
            previous = pipe.execute()
        with client.pipeline(transaction=False) as pipe:
            for i, k, prev in zip(chunk, redis_keys, previous):
                blob, nanos = stamp(event_ts[i])
                if prev and _nanos(prev) >= nanos:
                    continue
                mapping = {ts_key: blob}
                mapping.update(zip(fields, (col[i] for col in blobs)))
                pipe.hset(k, mapping=mapping)
                if key_ttl:
                    pipe.expire(k, key_ttl)
                written += 1
            pipe.execute()
    return written


def _nanos(blob: bytes) -> int:
    from google.protobuf.timestamp_pb2 import Timestamp

    proto = Timestamp()
    proto.ParseFromString(blob)
    return proto.seconds * 10**9 + proto.nanos


# --------------------------------------------------------------------------------------------
# One view
# --------------------------------------------------------------------------------------------


def materialize_view(fs: FeatureStore, view: FeatureView, start: datetime, end: datetime) -> dict:
    """Write the latest row per entity of ``view`` in ``[start, end]`` into the online store and
    record the interval in the registry, as ``fs.materialize`` does. Returns counts and times."""
    from feast.infra.online_stores.helpers import compute_table_id

    t0 = time.perf_counter()
    table = latest_rows(view, start, end)
    t_read = time.perf_counter() - t0
    keys = entity_keys(fs, view, table)
    features = {
        f.name: encode_column(table.column(f.name), f.dtype.to_value_type()) for f in view.features
    }
    source = view.batch_source
    event_ts = _timestamps(table.column(source.timestamp_field))
    created = source.created_timestamp_column
    created_ts = _timestamps(table.column(created)) if created else [None] * table.num_rows
    t_encode = time.perf_counter() - t0 - t_read
    online = fs.config.online_store
    if online.type == "sqlite":
        versioning = bool(getattr(fs.config.registry, "enable_online_feature_view_versioning", 0))
        name = compute_table_id(fs.project, view, versioning)
        path = str(_sqlite_path(fs))
        written = write_sqlite(path, name, keys, features, event_ts, created_ts)
    elif online.type == "redis":
        client = _redis(online.connection_string)
        try:
            written = write_redis(
                client, fs.project, view.name, keys, features, event_ts, online.key_ttl_seconds
            )
        finally:
            client.close()
    else:
        raise ValueError(
            f"online store {online.type!r}: bulk materialization supports sqlite, redis"
        )
    t_write = time.perf_counter() - t0 - t_read - t_encode
    fs.registry.apply_materialization(view, fs.project, start, end)
    unit = "cells" if online.type == "sqlite" else "entities"
    log.info(
        "materialize: %s: %d entities, %d %s written (read %.1f s, encode %.1f s, write %.1f s)",
        view.name,
        table.num_rows,
        written,
        unit,
        t_read,
        t_encode,
        t_write,
    )
    return {
        "entities": table.num_rows,
        "written": written,
        "unit": unit,
        "read_s": round(t_read, 3),
        "encode_s": round(t_encode, 3),
        "write_s": round(t_write, 3),
    }


def after_views(fs: FeatureStore, views: list[str]) -> None:
    """What Feast does after materializing: refresh the precomputed vectors of services with
    ``precompute_online`` over these views; then shrink a sparse SQLite file."""
    if views and hasattr(fs, "_precompute_affected_services"):
        fs._precompute_affected_services(views)
    if fs.config.online_store.type == "sqlite":
        vacuum_if_sparse(_sqlite_path(fs))


def _redis(connection_string: str):
    """A redis-py client for Feast's ``host:port[,db=..,password=..]`` connection string."""
    from feast.infra.online_stores.redis import RedisOnlineStore
    from redis import Redis

    nodes, params = RedisOnlineStore._parse_connection_string(connection_string)
    return Redis(host=nodes[0]["host"], port=int(nodes[0]["port"]), **params)


def _sqlite_path(fs: FeatureStore):
    from pathlib import Path

    path = Path(fs.config.online_store.path)
    if not path.is_absolute() and fs.config.repo_path:
        path = Path(fs.config.repo_path) / path
    return path


def vacuum_if_sparse(path, min_free: float = 0.25) -> bool:
    """VACUUM the SQLite store when at least ``min_free`` of its pages are free (after a
    migration or many deletes); True when it ran."""
    conn = sqlite3.connect(str(path))
    try:
        pages = conn.execute("pragma page_count").fetchone()[0]
        free = conn.execute("pragma freelist_count").fetchone()[0]
        if pages and free / pages >= min_free:
            conn.execute("VACUUM")
            log.info("materialize: vacuumed %s (%d of %d pages were free)", path, free, pages)
            return True
        return False
    finally:
        conn.close()
