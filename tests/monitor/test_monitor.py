"""Drift statistics against hand-computed values, and the check/alert time series."""

import math
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from vigil.monitor import checks as monitor_checks
from vigil.monitor import drift as monitor


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
    assert monitor.oov_share(["great game tonight @bob http://x.io wow"], vocab) == pytest.approx(
        0.25
    )


def test_text_drift_excess_is_near_zero_without_new_words_and_large_with_them():
    ref = [
        f"lovely {w} day at the {w}"
        for w in ["park", "beach", "lake", "park", "beach", "lake"] * 20
    ]
    same = ref[:40]
    new = [f"zorgle blarf {w} qux" for w in ["park", "beach"] * 20]
    assert monitor.text_drift(ref, same)["excess"] == pytest.approx(0.0, abs=1e-9)
    # "zorgle", "blarf", "qux" unseen: 3 of 4 tokens
    assert monitor.text_drift(ref, new)["excess"] == pytest.approx(0.75, abs=1e-9)


def _features(root, shift: float):
    """Hand-made feature tables: 20 days, the last 3 with report rates scaled by `shift`."""
    start = datetime(2026, 10, 1, tzinfo=UTC)
    rows, posts = [], []
    for day in range(20):
        ts = start + timedelta(days=day, hours=12)
        factor = shift if day >= 17 else 1.0
        for i in range(60):
            post_id = day * 100 + i + 1
            rows.append(
                {
                    "post_id": post_id,
                    "event_timestamp": ts,
                    "views": 100,
                    "reports": int(2 * factor) if i % 2 else 0,
                }
            )
            words = "spamword offer click" if (day >= 17 and shift > 1) else "nice photo friends"
            posts.append({"post_id": post_id, "created_at": ts, "text": f"{words} {i % 5}"})
    features = root / "features"
    features.mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(features / "post_behavior.parquet")
    pd.DataFrame(posts).to_parquet(features / "posts.parquet")


@pytest.mark.parametrize("shift, expect_alerts", [(1.0, False), (3.0, True)])
def test_run_checks_writes_time_series_and_alerts(tmp_path, monkeypatch, shift, expect_alerts):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    monkeypatch.setattr(monitor_checks, "monitored_features", dict)
    _features(tmp_path, shift)
    run_day = date(2026, 10, 20)
    monitor.run_checks(run_day)
    monitor.run_checks(run_day)  # idempotent: the day's rows are replaced, not appended
    checks = pd.read_parquet(monitor.checks_path())
    assert sorted(checks["check"]) == ["report_rate", "text_new_posts", "text_oov"]
    alerts = monitor.read_alerts(run_day)
    assert (len(alerts) > 0) == expect_alerts
    if expect_alerts:
        # hand-computed: reference 1 report per view-100 on half the posts -> rate 0.01; recent 3x
        rate = checks.set_index("check").loc["report_rate", "value"]
        assert rate == pytest.approx(3.0)
        assert set(alerts["check"]) == {"report_rate", "text_new_posts", "text_oov"}
        # every recent post is "spamword offer click N": all hold the new words, none before
        assert checks.set_index("check").loc["text_new_posts", "value"] == pytest.approx(1.0)


def test_oov_share_min_count_keeps_only_repeated_new_tokens():
    vocab = {"hello", "world"}
    # tokens: hello world vigx | hello vigx typo1 | vigx  -> 7 tokens; vigx (3x) new, typo1 (1x) new
    texts = ["hello world vigx", "hello vigx typo1", "vigx"]
    assert monitor.oov_share(texts, vocab) == pytest.approx(4 / 7)
    assert monitor.oov_share(texts, vocab, min_count=3) == pytest.approx(3 / 7)


def test_new_token_posts_counts_posts_holding_a_repeated_new_token():
    vocab = {"hello", "world"}
    # new tokens per post: {vigx}, {vigx}, {typo1}, {vigx, airdrop}, {} -> vigx is in 3 posts,
    # typo1 and airdrop in 1: with min_posts=2 only vigx counts, 3 of 5 posts hold it
    texts = ["hello vigx", "vigx world", "hello typo1", "vigx airdrop @bob", "hello world"]
    out = monitor.new_token_posts(texts, vocab, min_posts=2)
    assert out["share"] == pytest.approx(3 / 5) and out["tokens"] == ["vigx"]
    assert monitor.new_token_posts(texts, vocab, min_posts=4)["share"] == 0.0


