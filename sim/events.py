"""Columnar event batches, the live-post table and timestamps of the simulated world."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from sim.params import VIEW_SCALE_H, VIEW_SHAPE


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _iso(ms: int) -> str:
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


_COLS = ("ts", "user", "action", "post", "target", "text", "country")


# Column dtypes: user ids fit in int32 (up to 2.1 billion accounts); post ids and times are int64.
_DTYPES = {
    "ts": np.int64,
    "user": np.int32,
    "action": np.int8,
    "post": np.int64,
    "target": np.int32,
    "text": np.int32,
    "country": np.int16,
}


class _Batch:
    """Columnar events under construction; ``user``/``target`` are user ids, 0 = null."""

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {c: [] for c in _COLS}
        self.texts: list[str] = []

    def add(self, ts, user, action, post=None, target=None, texts=None, country=None) -> None:
        k = len(ts)
        if k == 0:
            return
        t = _DTYPES
        self.parts["ts"].append(np.asarray(ts, t["ts"]))
        self.parts["user"].append(np.asarray(user, t["user"]))
        self.parts["action"].append(np.full(k, action, t["action"]))
        self.parts["post"].append(
            np.zeros(k, t["post"]) if post is None else np.asarray(post, t["post"])
        )
        self.parts["target"].append(
            np.zeros(k, t["target"]) if target is None else np.asarray(target, t["target"])
        )
        if texts is None:
            self.parts["text"].append(np.full(k, -1, t["text"]))
        else:
            self.parts["text"].append(
                np.arange(len(self.texts), len(self.texts) + k, dtype=t["text"])
            )
            self.texts.extend(texts)
        self.parts["country"].append(
            np.full(k, -1, t["country"]) if country is None else np.asarray(country, t["country"])
        )

    def columns(self) -> dict[str, np.ndarray]:
        """All events as one array per column; the parts are released."""
        out = {}
        for c in _COLS:
            parts = self.parts[c]
            out[c] = np.concatenate(parts) if parts else np.zeros(0, _DTYPES[c])
            self.parts[c] = []
        return out


def _take(cols: dict[str, np.ndarray], texts: list[str], idx: np.ndarray):
    """Rows ``idx`` of a batch with their texts re-indexed compactly."""
    sub = {c: cols[c][idx] for c in _COLS}
    refs = sub["text"]
    has = refs >= 0
    new_texts = [texts[i] for i in refs[has].tolist()]
    refs = refs.copy()
    refs[has] = np.arange(int(has.sum()))
    sub["text"] = refs
    return sub, new_texts


# --------------------------------------------------------------------------------------------
# live posts (the last week's posts: views, reactions, the 24-hour report window)
# --------------------------------------------------------------------------------------------

_LIVE = (
    "pid",
    "author",
    "created",
    "reach",
    "harm",
    "spam",
    "quality",
    "contr",
    "rnoise",
    "mention",
    "reports24",
    "views24",
    "first_report",
    "final",
    "types",
)


class _Live:
    def __init__(self) -> None:
        self.a = {
            "pid": np.zeros(0, np.int64),
            "author": np.zeros(0, np.int64),
            "created": np.zeros(0, np.int64),
            "reach": np.zeros(0),
            "harm": np.zeros(0, bool),
            "spam": np.zeros(0, bool),
            "quality": np.zeros(0),
            "contr": np.zeros(0),
            "rnoise": np.zeros(0),
            "mention": np.zeros(0, bool),
            "reports24": np.zeros(0, np.int32),
            "views24": np.zeros(0, np.int32),
            "first_report": np.zeros(0, np.int64),
            "final": np.zeros(0, bool),
            "types": np.zeros(0, np.uint8),
        }

    def __len__(self) -> int:
        return len(self.a["pid"])

    def append(self, new: dict[str, np.ndarray]) -> None:
        for k in _LIVE:
            self.a[k] = np.concatenate([self.a[k], new[k].astype(self.a[k].dtype)])

    def cut(self, n: int) -> None:
        for k in _LIVE:
            self.a[k] = self.a[k][n:]

    def index(self, pids: np.ndarray) -> np.ndarray:
        return pids - (self.a["pid"][0] if len(self) else 0)


def _lomax_cdf(age_h: np.ndarray) -> np.ndarray:
    return 1.0 - (1.0 + np.maximum(age_h, 0.0) / VIEW_SCALE_H) ** (-VIEW_SHAPE)
