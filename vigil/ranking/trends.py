"""Trends for Explore: topics whose post rate departs from their baseline, per region and worldwide.

Streaming: :class:`TrendDetector` takes posts in time order (``push(ts, topic, region)``) and
returns the trends a post starts, so a burst surfaces at the post that makes it significant.
For each key (topic, region) and (topic, worldwide) it keeps the post times of the last day:
``c`` = posts in the last ``window_min`` minutes, ``mu`` = the key's rate over the day before that
window times the window. The key fires when ``c >= min_posts`` and the Poisson tail
P(X >= c | mu) is below ``p_value``. Firing keys are de-duplicated into trends: a key firing on
a topic with a live trend (one that fired within ``cooldown_min``) extends it, and so does any
topic firing within ``merge_min`` of a trend's start (the topic model may split one subject into
two topics; two unrelated events starting within minutes of each other are merged too, a known
limit). A trend is regional when a regional key fires first, worldwide when the worldwide key
fires first with window posts from several regions, or when a second region's key fires.
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
    merge_min: float = 15.0  # topics bursting within this of a new trend are the same event
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


class TrendDetector:
    def __init__(self, start_ms: int, cfg: TrendConfig = TrendConfig()):
        self.cfg = cfg
        self.start_ms = start_ms
        self.keys: dict[tuple[int, str], tuple[deque, deque]] = {}  # window, baseline
        self.trends: list[Trend] = []
        self._w = int(cfg.window_min * MINUTE)
        self._b = int(cfg.baseline_hours * HOUR)

    def _fires(self, key: tuple[int, str], now: int) -> tuple[bool, list[str]]:
        win, base = self.keys[key]
        while win and win[0][0] <= now - self._w:
            base.append(win.popleft()[0])
        while base and base[0] < now - self._w - self._b:
            base.popleft()
        regions = [r for _, r in win]
        c = len(regions)
        if c < self.cfg.min_posts:
            return False, regions
        span = min(self._b, now - self._w - self.start_ms)
        if span < self.cfg.warmup_hours * HOUR:
            return False, regions
        mu = max(len(base) / span * self._w, 1e-3)
        return bool(poisson.sf(c - 1, mu) < self.cfg.p_value), regions

    def push(self, ts: int, topic: int, region: str) -> list[Trend]:
        """Add one post; return the trends it starts (usually none)."""
        new = []
        for key in ((topic, region), (topic, WORLD)):
            self.keys.setdefault(key, (deque(), deque()))[0].append((ts, region))
            fired, regions = self._fires(key, ts)
            if not fired:
                continue
            spread = len(set(regions)) >= 2 and max(
                regions.count(r) for r in set(regions)
            ) <= 0.75 * len(regions)
            live = self._live(topic, ts)
            if live is not None:
                live.last_ms = ts
                live.posts += 1
                live.regions.update(regions)
                live.topics.add(topic)
                if key[1] != WORLD and live.region not in (None, key[1]):
                    live.region = None  # a second region fired: worldwide
                continue
            if key[1] != WORLD:
                region_of = key[1]
            else:
                top = max(set(regions), key=regions.count)
                region_of = None if spread else top
            t = Trend(len(self.trends) + 1, topic, region_of, ts, ts, len(regions), set(regions),
                      {topic})  # fmt: skip
            self.trends.append(t)
            new.append(t)
        return new

    def _live(self, topic: int, now: int) -> Trend | None:
        for t in reversed(self.trends):
            if topic in t.topics and now - t.last_ms <= self.cfg.cooldown_min * MINUTE:
                return t
        for t in reversed(self.trends):  # another topic of an event that has just started
            if now - t.detected_ms <= self.cfg.merge_min * MINUTE:
                return t
        return None


def detect(ts: np.ndarray, topic_vec: np.ndarray, regions: np.ndarray, start_ms: int,
           cfg: TrendConfig = TrendConfig()) -> list[Trend]:  # fmt: skip
    """Run the detector over posts in time order; return every trend found."""
    det = TrendDetector(start_ms, cfg)
    main = topic_vec.argmax(axis=1)
    strong = topic_vec.max(axis=1) >= cfg.min_strength
    order = np.argsort(ts, kind="stable")
    for i in order[strong[order]].tolist():
        det.push(int(ts[i]), int(main[i]), str(regions[i]))
    return det.trends


def explore(trends: list[Trend], now_ms: int, interest: np.ndarray, region: str, k: int = 10):
    """The Explore page: live trends ranked by the user's interest in their topic and region."""
    live = [t for t in trends if t.detected_ms <= now_ms and now_ms - t.last_ms <= HOUR]
    top = interest.max() or 1.0

    def score(t: Trend) -> float:
        local = t.region is None or t.region == region
        return interest[t.topic] / top + (0.5 if local else -1.0) + 0.001 * t.posts

    return sorted(live, key=score, reverse=True)[:k]
