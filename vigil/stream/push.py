"""Pushing the stream's features to the Feast online store, and measuring the lag.

Every checkpoint writes the changed users' features of ``user_activity`` and ``creator_context``
(the views behind the push sources ``user_activity_push`` and ``creator_context_push``) into the
online store, in Feast's own layout, with the bulk writer of :mod:`vigil.serving.materialize`:
one upsert per view (SQLite) or one pipeline (Redis), values encoded by Feast's converters. Only
the columns the stream computes are written: Feast keeps one cell per (entity, feature) (SQLite
row, Redis hash field), so the batch-only creator features (account age, removals, Bayesian
rates) keep the values the daily materialization wrote, without being read back and pushed again
as Feast's ``push`` (which writes whole rows) would need. The lag from an event's arrival (file
read, or XADD time for Redis) to its written feature is recorded.
"""

from __future__ import annotations

import random
import time

from vigil.errors import UserError
from vigil.stream.state import StreamState

USER_ACTIVITY_PUSH = "user_activity_push"
CREATOR_CONTEXT_PUSH = "creator_context_push"
# the views behind the push sources; the stream writes those of their features it computes
# (vigil.stream.features.features_of), every other feature keeps its batch value
STREAM_VIEWS = ("user_activity", "creator_context")


class FeastPusher:
    """Writes changed users' features to the online store in batches and measures the lag."""

    def __init__(self, seed: int = 0) -> None:
        try:
            from vigil.serving import features
        except ModuleNotFoundError as exc:
            raise UserError(f"Feast integration missing ({exc}): pass --no-push.") from None
        self.store = features.store()
        try:
            names = {ds.name for ds in self.store.list_data_sources()}
        except Exception as exc:  # noqa: BLE001 - any registry failure means "not applied"
            raise UserError(
                f"Feast registry not readable ({exc}): run `vigil features apply`."
            ) from None
        missing = {USER_ACTIVITY_PUSH, CREATOR_CONTEXT_PUSH} - names
        if missing:
            raise UserError(
                f"push sources {sorted(missing)} are not in the Feast registry: run "
                "`vigil features apply` first, or pass --no-push."
            )
        self.views = [self.store.get_feature_view(name) for name in STREAM_VIEWS]
        self.online = self.store.config.online_store
        if self.online.type not in ("sqlite", "redis"):
            raise UserError(
                f"online store {self.online.type!r}: vigil stream writes to sqlite or redis."
            )
        self.lags: list[float] = []
        self.n_lags = 0
        self.rng = random.Random(seed)
        self.rows_pushed = 0

    def _record_lags(self, arrivals: list[list], done: float) -> None:
        """``arrivals``: [arrival time, events] runs; keeps a reservoir sample of <= 200k lags."""
        for a, count in arrivals:
            for _ in range(count):
                self.n_lags += 1
                if len(self.lags) < 200_000:
                    self.lags.append(done - a)
                else:
                    j = self.rng.randrange(self.n_lags)
                    if j < 200_000:
                        self.lags[j] = done - a

    def push(self, state: StreamState, users: list[int], arrivals: list[list]) -> None:
        if users:
            rows = state.features_for(users)
            ts = state.watermark_iso()
            for view in self.views:
                self._write(view, users, rows, ts)
            self.rows_pushed += len(users)
        self._record_lags(arrivals, time.time())

    def _write(self, view, users: list[int], rows: list[dict], ts: str | None) -> None:
        """One view's stream columns for ``users`` at event time ``ts`` (the watermark)."""
        from datetime import UTC, datetime

        import pyarrow as pa
        from feast.infra.online_stores.helpers import compute_table_id
        from feast.value_type import ValueType

        from vigil.serving import materialize as bulk

        arrow = {ValueType.INT64: pa.int64(), ValueType.INT32: pa.int32()}
        arrow |= {ValueType.DOUBLE: pa.float64(), ValueType.FLOAT: pa.float32()}
        keys = bulk.entity_keys(
            self.store, view, pa.table({"user_id": pa.array(users, pa.int64())})
        )
        cells = {}
        for f in view.features:
            if f.name not in rows[0]:
                continue
            vtype = f.dtype.to_value_type()
            column = pa.array([r[f.name] for r in rows]).cast(arrow[vtype])
            cells[f.name] = bulk.encode_column(pa.chunked_array([column]), vtype)
        when = datetime.fromisoformat(ts) if ts else datetime.now(UTC)
        event_ts = [when] * len(users)
        if self.online.type == "sqlite":
            versioning = bool(
                getattr(self.store.config.registry, "enable_online_feature_view_versioning", 0)
            )
            table = compute_table_id(self.store.project, view, versioning)
            path = str(bulk._sqlite_path(self.store))
            bulk.write_sqlite(path, table, keys, cells, event_ts, [None] * len(users))
        else:
            client = bulk._redis(self.online.connection_string)
            try:
                bulk.write_redis(
                    client,
                    self.store.project,
                    view.name,
                    keys,
                    cells,
                    event_ts,
                    self.online.key_ttl_seconds,
                )
            finally:
                client.close()

    def lag_summary(self) -> dict[str, float | int]:
        if not self.lags:
            return {"events": 0}
        s = sorted(self.lags)
        pick = lambda q: s[min(len(s) - 1, int(q * len(s)))]
        return {
            "events": self.n_lags,
            "p50_s": round(pick(0.5), 4),
            "p99_s": round(pick(0.99), 4),
            "max_s": round(s[-1], 4),
        }