def test_text_drift_per_post_share_sees_a_few_new_words_the_token_share_dilutes():
    ref = [
        f"lovely {w} day at the {w}"
        for w in ["park", "beach", "lake", "park", "beach", "lake"] * 20
    ]
    # 36 ordinary posts (6 tokens each) and 4 campaign posts "claim vigx now park" (4 tokens,
    # 3 new, each new token in 4 posts >= min_count 3)
    cur = ref[:36] + ["claim vigx now park"] * 4
    out = monitor.text_drift(ref, cur, min_count=3)
    # per post: 4 of 40 posts hold a new repeated token; the held-out half has none
    assert out["post_excess"] == pytest.approx(4 / 40)
    # per token: 12 new of 36 * 6 + 4 * 4 = 232 tokens, about half the per-post share
    assert out["excess"] == pytest.approx(12 / 232)
    assert out["new_tokens"] == ["claim", "now", "vigx"]
    assert out["post_excess"] > monitor.DriftThresholds().text_new_posts
    assert monitor.text_drift(ref, ref[:40], min_count=3)["post_excess"] == 0.0


def test_thresholds_file_and_alert_exclusion(tmp_path):
    f = tmp_path / "t.json"
    f.write_text('{"feature_psi": 0.3, "feature_alert_exclude": ["uam_*"]}')
    t = monitor.DriftThresholds.from_file(f)
    assert (
        t.feature_psi == 0.3
        and t.feature_alert_exclude == ("uam_*",)
        and t.report_rate_ratio == 1.5
    )
    f.write_text('{"featur_psi": 0.3}')
    with pytest.raises(monitor.UserError, match="featur_psi"):
        monitor.DriftThresholds.from_file(f)


def _removals(root, recent_labels):
    """Hand-made champion scores and moderator labels for the ``confirmed_rate`` check.

    Reference window (2026-10-04..17, no champion: the 14 days before the recent window): posts
    1001-1010 removed on 10-10, labeled with weight 1, 9 harmful -> share 9/10 = 0.9. Post 1011 is
    labeled harmful but was only sent to review: not a removal, not counted.
    Recent window (10-18..20): ``recent_labels`` = (post_id, is_harmful, weight, labeled_at) for
    the posts 2001.. removed on 10-19; 2020 is removed, never labeled; 2021 is "review" (labeled
    benign, not counted).
    """
    ref_day, cur_day = (
        datetime(2026, 10, 10, 12, tzinfo=UTC),
        datetime(2026, 10, 19, 12, tzinfo=UTC),
    )
    scores, labels = [], []
    for pid in range(1001, 1012):
        decision = "remove" if pid <= 1010 else "review"
        scores.append(
            {
                "post_id": pid,
                "created_at": ref_day,
                "scored_at": ref_day,
                "probability": 0.99,
                "decision": decision,
                "model_id": "m1",
            }
        )
        labels.append(
            {
                "post_id": pid,
                "is_harmful": pid != 1010,
                "sampling_weight": 1.0,
                "queue": "reported",
                "labeled_at": ref_day + timedelta(hours=3),
            }
        )
    for pid, harmful, weight, labeled_at in recent_labels:
        # two scoring points: allow at creation, remove an hour later (the post counts once)
        for offset, decision in ((0, "allow"), (1, "remove")):
            scores.append(
                {
                    "post_id": pid,
                    "created_at": cur_day,
                    "scored_at": cur_day + timedelta(hours=offset),
                    "probability": 0.99 if offset else 0.2,
                    "decision": decision,
                    "model_id": "m1",
                }
            )
        labels.append(
            {
                "post_id": pid,
                "is_harmful": harmful,
                "sampling_weight": weight,
                "queue": "reported",
                "labeled_at": labeled_at,
            }
        )
    scores.append(
        {
            "post_id": 2020,
            "created_at": cur_day,
            "scored_at": cur_day,
            "probability": 0.99,
            "decision": "remove",
            "model_id": "m1",
        }
    )
    scores.append(
        {
            "post_id": 2021,
            "created_at": cur_day,
            "scored_at": cur_day,
            "probability": 0.6,
            "decision": "review",
            "model_id": "m1",
        }
    )
    labels.append(
        {
            "post_id": 2021,
            "is_harmful": False,
            "sampling_weight": 1.0,
            "queue": "reported",
            "labeled_at": cur_day + timedelta(hours=2),
        }
    )
    frame = pd.DataFrame(scores)
    for day, part in frame.groupby(frame["created_at"].dt.date):
        out = root / "scores" / f"dt={day.isoformat()}"
        out.mkdir(parents=True)
        part.to_parquet(out / "scores.parquet")
    pd.DataFrame(labels).to_parquet(root / "features" / "post_labels.parquet")


