"""Pushing the stream's features to the Feast online store, and measuring the lag.

Every checkpoint pushes the changed users' features through the push sources
``user_activity_push`` and ``creator_context_push``; the lag from an event's arrival (file read,
or XADD time for Redis) to its pushed feature is recorded.
"""

from __future__ import annotations

import random
import time

from vigil.errors import UserError
from vigil.stream.features import BATCH_ONLY_CREATOR_COLUMNS
from vigil.stream.state import StreamState

USER_ACTIVITY_PUSH = "user_activity_push"
CREATOR_CONTEXT_PUSH = "creator_context_push"


class FeastPusher:
    """Pushes changed users' features to the online store in batches and measures the lag."""

    def __init__(self, seed: int = 0) -> None:
        try:
            from vigil.serving import features
        except ModuleNotFoundError as exc:
            raise UserError(f"Feast integration missing ({exc}): pass --no-push.") from None
        from feast.data_source import PushMode

        self.mode = PushMode.ONLINE
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
        import pandas as pd

        if not users:
            self._record_lags(arrivals, time.time())
            return
        rows = state.features_for(users)
        df = pd.DataFrame(rows)
        wm = pd.Timestamp(state.watermark_iso() or pd.Timestamp.now(tz="UTC"))
        df["event_timestamp"] = wm
        ua = df[["user_id", "event_timestamp", "uam_30d", "active_days_30d", "uam_1d"]].copy()
        for c in ("uam_30d", "uam_1d"):
            ua[c] = ua[c].astype("float64")
        batch_only = self._batch_only(users)
        cc = df.drop(columns=["uam_30d", "active_days_30d", "uam_1d"]).merge(
            batch_only, on="user_id", how="left"
        )
        self.store.push(USER_ACTIVITY_PUSH, ua, to=self.mode)
        self.store.push(CREATOR_CONTEXT_PUSH, cc, to=self.mode)
        self.rows_pushed += len(df)
        self._record_lags(arrivals, time.time())

    def _batch_only(self, users: list[int]):
        """The latest batch values of the creator features the stream cannot compute (they need
        users, labels or batch priors): a push carries them as the online store has them."""
        import pandas as pd

        resp = self.store.get_online_features(
            features=[f"creator_context:{c}" for c in BATCH_ONLY_CREATOR_COLUMNS],
            entity_rows=[{"user_id": int(u)} for u in users],
        ).to_dict()
        out = pd.DataFrame({"user_id": users})
        for c in BATCH_ONLY_CREATOR_COLUMNS:
            vals = resp.get(c, [None] * len(users))
            if c == "removals_total":
                out[c] = pd.array([0 if v is None else int(v) for v in vals], dtype="int64")
            else:
                out[c] = pd.array(
                    [float("nan") if v is None else float(v) for v in vals], dtype="float64"
                )
        return out

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
