"""Writing the stream's exact post counters into the online store's ``post_behavior`` cells.

The scoring service reads a post's features from the ``post_behavior`` view of the online store
(:class:`vigil.serving.online.OnlineReader`); the daily materialization writes the hourly
snapshot there. ``vigil stream --post-counters`` overwrites, for every post whose counters
changed at a checkpoint, the cells of :data:`vigil.stream.post_counters.FEATURES` with the values
as of the checkpoint's watermark (and ``author_id`` when the stream saw the post's creation), in
Feast's layout, with the bulk writer of :mod:`vigil.serving.materialize` (as the user features'
:mod:`vigil.stream.push`). A post whose creation the stream has not seen gets its counts only:
its age and ratios keep the snapshot's values.

Written in the processor's thread right after the checkpoint commits and before its re-score
requests are handed to the deliverer, so a re-score reads counters that include the events that
triggered it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from vigil.errors import UserError
from vigil.stream.post_counters import COUNTERS, FEATURES

log = logging.getLogger(__name__)
VIEW = "post_behavior"


class PostPusher:
    """Writes post_behavior rows (from :meth:`PostCounterFeed.rows`) to the online store."""

    def __init__(self) -> None:
        try:
            from vigil.serving import features
        except ModuleNotFoundError as exc:
            raise UserError(f"Feast integration missing ({exc}): pass --no-push.") from None
        self.store = features.store()
        try:
            self.view = self.store.get_feature_view(VIEW)
        except Exception as exc:  # noqa: BLE001 - any registry failure means "not applied"
            raise UserError(
                f"feature view {VIEW} not in the Feast registry ({features.first_line(exc)}): "
                "run `vigil features apply`, or pass --no-push."
            ) from None
        self.online = self.store.config.online_store
        if self.online.type not in ("sqlite", "redis"):
            raise UserError(
                f"online store {self.online.type!r}: vigil stream writes to sqlite or redis."
            )
        self.types = {f.name: f.dtype.to_value_type() for f in self.view.features}
        self.rows_pushed = 0

    def write(self, rows: list[dict], ts: str | None) -> None:
        """Write the rows' cells at event time ``ts`` (ISO; None: now). Rows whose creation is
        unknown (``post_age_hours`` None) get their counts only."""
        full = [r for r in rows if r["post_age_hours"] is not None]
        counts = [r for r in rows if r["post_age_hours"] is None]
        when = datetime.fromisoformat(ts) if ts else datetime.now(UTC)
        for part, names in ((full, FEATURES), (counts, COUNTERS)):
            if not part:
                continue
            with_author = [r for r in part if r["author_id"] is not None]
            without = [r for r in part if r["author_id"] is None]
            self._write(with_author, (*names, "author_id"), when)
            self._write(without, names, when)
        self.rows_pushed += len(rows)

    def _write(self, rows: list[dict], names: tuple[str, ...], when: datetime) -> None:
        if not rows:
            return
        import pyarrow as pa
        from feast.infra.online_stores.helpers import compute_table_id
        from feast.value_type import ValueType

        from vigil.serving import materialize as bulk

        arrow = {ValueType.INT64: pa.int64(), ValueType.DOUBLE: pa.float64()}
        ids = [r["post_id"] for r in rows]
        keys = bulk.entity_keys(
            self.store, self.view, pa.table({"post_id": pa.array(ids, pa.int64())})
        )
        cells = {}
        for name in names:
            vtype = self.types[name]
            column = pa.array([r[name] for r in rows]).cast(arrow[vtype])
            cells[name] = bulk.encode_column(pa.chunked_array([column]), vtype)
        event_ts = [when] * len(rows)
        if self.online.type == "sqlite":
            versioning = bool(
                getattr(self.store.config.registry, "enable_online_feature_view_versioning", 0)
            )
            table = compute_table_id(self.store.project, self.view, versioning)
            path = str(bulk._sqlite_path(self.store))
            bulk.write_sqlite(path, table, keys, cells, event_ts, [None] * len(rows))
            return
        client = bulk._redis(self.online.connection_string)
        try:
            bulk.write_redis(
                client,
                self.store.project,
                VIEW,
                keys,
                cells,
                event_ts,
                self.online.key_ttl_seconds,
            )
        finally:
            client.close()


def push_posts(feed, pusher: PostPusher | None, state, post_ids: list[int]) -> None:
    """Write ``post_ids``' rows as of the state's watermark; they leave the checkpoint's pending
    list at the next checkpoint."""
    if pusher is None or not post_ids:
        return
    pusher.write(feed.rows(post_ids, max(state.watermark_ms, 0)), state.watermark_iso())
    feed.pushed.extend(post_ids)
