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

import logging
import random
import threading
import time

from vigil.errors import UserError
from vigil.stream.state import StreamState

USER_ACTIVITY_PUSH = "user_activity_push"
CREATOR_CONTEXT_PUSH = "creator_context_push"
# the views behind the push sources; the stream writes those of their features it computes
# (vigil.stream.features.features_of), every other feature keeps its batch value
STREAM_VIEWS = ("user_activity", "creator_context")
log = logging.getLogger(__name__)


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
        # background writing (submit): rows waiting, users written since take_done, any error
        self._cond = threading.Condition()
        self._waiting: dict[int, dict] = {}
        self._waiting_ts: str | None = None
        self._waiting_arrivals: list[list] = []
        self._busy = False
        self._done: list[int] = []
        self._error: BaseException | None = None
        self._closing = False
        self._thread: threading.Thread | None = None

    # -- background writing: the processor goes on while a batch is written -----------------
    def submit(self, rows: list[dict], ts: str | None, arrivals: list[list]) -> None:
        """Queue the features of changed users (rows from ``StreamState.features_for``, taken by
        the caller at its checkpoint) to be written by the writer thread. Batches queued while
        one is being written are merged: a user's latest row wins."""
        with self._cond:
            self._raise_error()
            for row in rows:
                self._waiting[row["user_id"]] = row
            self._waiting_ts = ts
            self._waiting_arrivals.extend(arrivals)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="feast-push", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def take_done(self) -> list[int]:
        """Users whose features were written since the last call (to clear from the state's
        pending list)."""
        with self._cond:
            self._raise_error()
            done, self._done = self._done, []
        return done

    def flush(self) -> list[int]:
        """Wait until everything submitted is written; returns the users written since the last
        take_done."""
        with self._cond:
            while self._waiting or self._waiting_arrivals or self._busy:
                self._raise_error()
                self._cond.wait(0.1)
        return self.take_done()

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._waiting or self._waiting_arrivals or self._closing):
                    self._cond.wait()
                if self._closing and not (self._waiting or self._waiting_arrivals):
                    return
                rows = list(self._waiting.values())
                ts, arrivals = self._waiting_ts, self._waiting_arrivals
                self._waiting, self._waiting_arrivals = {}, []
                self._busy = True
            try:
                self._write_rows(rows, ts)
                self._record_lags(arrivals, time.time())
            except BaseException as exc:  # noqa: BLE001 - handed to the processor's thread
                log.error("stream: writing features to the online store failed: %s", exc)
                with self._cond:
                    self._error = exc
                    self._busy = False
                    self._cond.notify_all()
                return
            with self._cond:
                self._done.extend(r["user_id"] for r in rows)
                self._busy = False
                self._cond.notify_all()

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
        """Write the features of ``users`` now (in the caller's thread)."""
        self._write_rows(state.features_for(users) if users else [], state.watermark_iso())
        self._record_lags(arrivals, time.time())

    def _write_rows(self, rows: list[dict], ts: str | None) -> None:
        if not rows:
            return
        users = [r["user_id"] for r in rows]
        for view in self.views:
            self._write(view, users, rows, ts)
        self.rows_pushed += len(rows)

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
