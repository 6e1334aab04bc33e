"""The model report a reviewer reads (training.report) and the slice intervals behind it."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from training import evaluate, report


def test_recall_interval_matches_wilson_by_hand():
    # One harmful post, removed: p = 1, n = 1, z = 1.96 -> lower = (1 + z^2/2 - z sqrt(z^2/4))
    # / (1 + z^2) = 1 / (1 + z^2) = 0.20654; upper = 1.
    low, high = evaluate.recall_interval([True], [1.0])
    assert low == pytest.approx(1 / (1 + 1.96**2), abs=1e-9) and high == pytest.approx(1.0)
    # Two of four removed, equal weights: Wilson at p = 0.5, n = 4 is 0.5 -/+ 0.3745 (hand:
    # centre (0.5 + 0.4802) / 1.9604 = 0.5, half-width 1.96 sqrt(0.0625 + 0.0600) / 1.9604).
    low, high = evaluate.recall_interval([True, True, False, False], [3.0] * 4)
    half = 1.96 * math.sqrt(0.25 / 4 + 1.96**2 / 64) / (1 + 1.96**2 / 4)
    assert (low, high) == (pytest.approx(0.5 - half), pytest.approx(0.5 + half))
    assert all(math.isnan(v) for v in evaluate.recall_interval([], []))


def test_small_slices_carry_an_interval():
    posts = pd.DataFrame(
        {
            "is_harmful": [True, True, False, True],
            "removed": [True, False, False, True],
            "w": [1.0, 1.0, 10.0, 1.0],
        },
        index=[1, 2, 3, 4],
    )
    keys = pd.DataFrame({"home_country": ["BR", "US", "US", "US"]}, index=[1, 2, 3, 4])
    rows = {r["value"]: r for r in evaluate.slice_table(posts, keys, 30, 0.15)}
    br = rows["BR"]  # one harmful post, removed
    assert br["recall"] == 1.0 and br["recall_low"] == pytest.approx(0.20654, abs=1e-5)
    us = rows["US"]  # two harmful posts, one removed
    assert us["recall"] == 0.5 and us["recall_low"] < 0.5 < us["recall_high"]


def test_thresholds_read_as_one_row_per_model_and_windows_as_a_table():
    flat = {
        "baseline_threshold": 0.9,
        "baseline_labels": "queues",
        "multitask_threshold": 0.8,
        "multitask_labels": "audit",
        "multitask_audit_reviews": 12,
        "review_band_low": 0.4,
    }
    rows = report.threshold_rows(flat)
    assert rows == [
        {"model": "baseline", "labels": "queues", "threshold": 0.9},
        {"model": "multitask", "labels": "audit", "threshold": 0.8, "audit_reviews": 12},
    ]
    windows = {"train": ["2026-10-01T00:00:00+00:00", "2026-10-04T00:00:00+00:00"]}
    assert report.window_rows(windows) == [
        {"split": "train", "from": "2026-10-01T00:00:00+00:00", "to": "2026-10-04T00:00:00+00:00"}
    ]


def test_report_names_its_labels_and_describes_every_plot(tmp_path):
    rng = np.random.default_rng(0)
    test = pd.DataFrame(
        {
            "is_harmful": rng.random(200) < 0.3,
            "sampling_weight": 1.0,
            "s": rng.random(200),
        }
    )
    metrics = {
        "feature_service": "moderation_v1",
        "labels": {"train": "moderator labels", "thresholds": "queues", "test": {"reported": 7}},
        "windows": {"test": ["a", "b"]},
        "slices": [
            {"slice": "overall", "value": "all", "recall": 0.5, "flag": ""},
            {"slice": "home_country", "value": "BR", "recall": 1.0, "flag": "recall"},
        ],
    }
    path = report.write_report("m1", metrics, test, {"m": "s"}, "s", out_dir=tmp_path)
    page = path.read_text()
    assert "Labels used" in page and "reported: 7 posts" in page
    assert "<td>test</td><td>a</td><td>b</td>" in page
    images = page.count("<img ")
    assert images == 3 and page.count(" alt='") == images


Z = 1.96


def _wilson(k: float, n: float) -> tuple[float, float]:
    """Two-sided 95% Wilson interval of k successes in n, written out from the formula."""
    p = k / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / (1 + Z**2 / n)
    return centre - half, centre + half


def test_new_account_slice_by_hand():
    # Threshold 0.5; a post is removed when any of its scoring events reaches it.
    rows = [  # post, score, harmful, weight, age bucket
        (1, 0.3, True, 1.0, "<7d"),
        (1, 0.9, True, 1.0, "<7d"),  # post 1 removed at its second scoring
        (2, 0.2, True, 1.0, "<7d"),  # missed
        (3, 0.7, False, 10.0, "<7d"),  # benign, removed (weight 10)
        (4, 0.6, True, 1.0, "7-30d"),  # removed
        (5, 0.1, True, 1.0, "30-180d"),  # missed
        (6, 0.8, False, 1.0, ">180d"),  # benign, removed
        (7, 0.95, True, 1.0, ">180d"),  # removed
        (8, 0.99, True, 1.0, "unknown"),
    ]
    test = pd.DataFrame(rows, columns=["post_id", "s", "is_harmful", "sampling_weight", "age"])
    test = test.rename(columns={"age": "account_age_bucket"})
    out = {r["author_age"]: r for r in report.new_account_rows(test, {"m": ("s", 0.5)})}
    assert list(out) == ["<7d", "7-30d", ">=30d", "unknown"]
    young = out["<7d"]  # harmful 1 (removed) and 2 (missed); removed 1 (harmful) and 3 (w 10)
    assert (young["harmful_posts"], young["recall"]) == (2, 0.5)
    assert young["removed_posts"] == 2 and young["precision"] == pytest.approx(1 / 11)
    assert (young["recall_low"], young["recall_high"]) == pytest.approx(_wilson(1, 2))
    # precision interval on Kish's n = (1 + 10)^2 / (1 + 100) = 121 / 101
    assert (young["precision_low"], young["precision_high"]) == pytest.approx(
        _wilson(121 / 101 / 11, 121 / 101)
    )
    mid = out["7-30d"]
    assert (mid["recall"], mid["precision"], mid["removed_posts"]) == (1.0, 1.0, 1)
    assert mid["recall_low"] == pytest.approx(1 / (1 + Z**2))
    old = out[">=30d"]  # 30-180d and >180d together: harmful 5 (missed), 7 (removed)
    assert (old["harmful_posts"], old["recall"]) == (2, 0.5)
    assert (old["removed_posts"], old["precision"]) == (2, 0.5)
    assert (old["precision_low"], old["precision_high"]) == pytest.approx(_wilson(1, 2))
    assert out["unknown"]["harmful_posts"] == 1


def test_report_has_the_harassment_section_and_the_new_account_slice(tmp_path):
    from training import mentions

    test = pd.DataFrame(
        {
            "post_id": [1, 2, 3],
            "is_harmful": [True, False, True],
            "sampling_weight": 1.0,
            "multitask_cal": [0.9, 0.2, 0.1],
            "account_age_bucket": ["<7d", ">180d", "7-30d"],
        }
    )
    frame = pd.DataFrame(
        {"y": [True, True, False], "label_source": ["moderator", "target_reaction", "none"]}
    )
    harassment = mentions.mention_metrics(frame, [0.9, 0.1, 0.8], 0.5)
    harassment |= {"operating_point": {"labels": "queue + mention audit"}, "train_mentions": 40}
    metrics = {"thresholds": {"multitask_threshold": 0.5}, "harassment": harassment}
    page = report.write_report(
        "m1", metrics, test, {"m": "multitask_cal"}, "multitask_cal", out_dir=tmp_path
    ).read_text()
    assert "Harassment at the @mention" in page and "New accounts" in page
    for src in ("moderator", "target_reaction", "none"):
        assert f"<td>{src}</td>" in page
    assert "queue + mention audit" in page
    saved = json.loads((tmp_path / "metrics.json").read_text())
    ages = {r["author_age"]: r["recall"] for r in saved["new_accounts"]}
    assert (ages["<7d"], ages["7-30d"]) == (1.0, 0.0) and math.isnan(ages[">=30d"])
    empty = report.write_report("m2", {}, test, {"m": "multitask_cal"}, "multitask_cal", tmp_path)
    assert "No mention model was trained" in empty.read_text()