@pytest.mark.parametrize("drifted", [False, True])
def test_confirmed_rate_of_removals_hand_case(tmp_path, monkeypatch, drifted):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    monkeypatch.setattr(monitor_checks, "monitored_features", dict)
    _features(tmp_path, 1.0)
    arrived = datetime(2026, 10, 19, 18, tzinfo=UTC)
    late = datetime(2026, 10, 21, 5, tzinfo=UTC)  # after the run day ends: not arrived yet
    if drifted:
        # 2001-2006 harmful, 2007-2010 benign (weight 1); 2011 benign audit label (weight 2);
        # 2012 harmful but labeled after the run day: share = 6 / (10 + 2) = 0.5
        recent = [(2000 + i, i <= 6, 1.0, arrived) for i in range(1, 11)]
        recent += [(2011, False, 2.0, arrived), (2012, True, 1.0, late)]
        expected_share, expected_n = 6 / 12, 11
    else:
        # 2001-2009 harmful, 2010 benign, 2011 harmful (weight 2): share = 11 / 12
        recent = [(2000 + i, i != 10, 1.0, arrived) for i in range(1, 11)] + [
            (2011, True, 2.0, arrived)
        ]
        expected_share, expected_n = 11 / 12, 11
    _removals(tmp_path, recent)
    monitor.run_checks(date(2026, 10, 20))
    checks = pd.read_parquet(monitor.checks_path()).set_index("check")
    row = checks.loc["confirmed_rate"]
    assert row["value"] == pytest.approx(0.9 - expected_share, abs=1e-12)
    assert (row["reference_rows"], row["current_rows"]) == (10, expected_n)
    assert row["threshold"] == 0.15
    assert bool(row["drifted"]) is drifted
    assert ("confirmed_rate" in set(monitor.read_alerts(date(2026, 10, 20))["check"])) is drifted


def test_confirmed_share_and_too_few_labels(tmp_path, monkeypatch):
    labels = pd.DataFrame(
        {
            "post_id": [1, 2, 3, 4],
            "is_harmful": [True, False, True, True],
            "sampling_weight": [1.0, 3.0, 1.0, 1.0],
            "labeled_at": pd.to_datetime(
                ["2026-10-01 10:00", "2026-10-01 11:00", "2026-10-01 12:00", "2026-10-03 00:00"],
                utc=True,
            ),
        }
    )
    cutoff = datetime(2026, 10, 2, tzinfo=UTC)
    # removed 1, 2, 4, 9: 4 not arrived, 9 unlabeled -> (1*1 + 0*3) / (1 + 3) = 0.25 over 2 labels
    assert monitor.confirmed_share([1, 2, 4, 9], labels, cutoff) == (pytest.approx(0.25), 2, 1)
    share, n, harmful = monitor.confirmed_share([9], labels, cutoff)
    assert math.isnan(share) and (n, harmful) == (0, 0)
    # Fewer labeled removals than confirmed_min_labels in a window: no confirmed_rate row.
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    monkeypatch.setattr(monitor_checks, "monitored_features", dict)
    _features(tmp_path, 1.0)
    arrived = datetime(2026, 10, 19, 18, tzinfo=UTC)
    _removals(tmp_path, [(2000 + i, True, 1.0, arrived) for i in range(1, 10)])  # 9 < 10 labels
    rows = monitor.run_checks(date(2026, 10, 20))
    assert "confirmed_rate" not in {r.check for r in rows}


