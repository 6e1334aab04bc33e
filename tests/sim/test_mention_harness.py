"""The mention harness's replay with and without the mention score, on hand-made posts."""

import math

import numpy as np
import pandas as pd

from sim import mention_harness
from training import evaluate

T0 = pd.Timestamp("2026-10-20T00:00:00Z")
H = pd.Timedelta(hours=1)


def _events():
    # post, harmful, weight, post score at creation and 1 h later, the post's mention score
    posts = [
        (1, True, 1.0, (0.50, 0.60), 0.90),  # mention 0.9 / 0.6 = 1.5: removed at creation (with)
        (2, False, 10.0, (0.30, 0.85), 0.30),  # post 0.85 / 0.8 at 1 h: removed both ways, at 1 h
        (3, True, 1.0, (0.70, 0.70), np.nan),  # no mention: kept both ways
        (4, False, 10.0, (0.20, 0.79), 0.59),  # 0.79 / 0.8 and 0.59 / 0.6 < 1: kept
        (5, True, 1.0, (0.80, 0.10), 0.00),  # exactly at the post threshold: removed both ways
    ]
    rows = []
    for pid, harmful, w, scores, m in posts:
        for k, s in enumerate(scores):
            rows.append(
                {
                    "post_id": pid,
                    "scored_at": T0 + k * H,
                    "is_harmful": harmful,
                    "sampling_weight": w,
                    "multitask_cal": s,
                    "mention_score": m,
                }
            )
    test = pd.DataFrame(rows)
    # each post: 10 views at creation, 40 at 1 h, 100 at 2 h (the end)
    timelines = pd.DataFrame(
        [
            {"post_id": p, "event_timestamp": T0 + k * H, "views": v}
            for p in range(1, 6)
            for k, v in enumerate((10.0, 40.0, 100.0))
        ]
    )
    return test, timelines


def test_replay_with_and_without_the_mention_score_by_hand():
    test, timelines = _events()
    without, with_ = mention_harness.replay_with_mentions(
        test, timelines, "multitask_cal", 0.8, 0.6
    )
    assert sorted(without.index[without["removed"]]) == [2, 5]
    assert sorted(with_.index[with_["removed"]]) == [1, 2, 5]
    # post 1 removed at creation (10 views then): prevents 100 - 10; post 2 at 1 h: 100 - 40
    assert with_.loc[1, "views_prevented"] == 90.0 and with_.loc[2, "views_prevented"] == 60.0
    assert with_.loc[1, "removed_at"] == T0 and with_.loc[2, "removed_at"] == T0 + H
    assert with_.loc[5, "removed_at"] == T0  # 0.8 / 0.8 = 1 removes
    # precision of removals weighted by the sample: without 1 / (10 + 1), with 2 / (1 + 10 + 1)
    prec = [evaluate.replay_summary(p)["removal_precision"] for p in (without, with_)]
    assert np.allclose(prec, [1 / 11, 2 / 12])


def test_no_qualifying_mention_threshold_changes_nothing():
    test, timelines = _events()
    without, with_ = mention_harness.replay_with_mentions(
        test, timelines, "multitask_cal", 0.8, math.inf
    )
    assert without["removed"].equals(with_["removed"])


def test_campaign_posts_and_result_files(tmp_path):
    import json
    from pathlib import Path

    assert mention_harness.campaign_posts(tmp_path) == set()  # a world without campaigns
    (tmp_path / "_truth").mkdir()
    rows = [{"campaign": 0, "post_ids": [5, 7]}, {"campaign": 1, "post_ids": [9]}]
    (tmp_path / "_truth" / "harassment_campaigns.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows)
    )
    assert mention_harness.campaign_posts(tmp_path) == {5, 7, 9}
    root = Path("/r")
    assert mention_harness._result_file(root, 300).name == "mention-result.json"
    assert mention_harness._result_file(root, 300, "campaign").name == "mention-result-campaign.json"
    assert mention_harness._result_file(root, 1000, "campaign").name == (
        "mention-result-campaign-audit1000.json"
    )
