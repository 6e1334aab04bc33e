"""The streaming trend detector on a hand-made burst and on flat Poisson noise."""

import numpy as np

from vigil.ranking.trends import HOUR, MINUTE, TrendDetector

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
