"""Trends for Explore: topics whose post rate departs from their baseline, per region and worldwide.

Streaming: :class:`TrendDetector` takes posts in time order (``push(ts, topic, region)``) and
returns the trends a post starts, so a burst surfaces at the post that makes it significant.
For each key (topic, region) and (topic, worldwide) it keeps the post times of the last day:
``c`` = posts in the last ``window_min`` minutes, ``mu`` = the key's rate over the day before that
window times the window. The key fires when ``c >= min_posts`` and the Poisson tail
P(X >= c | mu) is below ``p_value``. Firing keys are de-duplicated into trends by content, not
by time alone: a key firing on a topic with a live trend (one whose last firing is within
``cooldown_min``) extends it; a key firing on a new topic joins the live trend whose posts it
resembles most, when the cosine between the mean topic distribution of its window's posts and
the trend's (``Trend.profile``, the mean over the posts of its firings) is at least
``merge_similarity``: the topic model splits some subjects over two topics, and an event's
posts then carry weight on both, while another subject's burst has almost none on the trend's
topic. Otherwise it opens a new trend. Without topic distributions (``push(..., vec=None)``)
a post is its topic alone (one-hot), so different topics never merge. A trend is regional
when a regional key fires first, worldwide when the worldwide key fires first with window
posts from several regions, or when a second region's key fires.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import poisson

MINUTE = 60_000
HOUR = 60 * MINUTE
WORLD = "*"


@dataclass(frozen=True)
class TrendConfig:
    window_min: float = 10.0
    baseline_hours: float = 24.0
    warmup_hours: float = 6.0
    min_posts: int = 8
    p_value: float = 1e-7
    cooldown_min: float = 60.0
    merge_similarity: float = 0.2  # a new topic's burst this close in content joins a live trend
    min_strength: float = 0.3  # a post counts for its main topic only if it holds this share


@dataclass
class Trend:
    trend_id: int
    topic: int
    region: str | None  # None = worldwide
    detected_ms: int
    last_ms: int
    posts: int
    regions: set = field(default_factory=set)
    topics: set = field(default_factory=set)
    profile: np.ndarray | None = None  # sum of its firings' window posts' topic distributions
    n_profile: int = 0

    def similarity(self, centroid: np.ndarray) -> float:
        """Cosine between ``centroid`` and the trend's mean topic distribution."""
        if self.profile is None:
            return 0.0
        a, b = self.profile, centroid
        n = max(len(a), len(b))  # one-hot posts (no distribution) may differ in length
        a, b = np.pad(a, (0, n - len(a))), np.pad(b, (0, n - len(b)))
        den = float(np.linalg.norm(a) * np.linalg.norm(b))
        return float(a @ b) / den if den > 0 else 0.0

    def absorb(self, vecs: list[np.ndarray]) -> None:
        total = np.sum(vecs, axis=0)
        if self.profile is not None and len(self.profile) != len(total):
            n = max(len(self.profile), len(total))
            self.profile, total = (np.pad(v, (0, n - len(v))) for v in (self.profile, total))
        self.profile = total if self.profile is None else self.profile + total
        self.n_profile += len(vecs)


