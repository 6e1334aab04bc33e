"""The promotion holdout's review sample (training.holdout) on hand-made populations: every post has
an inclusion probability > 0, draws hit each post at its probability, and the Horvitz-Thompson
recall equals the brute-force recall exactly when every stratum is reviewed whole, and in
expectation otherwise. Expected values are hand-computed or brute force over the population."""

import numpy as np
import pandas as pd
import pytest

from training import holdout
from vigil.errors import UserError


def population(n: int = 200):
    """Two models on ``n`` posts: model a ranks by id, model b by reversed id within the first
    half. Harmful: every 7th post, plus posts 180-189 that both models score lowest (what only the
    uniform stratum can find). Posts 5, 50 and 150 carry a queue label."""
    ids = pd.Index(range(1, n + 1), name="post_id")
    a = pd.Series(1.0 - ids / n, index=ids)
    b = pd.Series(np.where(ids <= n // 2, ids / n, 0.0), index=ids)
    y = pd.Series((ids % 7 == 0) | ((ids >= 180) & (ids < 190)), index=ids)
    labeled = pd.Series(ids.isin([5, 50, 150]), index=ids)
    return {"a": a, "b": b}, y, labeled


def brute_force_recall(scores: pd.Series, y: pd.Series, threshold: float) -> float:
    removed = scores >= threshold
    return float((removed & y).sum() / y.sum())


def ht_recall(scores, y, weights: pd.Series, threshold: float) -> float:
    s, yy = scores.reindex(weights.index), y.reindex(weights.index)
    return float((weights * ((s >= threshold) & yy)).sum() / (weights * yy).sum())


STRATA = ((0.5, 1.0), (0.5, 0.25))


def test_every_post_has_a_positive_inclusion_probability():
    scores, _, labeled = population()
    # Budget 40, uniform share 0.5: 20 uniform, 10 per model: a's top 5 unlabeled posts (1-4, 6)
    # at pi 1 and its next 20 (7-26) at 5/20; b likewise from post 100 down (96-100 at pi 1,
    # 76-95 at 5/20).
    p = holdout.plan(scores, labeled, budget=40, uniform_share=0.5, strata=STRATA)
    pi = p.posts["pi"]
    assert (pi > 0).all() and (pi <= 1).all()
    assert (pi[labeled] == 1.0).all() and (p.posts.loc[labeled, "stratum"] == "queue").all()
    assert pi[[1, 2, 3, 4, 6]].tolist() == [1.0] * 5  # a's top unlabeled posts
    assert pi[[100, 99, 98, 97, 96]].tolist() == [1.0] * 5  # b's top unlabeled posts
    assert pi[7] == pytest.approx(0.25) and pi[95] == pytest.approx(0.25)
    # 3 labeled, 2 x 25 covered by the score strata (disjoint here): 147 posts left, 20 drawn
    uniform = p.posts["stratum"] == "uniform"
    assert int(uniform.sum()) == 147 and p.n_uniform == 20
    assert pi[uniform].unique().tolist() == pytest.approx([20 / 147])


@pytest.fixture(scope="module")
def many_draws():
    """The plan of the budget-40 design and which posts each of 2,000 seeded draws picked (a
    draws x posts 0/1 matrix, columns in the plan's post order)."""
    scores, _, labeled = population()
    p = holdout.plan(scores, labeled, budget=40, uniform_share=0.5, strata=STRATA)
    picked = np.zeros((2000, len(p.posts)), dtype=bool)
    for seed in range(len(picked)):
        picked[seed, p.posts.index.get_indexer(holdout.draw(p, seed))] = True
    return p, picked


def test_draws_hit_each_post_at_its_inclusion_probability_and_stay_in_budget(many_draws):
    p, picked = many_draws
    _, _, labeled = population()
    assert picked.sum(axis=1).max() <= 40 and not picked[:, labeled.to_numpy()].any()
    freq = picked.mean(axis=0)
    # binomial standard error at pi 20/147: sqrt(0.136 x 0.864 / 2000) = 0.0077; 5 se = 0.04
    assert np.abs(freq - p.posts["pi"].where(~labeled, 0.0).to_numpy()).max() < 0.04


def test_seeded_draw_is_reproducible():
    scores, _, labeled = population()
    p = holdout.plan(scores, labeled, budget=40, uniform_share=0.5, strata=STRATA)
    assert holdout.draw(p, 3).equals(holdout.draw(p, 3))
    assert not holdout.draw(p, 3).equals(holdout.draw(p, 4))


def test_recall_exact_when_every_post_is_reviewed():
    scores, y, labeled = population()
    # A budget larger than the population: every stratum is reviewed whole (pi = 1).
    p = holdout.plan(scores, labeled, budget=1000, uniform_share=0.5, strata=STRATA)
    assert (p.posts["pi"] == 1.0).all()
    w = 1.0 / p.posts["pi"]
    # Model a removes posts 1-60 (score >= 0.7): harmful 7, 14, ..., 56 = 8; all harmful: 28
    # multiples of 7 + 10 posts 180-189, two of which (182, 189) are multiples of 7 = 36.
    assert brute_force_recall(scores["a"], y, 0.7) == pytest.approx(8 / 36)
    assert ht_recall(scores["a"], y, w, 0.7) == pytest.approx(8 / 36)


def test_horvitz_thompson_recall_is_unbiased_over_draws(many_draws):
    p, picked = many_draws
    scores, y, labeled = population()
    removed = scores["a"] >= 0.7  # posts 1-60
    truth_hit, truth_harm = int((removed & y).sum()), int(y.sum())
    assert (truth_hit, truth_harm) == (8, 36)  # hand count, as above
    observed = picked | labeled.to_numpy()  # queue-labeled posts are always observed
    w = observed / p.posts["pi"].to_numpy()  # 1 / pi where observed, else 0
    hit_est = w @ (removed & y).to_numpy(float)
    harm_est = w @ y.to_numpy(float)
    # numerator and denominator are unbiased totals: their means over 2,000 draws are within 4
    # standard errors (sd / sqrt(2000): about 0.14 and 0.29 here) of the brute-force counts
    se_hit, se_harm = hit_est.std() / np.sqrt(len(w)), harm_est.std() / np.sqrt(len(w))
    assert se_hit < 0.2 and se_harm < 0.4
    assert hit_est.mean() == pytest.approx(truth_hit, abs=4 * se_hit)
    assert harm_est.mean() == pytest.approx(truth_harm, abs=4 * se_harm)
    # the ratio of the mean totals is the brute-force recall
    assert hit_est.mean() / harm_est.mean() == pytest.approx(8 / 36, abs=0.01)


def _answer_some(requests: pd.DataFrame, verdicts_dir):
    """A moderator who answers every second request (by post id), harmful iff id % 7 == 0."""
    import json

    lines = [
        json.dumps(
            {
                "post_id": int(pid),
                "is_harmful": bool(pid % 7 == 0),
                "harm_types": ["spam"] if pid % 7 == 0 else [],
                "reviewer": "test",
                "reviewed_at": "2026-10-10T00:00:00+00:00",
            }
        )
        for pid in requests["post_id"]
        if pid % 2 == 0
    ]
    (verdicts_dir / "test.jsonl").write_text("\n".join(lines) + "\n")


def test_review_labels_weights_and_unanswered_requests(tmp_path):
    from vigil.review.files import FileReviewQueue

    scores, _, labeled = population()
    p = holdout.plan(scores, labeled, budget=40, uniform_share=0.5, strata=STRATA)
    queue_labels = pd.DataFrame(
        {
            "post_id": [5, 50, 150],
            "is_harmful": [False, False, True],
            "is_harassment": False,
            "is_hate": False,
            "is_spam": [False, False, True],
            "is_violent_threat": False,
            "sampling_weight": [250.0, 1.0, 1.0],
            "queue": ["random", "reported", "reported"],
        }
    )
    q = FileReviewQueue(holdout.QUEUE, 40, root=tmp_path, answer=_answer_some)
    frame, summary = holdout.review(p, queue_labels, q, seed=1)
    drawn = holdout.draw(p, 1)
    answered = [i for i in drawn if i % 2 == 0]
    assert summary["requested"] == len(drawn) and summary["review_sample"] == len(answered)
    assert summary["pending"] == len(drawn) - len(answered) == q.pending
    assert summary["queue"] == 3
    reviewed = frame[frame["queue"] == holdout.QUEUE].set_index("post_id")
    share = len(answered) / len(drawn)
    # answered posts stand for all drawn: weight 1 / (pi x share answered)
    expected = 1.0 / (p.posts["pi"][answered] * share)
    assert reviewed["sampling_weight"].to_numpy() == pytest.approx(expected.to_numpy())
    assert reviewed["is_harmful"].tolist() == [i % 7 == 0 for i in answered]
    # queue labels are known (pi = 1): weight 1, not their queue's sampling weight
    known = frame[frame["queue"] != holdout.QUEUE].set_index("post_id")
    assert known["sampling_weight"].tolist() == [1.0, 1.0, 1.0]
    w = frame["sampling_weight"].to_numpy()
    assert summary["effective_n"] == pytest.approx(w.sum() ** 2 / (w**2).sum())
    requests = pd.read_parquet(tmp_path / "requests" / f"{holdout.QUEUE}.parquet")
    assert sorted(requests["post_id"]) == sorted(drawn)


def test_budget_too_small_for_the_uniform_stratum_is_a_user_error():
    scores, _, labeled = population()
    with pytest.raises(UserError, match="raise holdout_review_budget"):
        # 1 uniform review planned, 3 for the models: 1 each, but strata whose shares add up to
        # more than 1 draw round(0.6) = 1 per stratum, 2 per model: the whole budget of 4
        holdout.plan(scores, labeled, budget=4, uniform_share=0.25, strata=((0.6, 1.0),) * 2)
    with pytest.raises(UserError, match="strictly between 0 and 1"):
        holdout.plan(scores, labeled, budget=40, uniform_share=1.0)
