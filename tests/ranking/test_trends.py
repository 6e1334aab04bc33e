"""The streaming trend detector on a hand-made burst and on flat Poisson noise."""

import numpy as np
import pytest

from vigil.ranking.trends import HOUR, MINUTE, Trend, TrendDetector

START = 1_790_000_000_000


def _noise(rng, hours: float, per_hour: float, topics: int = 4, regions=("US", "GB")):
    n = rng.poisson(per_hour * hours * topics * len(regions))
    ts = np.sort(START + rng.integers(0, int(hours * HOUR), n))
    return [(int(t), int(rng.integers(topics)), str(rng.choice(regions))) for t in ts]


def _run(posts):
    det = TrendDetector(START)
    for ts, topic, region in sorted(posts):
        det.push(ts, topic, region)
    return det.trends


def test_burst_detected_within_ten_minutes_and_nothing_else():
    rng = np.random.default_rng(1)
    posts = _noise(rng, 24, per_hour=3)
    burst_at = START + 14 * HOUR
    # a regional burst: 3 posts a minute on topic 2 in GB for 30 minutes
    posts += [(burst_at + int(i * MINUTE / 3), 2, "GB") for i in range(90)]
    trends = _run(posts)
    assert len(trends) == 1
    t = trends[0]
    assert (t.topic, t.region) == (2, "GB")
    assert burst_at <= t.detected_ms <= burst_at + 10 * MINUTE


def test_worldwide_burst_is_worldwide():
    rng = np.random.default_rng(2)
    posts = _noise(rng, 24, per_hour=3)
    at = START + 10 * HOUR
    posts += [(at + i * 10_000, 1, ("US", "GB")[i % 2]) for i in range(120)]
    trends = _run(posts)
    assert len(trends) == 1 and trends[0].region is None and trends[0].topic == 1


def test_flat_noise_gives_no_trend():
    for seed in range(5):
        assert _run(_noise(np.random.default_rng(10 + seed), 48, per_hour=6)) == []


def _burst(at: int, topic: int, vec, n: int = 60, region: str = "GB"):
    """``n`` posts, one every 20 s, on ``topic`` with topic distribution ``vec``."""
    return [(at + i * 20_000, topic, region, np.asarray(vec, dtype=np.float32)) for i in range(n)]


def _run_vec(posts):
    det = TrendDetector(START)
    for ts, topic, region, *vec in sorted(posts, key=lambda p: p[0]):
        det.push(ts, topic, region, vec[0] if vec else None)
    return det.trends


def test_trend_similarity_is_the_cosine_of_mean_topic_distributions():
    t = Trend(1, 0, "GB", 0, 0, 0)
    t.absorb([np.array([1.0, 2.0, 0.0]), np.array([2.0, 2.0, 0.0])])  # sum (3, 4, 0)
    assert t.similarity(np.array([0.0, 1.0, 0.0])) == pytest.approx(0.8)  # 4 / 5
    assert t.similarity(np.array([0.0, 0.0, 1.0])) == 0.0
    assert t.similarity(np.array([0.0, 0.0, 0.0, 1.0])) == 0.0  # longer: padded with zeros


def test_split_topic_burst_joins_the_live_trend_and_another_subject_opens_its_own():
    posts = [(*p, None) for p in _noise(np.random.default_rng(3), 24, per_hour=3)]
    at = START + 14 * HOUR
    posts += _burst(at, 0, [0.9, 0.1, 0.0, 0.0])
    # 25 min later (well past the start) the same event's posts under topic 1; they keep
    # weight on topic 0. The trend's profile lies between (0.9, 0.1) and the noise's (1, 0),
    # so the cosine is at least 0.4 / 0.721 = 0.55 >= 0.2
    posts += _burst(at + 25 * MINUTE, 1, [0.4, 0.6, 0.0, 0.0])
    # a concurrent burst on another subject: the trend's profile has weight on topics 0 and 1
    # only, so the cosine is at most 0.05 / 0.951 = 0.053 < 0.2
    posts += _burst(at + 30 * MINUTE, 2, [0.05, 0.0, 0.95, 0.0], region="US")
    trends = _run_vec(posts)
    assert [(t.topics, t.region) for t in trends] == [({0, 1}, "GB"), ({2}, "US")]
    assert at <= trends[0].detected_ms <= at + 10 * MINUTE


def test_without_topic_distributions_different_topics_never_merge():
    posts = _noise(np.random.default_rng(4), 24, per_hour=3)
    at = START + 14 * HOUR
    posts += [(at + i * 20_000, 0, "GB") for i in range(60)]
    posts += [(at + 2 * MINUTE + i * 20_000, 1, "GB") for i in range(60)]
    assert [t.topics for t in _run(posts)] == [{0}, {1}]


def test_back_to_back_events_on_one_subject_are_two_trends():
    # two 20-min bursts on topic 2 in GB, the second 40 min after the first ended: the key is
    # quiet (no elevated post) for far longer than quiet_min (20 min) in between, so the second
    # burst opens its own trend, detected within 10 minutes of its start
    posts = _noise(np.random.default_rng(5), 24, per_hour=3)
    first, second = START + 12 * HOUR, START + 12 * HOUR + 60 * MINUTE
    posts += [(first + int(i * MINUTE / 3), 2, "GB") for i in range(60)]
    posts += [(second + int(i * MINUTE / 3), 2, "GB") for i in range(60)]
    trends = _run(posts)
    assert [(t.topic, t.region) for t in trends] == [(2, "GB"), (2, "GB")]
    assert first <= trends[0].detected_ms <= first + 10 * MINUTE
    assert second <= trends[1].detected_ms <= second + 10 * MINUTE


def test_a_second_region_joins_only_soon_after_detection():
    # a burst on topic 1 in GB; its own region's key keeps it, a US burst on the same topic
    # 5 min later joins (a worldwide event spreading: the trend becomes worldwide), while an
    # IN burst on topic 3 starting 40 min after a GB burst on topic 3 is another event
    posts = _noise(np.random.default_rng(6), 24, per_hour=3)
    at = START + 10 * HOUR
    posts += [(at + int(i * MINUTE / 3), 1, "GB") for i in range(90)]
    posts += [(at + 5 * MINUTE + int(i * MINUTE / 3), 1, "US") for i in range(90)]
    later = START + 16 * HOUR
    posts += [(later + int(i * MINUTE / 3), 3, "GB") for i in range(150)]
    posts += [(later + 40 * MINUTE + int(i * MINUTE / 3), 3, "IN") for i in range(60)]
    trends = _run(posts)
    assert [(t.topic, t.region) for t in trends] == [(1, None), (3, "GB"), (3, "IN")]
    assert later + 40 * MINUTE <= trends[2].detected_ms <= later + 50 * MINUTE


def test_evidence_is_the_detecting_window():
    det = TrendDetector(START)
    for i in range(200):  # quiet background on topic 0 for 8 h: one post every 2.4 min
        det.push(START + int(i * 2.4 * MINUTE), 0, "US", ref=("bg", i))
    at = START + 9 * HOUR
    for i in range(30):  # then one post every 20 s
        det.push(at + i * 20_000, 0, "US", ref=("burst", i))
    (t,) = det.trends
    # the window at detection: the burst's posts so far (no background post in the last 10 min)
    assert t.evidence == [("burst", i) for i in range(len(t.evidence))]
    assert t.detected_ms == at + (len(t.evidence) - 1) * 20_000
