"""The score audit (training.audit), with the file review queue, and the audit-based threshold
on hand-made scores and labels, against hand-computed values."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from training import audit
from training.calibrate import bootstrap_removal_threshold
from training.config import load
from training.train import queue_threshold


def ten_posts():
    ids = pd.Index(range(1, 11), name="post_id")
    scores = pd.Series([0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5], index=ids)
    labeled = pd.Series([i in (2, 5) for i in ids], index=ids)
    return scores, labeled


def test_design_strata_probabilities_and_floor():
    scores, labeled = ten_posts()
    # Budget 4: stratum 0 gets 2 reviews at rate 1 -> the top 2 unlabeled posts (1, 3), pi = 1;
    # stratum 1 gets 2 reviews at rate 1/2 -> the next 4 unlabeled posts (4, 6, 7, 8), pi = 1/2;
    # posts 9 and 10 are never sampled: the floor is post 9's score 0.55. Labeled 2, 5: pi = 1.
    plan, floor = audit.design(scores, labeled, budget=4, strata=((0.5, 1.0), (0.5, 0.5)))
    assert floor == pytest.approx(0.55)
    assert plan["pi"].to_dict() == {
        1: 1.0,
        2: 1.0,
        3: 1.0,
        4: 0.5,
        5: 1.0,
        6: 0.5,
        7: 0.5,
        8: 0.5,
        9: 0.0,
        10: 0.0,
    }
    drawn = audit.draw(plan, seed=0)
    assert {1, 3} <= set(drawn) and len(drawn) == 4
    assert len(set(drawn) & {4, 6, 7, 8}) == 2 and not set(drawn) & {2, 5, 9, 10}
    # A budget covering every unlabeled post leaves no floor.
    _, floor = audit.design(scores, labeled, budget=100, strata=((1.0, 1.0),))
    assert floor == -math.inf


def test_union_probability():
    # Independent samples with pi 0.5 and 0.1: 1 - 0.5 x 0.9 = 0.55; with pi 1 anywhere: 1.
    out = audit.union_pi([pd.Series([0.5, 1.0, 0.0]), pd.Series([0.1, 0.2, 0.0])])
    assert out.tolist() == pytest.approx([0.55, 1.0, 0.0])


def test_horvitz_thompson_count_is_unbiased_over_draws():
    # 400 unlabeled posts; harmful iff id % 3 == 0 among the top 200 scores, else benign.
    # Independent check: the mean over 3000 draws of sum(y / pi) above a threshold inside the
    # sampled strata equals the true count there (brute force, no estimator code involved).
    ids = pd.Index(range(400))
    scores = pd.Series(1.0 - ids / 400.0, index=ids)
    y = pd.Series(((ids % 3 == 0) & (ids < 200)).astype(float), index=ids)
    labeled = pd.Series(False, index=ids)
    plan, floor = audit.design(scores, labeled, budget=60, strata=((0.5, 1.0), (0.5, 0.25)))
    # stratum 0: posts 0..29 (pi 1); stratum 1: 30 reviews over 120 posts 30..149 (pi 0.25)
    assert floor == pytest.approx(scores[150])
    t = scores[119]  # removed set = posts 0..119; true harmful count = ids 0, 3, ..., 117 = 40
    truth = int(y[scores >= t].sum())
    assert truth == 40
    yv, sv, pv = y.to_numpy(), scores.to_numpy(), plan["pi"].to_numpy()
    est = []
    for seed in range(3000):
        m = audit.draw(plan, seed).to_numpy()
        m = m[sv[m] >= t]
        est.append(float((yv[m] / pv[m]).sum()))
    # standard error of the mean: sd(est) / sqrt(3000) ~ 4.6 / 55 = 0.08
    assert np.mean(est) == pytest.approx(40, abs=0.3)


def wilson_by_hand(k, n, z=1.645):
    p = k / n
    return (p + z * z / (2 * n) - z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (
        1 + z * z / n
    )


def test_threshold_only_above_the_floor_with_audit_weights():
    cfg = load(threshold_method="wilson", target_precision=0.9)
    # Observed posts above the floor: 60 harmful (weight 1), then one benign with weight 4
    # (pi = 1/4), then 20 harmful with weight 4. Removed set = top 61 + k rows: weighted
    # precision (60 + 4k) / (64 + 4k), Kish n = (64 + 4k)^2 / (60 + 16 (k + 1)).
    y = np.array([1] * 60 + [0] + [1] * 20, dtype=float)
    w = np.array([1.0] * 60 + [4.0] * 21)
    score = np.linspace(0.99, 0.6, len(y))
    pm = pd.DataFrame({"score": score, "y": y, "w": w})
    # By hand: all 81 rows (k = 20): p = 140 / 144 = 0.97222, n = 144^2 / 396 = 52.364,
    # Wilson bound 0.9058 >= 0.9 (k = 18 is the first to pass: 0.9020; k = 17 gives 0.8999),
    # so the threshold is the lowest score.
    assert wilson_by_hand(140 / 144 * 144**2 / 396, 144**2 / 396) == pytest.approx(0.9058, abs=1e-4)
    out = queue_threshold(pm, cfg)
    assert out["threshold"] == pytest.approx(score[-1]) and out["n_removed"] == 81
    assert out["precision"] == pytest.approx(140 / 144)
    # A floor at score[70] (the audit never sampled below it) caps the candidates: the lowest is
    # score[69] (k = 9): p = 96 / 100, n = 100^2 / 220 = 45.45, bound 0.8810 < 0.9; k = 0:
    # p = 0.9375, n = 53.90, bound 0.8597; every k <= 9 fails, so only the top 60 (all
    # harmful, n = 60, bound 60 / (60 + 1.645^2) = 0.9568) qualify.
    for k in range(10):
        n = (64 + 4 * k) ** 2 / (60 + 16 * (k + 1))
        assert wilson_by_hand((60 + 4 * k) / (64 + 4 * k) * n, n) < 0.9
    capped = queue_threshold(pm, cfg, floor=score[70])
    assert capped["threshold"] == pytest.approx(score[59]) and capped["n_removed"] == 60
    assert capped["lower_bound"] == pytest.approx(60 / (60 + 1.645**2))
    # Bootstrap: with every post harmful, every replicate's precision is 1 -> lowest candidate.
    allh = bootstrap_removal_threshold(score, np.ones(len(y)), w, target=0.95, n_boot=200)
    assert allh["threshold"] == pytest.approx(score.min()) and allh["lower_bound"] == 1.0


def test_unanswered_requests_stay_unobserved_and_scale_the_answered(tmp_path):
    from vigil.review.files import FileReviewQueue

    # Ten unlabeled posts, one stratum taking the top 4 at rate 1: posts 10, 9, 8, 7 drawn.
    scores = pd.Series(np.arange(1, 11, dtype=float), index=range(1, 11))
    q = FileReviewQueue("score_audit", budget=4, root=tmp_path)
    (tmp_path / "verdicts").mkdir(parents=True)
    # Moderators answered two of the four (8 harmful, 10 benign) so far.
    lines = [
        {"post_id": 8, "is_harmful": True, "harm_types": ["hate"]},
        {"post_id": 10, "is_harmful": False, "harm_types": []},
    ]
    (tmp_path / "verdicts" / "day1.jsonl").write_text(
        "".join(
            json.dumps(x | {"reviewer": "ana", "reviewed_at": "2026-10-05T09:00:00Z"}) + "\n"
            for x in lines
        )
    )
    result, floors = audit.run(
        {"m": scores}, pd.Series(dtype=bool), q, budget=4, seed=1, strata=((1.0, 1.0),)
    )
    assert q.pending == 2 and floors["m"] == 6.0
    assert result.loc[[8, 10], "source"].tolist() == ["score_audit", "score_audit"]
    assert result.loc[[8, 10], "y"].tolist() == [1.0, 0.0]
    # Two of four answered: each answer stands for two drawn posts, pi = 1 x 2/4.
    assert result.loc[[8, 10], "pi"].tolist() == [0.5, 0.5]
    assert result.loc[[7, 9], "observed"].tolist() == [False, False]
    assert result.loc[[7, 9], "pi"].tolist() == [1.0, 1.0]
    requested = pd.read_parquet(tmp_path / "requests" / "score_audit.parquet")
    assert sorted(requested["post_id"]) == [7, 8, 9, 10]
