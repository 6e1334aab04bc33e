"""The model report a reviewer reads (training.report) and the slice intervals behind it."""

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
