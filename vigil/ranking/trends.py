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
    quiet_min: float = 20.0  # a key that fires again after this long quiet is a new burst
    hot_p_value: float = 1e-2  # a key is quiet while its window's tail probability is above this
    spread_min: float = 20.0  # a new region may join a trend this long after its detection


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
    keys: dict = field(default_factory=dict)  # (topic, region) -> its last firing (ms)
    evidence: list = field(default_factory=list)  # the detecting window's post refs

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
        self.hot: dict[tuple[int, str], int] = {}  # key -> its last elevated post (ms)
        self.run_start: dict[tuple[int, str], int] = {}  # key -> start of its elevated run
        self._w = int(cfg.window_min * MINUTE)
        self._b = int(cfg.baseline_hours * HOUR)

    def _fires(self, key: tuple[int, str], now: int) -> tuple[bool, list]:
        win, base = self.keys[key]
        while win and win[0][0] <= now - self._w:
            base.append(win.popleft()[0])
        while base and base[0] < now - self._w - self._b:
            base.popleft()
        c = len(win)
        span = min(self._b, now - self._w - self.start_ms)
        if span < self.cfg.warmup_hours * HOUR:
            return False, []
        mu = max(len(base) / span * self._w, 1e-3)
        p = float(poisson.sf(c - 1, mu)) if c >= 2 else 1.0
        if p < self.cfg.hot_p_value:  # elevated; after a quiet spell, a new run starts
            if now - self.hot.get(key, self.start_ms) > self.cfg.quiet_min * MINUTE:
                self.run_start[key] = now
            self.hot[key] = now
        return bool(c >= self.cfg.min_posts and p < self.cfg.p_value), list(win)

    def push(self, ts: int, topic: int, region: str, vec: np.ndarray | None = None,
             ref=None) -> list[Trend]:  # fmt: skip
        """Add one post (``vec``: its topic distribution, None = its topic alone; ``ref``: any
        identifier, kept as a trend's evidence); return the trends it starts (usually none)."""
        new = []
        for key in ((topic, region), (topic, WORLD)):
            self.keys.setdefault(key, (deque(), deque()))[0].append((ts, region, vec, ref))
            fired, window = self._fires(key, ts)
            if not fired:
                continue
            regions = [w[1] for w in window]
            vecs = _rows(topic, [w[2] for w in window])
            live = self._live(key, ts, np.mean(vecs, axis=0), regions)
            if live is not None:
                live.absorb(vecs[-1:] if topic in live.topics else vecs)
                live.last_ms = ts
                live.posts += 1
                live.regions.update(regions)
                live.topics.add(topic)
                live.keys[key] = ts
                if key[1] != WORLD and live.region not in (None, key[1]):
                    live.region = None  # a second region fired soon after: worldwide
                continue
            taken = {t.region for t in self._same_topic(topic, ts)}  # those posts are explained
            own = [r for r in regions if r not in taken] or regions
            t = Trend(len(self.trends) + 1, topic, _region_of(key, own), ts, ts, len(regions),
                      set(regions), {topic}, keys={key: ts},
                      evidence=[w[3] for w in window])  # fmt: skip
            t.absorb(vecs)
            self.trends.append(t)
            new.append(t)
        return new

    def _live(self, key: tuple[int, str], now: int, centroid: np.ndarray,
              regions: list[str]) -> Trend | None:  # fmt: skip
        """The live trend a firing of ``key`` belongs to, or None (a new trend)."""
        live = [t for t in self.trends if now - t.last_ms <= self.cfg.cooldown_min * MINUTE]
        same = sorted(self._same_topic(key[0], now), key=lambda t: key not in t.keys)  # stable
        if same:
            return next((t for t in same if self._same_burst(t, key, now, regions)), None)
        best = max(live, key=lambda t: t.similarity(centroid), default=None)
        if best is not None and best.similarity(centroid) >= self.cfg.merge_similarity:
            return best  # another topic of the same event (the topic model split its subject)
        return None

    def _same_topic(self, topic: int, now: int) -> list[Trend]:
        """Live trends on ``topic``, newest first."""
        cut = now - self.cfg.cooldown_min * MINUTE
        return [t for t in reversed(self.trends) if t.last_ms >= cut and topic in t.topics]

    def _same_burst(self, t: Trend, key: tuple[int, str], now: int, regions: list[str]) -> bool:
        """Whether a firing of ``key`` continues trend ``t`` (on the same topic) rather than
        starting a new burst: the key fired for ``t`` within ``quiet_min`` (a key quiet for
        longer fires again: a second event on the subject); a new region joins only within
        ``spread_min`` of the detection (a worldwide event reaching the region's key), unless it
        is the trend's region; the worldwide key joins a regional trend unless its window is no
        longer mostly that region's (a worldwide event on top of a regional one)."""
        mostly_its_region = t.region is not None and regions.count(t.region) > 0.5 * len(regions)
        if key in t.keys:
            if self.run_start.get(key, 0) > t.keys[key]:
                return False  # the key went quiet after its last firing for t: a new burst
            if key[1] == WORLD and t.region is not None:
                return mostly_its_region or self._young(t, now)
            return True
        if key[1] == t.region or (key[1] == WORLD and mostly_its_region):
            return True
        return self._young(t, now)

    def _young(self, t: Trend, now: int) -> bool:
        return now - t.detected_ms <= self.cfg.spread_min * MINUTE


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
    """Run the detector over posts in time order; return every trend found (evidence: row
    positions into the inputs)."""
    det = TrendDetector(start_ms, cfg)
    main = topic_vec.argmax(axis=1)
    strong = topic_vec.max(axis=1) >= cfg.min_strength
    order = np.argsort(ts, kind="stable")
    for i in order[strong[order]].tolist():
        det.push(int(ts[i]), int(main[i]), str(regions[i]), topic_vec[i], ref=i)
    return det.trends


def explore(trends: list[Trend], now_ms: int, interest: np.ndarray, region: str, k: int = 10):
    """The Explore page: live trends ranked by the user's interest in their topic and region."""
    live = [t for t in trends if t.detected_ms <= now_ms and now_ms - t.last_ms <= HOUR]
    top = interest.max() or 1.0

    def score(t: Trend) -> float:
        local = t.region is None or t.region == region
        return interest[t.topic] / top + (0.5 if local else -1.0) + 0.001 * t.posts

    return sorted(live, key=score, reverse=True)[:k]
