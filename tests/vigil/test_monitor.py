"""Drift statistics against hand-computed values, and the check/alert time series."""

import math
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pytest

from vigil import monitor


def test_psi_matches_hand_computation():
    # Reference: half 0s, half 1s -> two populated bins with 0.5 each.
    # Current: 80% 0s, 20% 1s.  PSI = 0.3 ln(0.8/0.5) + (-0.3) ln(0.2/0.5) = 0.415888...
    ref = [0.0] * 50 + [1.0] * 50
    cur = [0.0] * 80 + [1.0] * 20
    expected = 0.3 * math.log(0.8 / 0.5) + (-0.3) * math.log(0.2 / 0.5)
    assert monitor.psi(ref, cur) == pytest.approx(expected, rel=1e-9)


def test_psi_of_identical_samples_is_zero_and_nan_safe():
    values = [float(i % 17) for i in range(1000)]
    assert monitor.psi(values, values) == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(monitor.psi([], values))


def test_ks_statistic_hand_case():
    # ECDFs of {1,2,3,4} and {3,4,5,6} differ most at x in [2,3): 0.5 - 0 = 0.5.
    stat, p_value = monitor.ks_statistic([1, 2, 3, 4], [3, 4, 5, 6])
    assert stat == pytest.approx(0.5)
    assert 0 < p_value <= 1


def test_oov_share_ignores_handles_and_links():
    vocab = {"great", "game", "tonight"}
    # tokens counted: great game tonight wow -> 1 unseen of 4; @bob and the link are skipped
    assert monitor.oov_share(["great game tonight @bob http://x.io wow"], vocab) == pytest.approx(0.25)


def test_text_drift_excess_is_near_zero_without_new_words_and_large_with_them():
    ref = [f"lovely {w} day at the {w}" for w in ["park", "beach", "lake", "park", "beach", "lake"] * 20]
    same = ref[:40]
    new = [f"zorgle blarf {w} qux" for w in ["park", "beach"] * 20]
    assert monitor.text_drift(ref, same)["excess"] == pytest.approx(0.0, abs=1e-9)
    # "zorgle", "blarf", "qux" unseen: 3 of 4 tokens
    assert monitor.text_drift(ref, new)["excess"] == pytest.approx(0.75, abs=1e-9)


def _features(root, shift: float):
    """Hand-made feature tables: 20 days, the last 3 with report rates scaled by `shift`."""
    start = datetime(2026, 10, 1, tzinfo=timezone.utc)
    rows, posts = [], []
    for day in range(20):
        ts = start + timedelta(days=day, hours=12)
        factor = shift if day >= 17 else 1.0
        for i in range(60):
            post_id = day * 100 + i + 1
            rows.append({"post_id": post_id, "event_timestamp": ts, "views": 100,
                         "reports": int(2 * factor) if i % 2 else 0})
            words = "spamword offer click" if (day >= 17 and shift > 1) else "nice photo friends"
            posts.append({"post_id": post_id, "created_at": ts, "text": f"{words} {i % 5}"})
    features = root / "features"
    features.mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(features / "post_behavior.parquet")
    pd.DataFrame(posts).to_parquet(features / "posts.parquet")


@pytest.mark.parametrize("shift, expect_alerts", [(1.0, False), (3.0, True)])
def test_run_checks_writes_time_series_and_alerts(tmp_path, monkeypatch, shift, expect_alerts):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    monkeypatch.setattr(monitor, "monitored_features", lambda: {})
    _features(tmp_path, shift)
    run_day = date(2026, 10, 20)
    monitor.run_checks(run_day)
    monitor.run_checks(run_day)  # idempotent: the day's rows are replaced, not appended
    checks = pd.read_parquet(monitor.checks_path())
    assert sorted(checks["check"]) == ["report_rate", "text_oov"]
    alerts = monitor.read_alerts(run_day)
    assert (len(alerts) > 0) == expect_alerts
    if expect_alerts:
        # hand-computed: reference 1 report per view-100 on half the posts -> rate 0.01; recent 3x
        rate = checks.set_index("check").loc["report_rate", "value"]
        assert rate == pytest.approx(3.0)
        assert set(alerts["check"]) == {"report_rate", "text_oov"}


def test_oov_share_min_count_keeps_only_repeated_new_tokens():
    vocab = {"hello", "world"}
    # tokens: hello world vigx | hello vigx typo1 | vigx  -> 7 tokens; vigx (3x) new, typo1 (1x) new
    texts = ["hello world vigx", "hello vigx typo1", "vigx"]
    assert monitor.oov_share(texts, vocab) == pytest.approx(4 / 7)
    assert monitor.oov_share(texts, vocab, min_count=3) == pytest.approx(3 / 7)


def test_thresholds_file_and_alert_exclusion(tmp_path):
    f = tmp_path / "t.json"
    f.write_text('{"feature_psi": 0.3, "feature_alert_exclude": ["uam_*"]}')
    t = monitor.DriftThresholds.from_file(f)
    assert t.feature_psi == 0.3 and t.feature_alert_exclude == ("uam_*",) and t.report_rate_ratio == 1.5
    f.write_text('{"featur_psi": 0.3}')
    with pytest.raises(monitor.UserError, match="featur_psi"):
        monitor.DriftThresholds.from_file(f)