def test_score_drift_watches_the_student_score_every_event_gets(tmp_path, monkeypatch):
    """The served probability is 0 for the events the cascade's student screens out, so its PSI
    cannot see a shift among them; the student's score (every event has one) can."""
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    monkeypatch.setattr(monitor_checks, "monitored_features", dict)
    _features(tmp_path, 1.0)
    ref_day, cur_day = datetime(2026, 10, 10, tzinfo=UTC), datetime(2026, 10, 19, tzinfo=UTC)
    # reference: student scores 0.00, 0.01, ..., 0.99 (one per decile bin); recent: all 0.95
    scores = pd.DataFrame(
        [{"scored_at": ref_day, "student": i / 100} for i in range(100)]
        + [{"scored_at": cur_day, "student": 0.95} for _ in range(100)]
    )
    scores["score"] = 0.0  # nothing reached the heavy model on either side
    scores["model_id"], scores["decision"] = "m1", "allow"
    monitor.run_checks(date(2026, 10, 20), scores=scores)
    checks = pd.read_parquet(monitor.checks_path()).set_index("subject")
    # hand-computed PSI: the top decile holds 10% of the reference and 100% of the recent scores;
    # the nine other bins 10% vs 0 (floored at 1e-4)
    eps = 1e-4
    expected = (1.0 - 0.1) * math.log(1.0 / 0.1) + 9 * (eps - 0.1) * math.log(eps / 0.1)
    student = checks.loc["champion:student_score"]
    assert student["value"] == pytest.approx(expected, rel=1e-9)
    assert bool(student["drifted"]) and (student["reference_rows"], student["current_rows"]) == (
        100,
        100,
    )
    served = checks.loc["champion:score"]
    assert served["value"] == pytest.approx(0.0) and not bool(served["drifted"])


def test_a_day_without_data_is_an_alert_not_all_clear(tmp_path, monkeypatch, capsys):
    """Issue 19 item 8: `vigil monitor` on a day after the data ends (e.g. today, the default)
    ran 0 checks and said "0 alert(s)" with exit 0."""
    from vigil.cli import main

    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    monkeypatch.setattr(monitor_checks, "monitored_features", dict)
    _features(tmp_path, 1.0)  # data from 2026-10-01 to 2026-10-20
    rows = monitor.run_checks(date(2026, 12, 5))
    stale = {r.subject for r in rows if r.check == "input_stale"}
    assert stale == {"posts", "post_behavior"}
    assert all(r.drifted for r in rows if r.check == "input_stale")
    assert set(monitor.read_alerts(date(2026, 12, 5))["check"]) == {"input_stale"}
    capsys.readouterr()
    assert main(["monitor", "--date", "2026-12-05"]) == 1
    err = capsys.readouterr().err
    assert "2026-10-20" in err and "2026-12-05" in err
    assert main(["monitor"]) == 1  # today: long after the data
    # The last day of the data is fresh: no input alert.
    assert not any(r.check.startswith("input_") for r in monitor.run_checks(date(2026, 10, 20)))


def test_a_missing_feature_table_is_an_alert(tmp_path, monkeypatch, capsys):
    from vigil.cli import main

    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    monkeypatch.setattr(
        monitor_checks, "monitored_features", lambda: {"user_activity": ["uam_30d"]}
    )
    _features(tmp_path, 1.0)  # no user_activity table
    rows = monitor.run_checks(date(2026, 10, 20))
    missing = [r for r in rows if r.check == "input_missing"]
    assert [r.subject for r in missing] == ["user_activity"] and missing[0].drifted
    capsys.readouterr()
    assert main(["monitor", "--date", "2026-10-20"]) == 1
    assert "user_activity" in capsys.readouterr().err