class TrendDetector:
    def __init__(self, start_ms: int, cfg: TrendConfig = TrendConfig()):
        if not 0.0 < cfg.merge_similarity <= 1.0:
            raise ValueError(f"merge_similarity={cfg.merge_similarity}: use a cosine in (0, 1].")
        self.cfg = cfg
        self.start_ms = start_ms
        self.keys: dict[tuple[int, str], tuple[deque, deque]] = {}  # window, baseline
        self.trends: list[Trend] = []
        self._w = int(cfg.window_min * MINUTE)
        self._b = int(cfg.baseline_hours * HOUR)

    def _fires(self, key: tuple[int, str], now: int) -> tuple[bool, list]:
        win, base = self.keys[key]
        while win and win[0][0] <= now - self._w:
            base.append(win.popleft()[0])
        while base and base[0] < now - self._w - self._b:
            base.popleft()
        c = len(win)
        if c < self.cfg.min_posts:
            return False, []
        span = min(self._b, now - self._w - self.start_ms)
        if span < self.cfg.warmup_hours * HOUR:
            return False, []
        mu = max(len(base) / span * self._w, 1e-3)
        return bool(poisson.sf(c - 1, mu) < self.cfg.p_value), list(win)

    def push(self, ts: int, topic: int, region: str, vec: np.ndarray | None = None) -> list[Trend]:
        """Add one post (``vec``: its topic distribution; None = its topic alone); return the
        trends it starts (usually none)."""
        new = []
        for key in ((topic, region), (topic, WORLD)):
            self.keys.setdefault(key, (deque(), deque()))[0].append((ts, region, vec))
            fired, window = self._fires(key, ts)
            if not fired:
                continue
            regions = [r for _, r, _ in window]
            vecs = _rows(topic, [v for _, _, v in window])
            live = self._live(topic, ts, np.mean(vecs, axis=0))
            if live is not None:
                live.absorb(vecs[-1:] if topic in live.topics else vecs)
                live.last_ms = ts
                live.posts += 1
                live.regions.update(regions)
                live.topics.add(topic)
                if key[1] != WORLD and live.region not in (None, key[1]):
                    live.region = None  # a second region fired: worldwide
                continue
            t = Trend(len(self.trends) + 1, topic, _region_of(key, regions), ts, ts, len(regions),
                      set(regions), {topic})  # fmt: skip
            t.absorb(vecs)
            self.trends.append(t)
            new.append(t)
        return new

    def _live(self, topic: int, now: int, centroid: np.ndarray) -> Trend | None:
        live = [t for t in self.trends if now - t.last_ms <= self.cfg.cooldown_min * MINUTE]
        for t in reversed(live):
            if topic in t.topics:
                return t
        best = max(live, key=lambda t: t.similarity(centroid), default=None)
        if best is not None and best.similarity(centroid) >= self.cfg.merge_similarity:
            return best  # another topic of the same event (the topic model split its subject)
        return None


def _rows(topic: int, vecs: list) -> list[np.ndarray]:
    """A key's window posts as topic distributions of one length (None: the key's topic)."""
    n = max([topic + 1] + [len(v) for v in vecs if v is not None])
    one_hot = np.zeros(n, dtype=np.float32)
    one_hot[topic] = 1.0
    return [one_hot if v is None else np.pad(np.asarray(v, dtype=np.float32), (0, n - len(v)))
            for v in vecs]  # fmt: skip


def _region_of(key: tuple[int, str], regions: list[str]) -> str | None:
    """A regional key's region; for the worldwide key, None when the window's posts are spread
    (two regions or more, none over 75%), else the region most of them come from."""
    if key[1] != WORLD:
        return key[1]
    top = max(set(regions), key=regions.count)
    spread = len(set(regions)) >= 2 and regions.count(top) <= 0.75 * len(regions)
    return None if spread else top


def detect(ts: np.ndarray, topic_vec: np.ndarray, regions: np.ndarray, start_ms: int,
           cfg: TrendConfig = TrendConfig()) -> list[Trend]:  # fmt: skip
    """Run the detector over posts in time order; return every trend found."""
    det = TrendDetector(start_ms, cfg)
    main = topic_vec.argmax(axis=1)
    strong = topic_vec.max(axis=1) >= cfg.min_strength
    order = np.argsort(ts, kind="stable")
    for i in order[strong[order]].tolist():
        det.push(int(ts[i]), int(main[i]), str(regions[i]), topic_vec[i])
    return det.trends


def explore(trends: list[Trend], now_ms: int, interest: np.ndarray, region: str, k: int = 10):
    """The Explore page: live trends ranked by the user's interest in their topic and region."""
    live = [t for t in trends if t.detected_ms <= now_ms and now_ms - t.last_ms <= HOUR]
    top = interest.max() or 1.0

    def score(t: Trend) -> float:
        local = t.region is None or t.region == region
        return interest[t.topic] / top + (0.5 if local else -1.0) + 0.001 * t.posts

    return sorted(live, key=score, reverse=True)[:k]
