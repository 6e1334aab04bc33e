"""The score audit's second review (training.audit, ``second_review``; TrainConfig
``audit_second_review``) on hand-made posts, labels and verdicts, with the file review queue:
which posts get a second review, what a disagreement does, and its effect on the threshold."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from training import audit
from training.config import TrainConfig, load
from training.train import queue_threshold
from vigil.review.files import FileReviewQueue


def answerer(verdicts: dict[int, bool]):
    """Moderators who answer every request from ``verdicts`` (post id -> harmful)."""

    def answer(requests: pd.DataFrame, folder) -> None:
        lines = [
            {
                "post_id": int(p),
                "is_harmful": verdicts[int(p)],
                "harm_types": ["hate"] if verdicts[int(p)] else [],
                "reviewer": "ana",
                "reviewed_at": "2026-10-05T09:00:00Z",
            }
            for p in requests["post_id"]
        ]
        (folder / f"answers-{len(list(folder.iterdir()))}.jsonl").write_text(
            "".join(json.dumps(x) + "\n" for x in lines)
        )

    return answer


# Twelve posts; model a ranks post 1 highest (score 13 - id), model b post 12 (score id).
IDS = pd.Index(range(1, 13))
SCORES = {"a": pd.Series(13.0 - IDS, index=IDS), "b": pd.Series(IDS.astype(float), index=IDS)}
# Queue labels: post 2 labeled benign (a queue error: its review says harmful), 4 and 9 harmful,
# 11 benign (the review agrees).
LABELS = pd.Series({2: False, 4: True, 9: True, 11: False})
VERDICTS = {1: True, 2: True, 3: False, 10: True, 11: False, 12: True}


def run(tmp_path, second_review: bool):
    q = FileReviewQueue("score_audit", budget=100, root=tmp_path, answer=answerer(VERDICTS))
    result, floors = audit.run(
        SCORES, LABELS, q, budget=2, seed=3, strata=((1.0, 1.0),), second_review=second_review
    )
    return q, result, floors


def test_threshold_region_is_the_first_strata_by_hand():
    labeled = pd.Series(IDS.isin(LABELS.index), index=IDS)
    plans = {m: audit.design(s, labeled, 2, ((1.0, 1.0),))[0] for m, s in SCORES.items()}
    # a: unlabeled posts by score 1, 3, 5, ...: its first stratum is posts 1 and 3 (lowest score
    # 10) -> posts 1, 2, 3; b: unlabeled 12, 10, 8, ...: posts 12 and 10 (lowest score 10) ->
    # posts 10, 11, 12.
    region = audit.threshold_region(plans, SCORES)
    assert sorted(region.index[region]) == [1, 2, 3, 10, 11, 12]


def test_second_review_of_the_queue_labels_in_the_region(tmp_path):
    q, result, _ = run(tmp_path, second_review=True)
    # Drawn: 1, 3 (a) and 12, 10 (b); second reviews: the queue-labeled posts in the region, 2
    # and 11 (4 and 9 lie outside it). Six reviews paid for.
    assert q.used == 6
    requests = pd.read_parquet(tmp_path / "requests" / "score_audit.parquet")
    second = requests[requests["reason"] == audit.SECOND_REVIEW]
    assert sorted(second["post_id"]) == [2, 11]
    assert second["inclusion_probability"].tolist() == [1.0, 1.0]
    # Post 2: queue benign, review harmful -> unobserved; post 11: both benign -> the label stands.
    assert result.loc[2, "source"] == "disagree" and not result.loc[2, "observed"]
    assert math.isnan(result.loc[2, "y"]) and result.loc[2, "second_review"] == 1.0
    assert result.loc[11, "source"] == "queue" and result.loc[11, "y"] == 0.0
    assert result.loc[11, "second_review"] == 0.0 and result.loc[[2, 11], "pi"].tolist() == [1, 1]
    # Outside the region the queue labels stand unreviewed.
    assert result.loc[[4, 9], "y"].tolist() == [1.0, 1.0]
    assert result.loc[[4, 9], "second_review"].isna().all()
    # The audit's own draws are untouched: 1, 10, 12 harmful, 3 benign, pi 1.
    assert result.loc[[1, 3, 10, 12], "y"].tolist() == [1.0, 0.0, 1.0, 1.0]
    assert result.loc[[1, 3, 10, 12], "source"].eq("score_audit").all()


def test_off_by_default_no_second_review(tmp_path):
    assert TrainConfig().audit_second_review is False
    q, result, _ = run(tmp_path, second_review=False)
    assert q.used == 4
    requests = pd.read_parquet(tmp_path / "requests" / "score_audit.parquet")
    assert sorted(requests["post_id"]) == [1, 3, 10, 12]
    assert result.loc[2, "source"] == "queue" and result.loc[2, "y"] == 0.0
    assert not (result["source"] == "disagree").any()


def test_unanswered_second_reviews_leave_the_queue_labels(tmp_path):
    # The moderators answer only the audit's draws: posts 2 and 11 keep their queue labels.
    drawn_only = {k: v for k, v in VERDICTS.items() if k not in (2, 11)}

    def answer(requests, folder):
        requests = requests[requests["post_id"].isin(list(drawn_only))]
        if len(requests):
            answerer(drawn_only)(requests, folder)

    q = FileReviewQueue("score_audit", budget=100, root=tmp_path, answer=answer)
    result, _ = audit.run(SCORES, LABELS, q, 2, 3, ((1.0, 1.0),), second_review=True)
    assert q.used == 6 and q.pending == 2
    assert result.loc[[2, 11], "y"].tolist() == [0.0, 0.0]
    assert result.loc[[2, 11], "source"].eq("queue").all()


def test_one_queue_error_at_the_top_caps_the_threshold_until_reviewed(tmp_path):
    # 30 truly harmful posts ranked 1..30 by the model (scores 99..70), every one queue-labeled
    # harmful except post 2 (a queue error: benign); below them 5 unlabeled posts (scores
    # 50..46), the audit's first stratum (budget 5, rate 1), reviewed benign, so the threshold
    # region is every post. The second reviewers call posts 1..30 harmful. Wilson, target 0.9:
    # with post 2 counted benign the removed set's bound is below 0.9 at every size (n = 30:
    # k = 29, bound 0.8636 by hand; n = 1: 1 / (1 + 1.645^2) = 0.270), so nothing is removed.
    # With the second review post 2 drops out: 29 harmful of 29, bound 29 / (29 + 1.645^2)
    # = 0.9147 >= 0.9, and one benign more (29 of 30) fails: the 29 are removed, threshold 70.
    ids = pd.Index(range(1, 36))
    scores = {"m": pd.Series(np.r_[100.0 - np.arange(1, 31), 81.0 - np.arange(31, 36)], ids)}
    labels = pd.Series(True, index=range(1, 31))
    labels[2] = False
    verdicts = {i: i <= 30 for i in ids}
    cfg = load(threshold_method="wilson", target_precision=0.9)
    z = cfg.confidence_z

    def wilson(k, n):
        p = k / n
        c = p + z * z / (2 * n)
        return (c - z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)

    assert wilson(29, 30) == pytest.approx(0.8636, abs=1e-4)
    assert wilson(1, 1) == pytest.approx(0.270, abs=1e-3)
    assert wilson(29, 29) == pytest.approx(29 / (29 + z * z)) == pytest.approx(0.9147, abs=1e-4)
    removed = {}
    for second in (False, True):
        root = tmp_path / str(second)
        q = FileReviewQueue("score_audit", 100, root=root, answer=answerer(verdicts))
        result, floors = audit.run(scores, labels, q, 5, 3, ((1.0, 1.0),), second_review=second)
        assert floors["m"] == -math.inf
        assert q.used == (35 if second else 5)  # 5 drawn + 30 second reviews
        obs = result[result["observed"]]
        pm = pd.DataFrame(
            {"score": scores["m"][obs.index], "y": obs["y"], "w": 1.0 / obs["pi"]},
            index=obs.index,
        )
        removed[second] = queue_threshold(pm, cfg)
    assert removed[False]["n_removed"] == 0 and removed[False]["threshold"] == math.inf
    assert removed[True]["n_removed"] == 29 and removed[True]["threshold"] == 70.0
    assert removed[True]["lower_bound"] == pytest.approx(29 / (29 + z * z))
