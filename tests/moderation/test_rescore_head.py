"""The re-score head (training.rescore_head): its inputs, weights and threshold on hand-made
moments with answers computed by hand, a fit that must find the evidence the heavy model misses,
and the replay deciding with the head (sim.rescore_replay, verdict="head")."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sim import rescore_replay as rr
from training import rescore_head as rh
from vigil.errors import UserError
from vigil.stream.triggers import Triggers

T0 = pd.Timestamp("2026-10-01 00:00", tz="UTC")


def moments(rows: list[tuple]) -> pd.DataFrame:
    """(post_id, heavy, student, views, reports, negative_replies, age_hours, is_harmful, weight)
    with the counters under Feast's ``post_behavior__`` names, as the replay's frames carry them."""
    cols = ["post_id", "heavy", "student", "views", "reports", "negative_replies", "age"]
    out = pd.DataFrame(rows, columns=[*cols, "is_harmful", "sampling_weight"])
    return out.rename(
        columns={
            "views": "post_behavior__views",
            "reports": "post_behavior__reports",
            "negative_replies": "post_behavior__negative_replies",
            "age": "post_behavior__post_age_hours",
        }
    )


def test_inputs_by_hand():
    m = moments([(1, 0.5, 0.8, 0, 1, 3, 0.25, True, 1.0), (2, 1.0, 0.0, 15, 0, 0, 1.0, False, 1)])
    x = rh.head_inputs(m)
    assert rh.INPUTS == (
        "student_logit",
        "log_views",
        "log_reports",
        "log_negative_replies",
        "log_post_age_hours",
    )
    # logit(0.8) = log 4; log(1 + x) of 0, 1, 3, 0.25
    assert x[0] == pytest.approx([math.log(4), 0.0, math.log(2), math.log(4), math.log(1.25)])
    # the student's score clipped at 1e-4 from 0: logit(1e-4) = -log(9999); 15 views: log 16
    assert x[1] == pytest.approx([-math.log(9999), math.log(16), 0, 0, math.log(2)])


def test_missing_counter_is_one_clear_error():
    m = moments([(1, 0.5, 0.5, 0, 0, 0, 0.0, True, 1.0)]).drop(columns="post_behavior__reports")
    with pytest.raises(UserError, match="reports"):
        rh.head_inputs(m)


def test_post_weights_share_the_sampling_weight_over_moments():
    # post 1 (weight 250, a random-queue label) has 4 moments, post 2 (weight 1.11) has 1
    rows = [(1, 0.1, 0.6, v, 0, 0, 1.0, False, 250.0) for v in (0, 16, 32, 64)]
    rows.append((2, 0.9, 0.9, 16, 1, 0, 1.0, True, 1.11))
    assert rh.post_weights(moments(rows)).tolist() == pytest.approx([62.5] * 4 + [1.11])


def test_threshold_on_each_posts_highest_moment():
    """40 harmful posts whose best moment scores 0.60..0.99 (their other moment 0.2) and 40 benign
    posts whose best moment is 0.5 (other 0.05), all weight 1, none removed by the heavy model:
    any threshold at or below 0.5 removes the benign posts (precision 1/2), so the lowest
    threshold with precision >= 0.95 in every bootstrap replicate is the lowest harmful best, 0.60
    (40 removed, all harmful)."""
    best = np.linspace(0.60, 0.99, 40)
    rows, scores = [], []
    for i, s in enumerate(best):
        rows += [(i, 0.1, 0, 0, 0, 0, 0, True, 1.0)] * 2
        scores += [0.2, s]
    for i in range(40, 80):
        rows += [(i, 0.1, 0, 0, 0, 0, 0, False, 1.0)] * 2
        scores += [0.5, 0.05]
    got = rh.choose_threshold(moments(rows), np.array(scores), 0.9, 0.95, seed=0)
    assert got["threshold"] == pytest.approx(0.60)
    assert got["n_removed"] == 40 and got["precision"] == 1.0
    assert got["posts"] == 80 and got["harmful_posts"] == 40
    assert (
        got["removed_by_heavy"] == 0 and got["added_by_head"] == got["added_by_head_harmful"] == 40
    )


def test_threshold_holds_the_heads_own_removals_to_the_target():
    """The same 80 posts, but the heavy model removes 10 benign posts (a moment at 0.95 >= 0.9)
    and 30 harmful ones (the head's 30 best): the heavy model's removals are not the head's to
    answer for; the posts it leaves are 10 harmful (best 0.60..0.69) and 30 benign (best 0.5), so
    the threshold is 0.60 again, adding the 10 harmful. With one benign post of those scoring
    0.65 instead, removals from 0.60 hold 10 harmful and 1 benign (precision 0.91 < 0.95): the
    threshold moves above it, to the lowest harmful best above 0.65 (0.66: 4 added, all harmful)."""
    best = np.linspace(0.60, 0.99, 40)
    rows, scores = [], []
    for i, s in enumerate(best):
        heavy = 0.95 if i >= 10 else 0.1
        rows += [(i, heavy, 0, 0, 0, 0, 0, True, 1.0), (i, 0.1, 0, 0, 0, 0, 0, True, 1.0)]
        scores += [0.2, s]
    for i in range(40, 80):
        heavy = 0.95 if i < 50 else 0.1
        rows += [(i, heavy, 0, 0, 0, 0, 0, False, 1.0), (i, 0.1, 0, 0, 0, 0, 0, False, 1.0)]
        scores += [0.5, 0.05]
    got = rh.choose_threshold(moments(rows), np.array(scores), 0.9, 0.95, seed=0)
    assert got["threshold"] == pytest.approx(0.60)
    assert got["removed_by_heavy"] == 40 and got["added_by_head"] == 10
    assert got["added_by_head_harmful"] == 10
    scores[-2] = 0.65  # post 79, benign, left by the heavy model
    got = rh.choose_threshold(moments(rows), np.array(scores), 0.9, 0.95, seed=0)
    assert best[6] == pytest.approx(0.66) and got["threshold"] == pytest.approx(0.66)
    assert got["added_by_head"] == got["added_by_head_harmful"] == 4


def report_world(seed: int, n: int = 400) -> pd.DataFrame:
    """Posts whose heavy score says nothing (uniform 0.3-0.7, the same for both classes) but
    whose reports do: by its second moment a harmful post has 2-5 reports, a benign one 1 report
    (every third one) or none; each post has a moment at creation (no reports yet) and one an
    hour later."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n):
        harmful = p % 4 == 0
        heavy = rng.uniform(0.3, 0.7, 2)
        reports = int(rng.integers(2, 6)) if harmful else int(p % 3 == 0)
        rows.append((p, heavy[0], 0.6, 0, 0, 0, 0.0, harmful, 1.0))
        rows.append((p, heavy[1], 0.6, 40, reports, 0, 1.0, harmful, 1.0))
    return moments(rows)


def test_fit_finds_the_reports_the_heavy_model_misses():
    """On the report world the head must remove exactly the harmful posts: the reports separate
    them (2-5 against at most 1), the heavy score cannot (0.3-0.7 for both classes, below its
    threshold 0.9). The threshold is chosen on a second draw and checked on a third. Moments
    without a report (every creation moment) never score."""
    head = rh.fit(report_world(1), report_world(2), heavy_threshold=0.9, target=0.95, seed=0)
    assert head.info["coefficients_standardized"]["log_reports"] > 0
    test = report_world(3)
    per_post = test.assign(v=head.verdict(test)).groupby("post_id")["v"].max()
    removed = per_post >= head.remove_at
    harmful = test.groupby("post_id")["is_harmful"].first()
    assert (removed == harmful).all()  # the 100 harmful posts, none of the 300 benign
    assert (head.score(test[test["post_behavior__reports"] == 0]) == 0).all()
    # the verdict: the heavy path wherever the heavy score reaches its threshold, else the head's
    reported = test[test["is_harmful"] & (test["post_behavior__reports"] > 0)].iloc[:2]
    both = reported.assign(heavy=[0.95, 0.2])
    assert head.verdict(both).tolist() == [rh.HEAVY_PATH, head.score(both.iloc[1:])[0]]
    assert 0 < head.remove_at == head.threshold <= head.score(both.iloc[1:])[0] < 1


def test_fit_on_every_routed_moment():
    """fit_on="routed": trained on every moment of the report world (400 posts x 2 moments, the
    creation moments without reports too, against the moments with a report when fitted on
    evidence: the 100 harmful posts' second moments and the benign posts' with p % 3 == 0: 134
    multiples of 3 below 400 less the 34 of 12, which are harmful); it still acts only at
    moments with evidence and removes exactly the harmful posts of a third draw."""
    evidence = rh.fit(report_world(1), report_world(2), heavy_threshold=0.9, seed=0)
    assert evidence.info["train_moments"] == 100 + (134 - 34)
    head = rh.fit(report_world(1), report_world(2), 0.9, seed=0, fit_on="routed")
    assert head.info["train_moments"] == 800 and head.info["fit_on"] == "routed"
    test = report_world(3)
    assert (head.score(test[test["post_behavior__reports"] == 0]) == 0).all()
    per_post = test.assign(v=head.verdict(test)).groupby("post_id")["v"].max()
    harmful = test.groupby("post_id")["is_harmful"].first()
    assert ((per_post >= head.remove_at) == harmful).all()
    with pytest.raises(UserError, match="fit_on"):
        rh.fit(report_world(1), report_world(2), 0.9, fit_on="everything")


def test_crossfit_threshold_on_training_and_validation_labels():
    """The cross-fitted head (thresholded on out-of-fold scores of both draws' posts) must, on the
    report world, also remove exactly the harmful posts of a third draw; its threshold rests on
    every post of both draws (800), not on the validation draw's 400."""
    val = report_world(2).assign(post_id=lambda f: f["post_id"] + 1000)  # other days' posts
    head = rh.crossfit(report_world(1), val, heavy_threshold=0.9, folds=5, seed=0)
    assert head.info["validation"]["posts"] == 800
    test = report_world(3)
    per_post = test.assign(v=head.verdict(test)).groupby("post_id")["v"].max()
    harmful = test.groupby("post_id")["is_harmful"].first()
    assert ((per_post >= head.remove_at) == harmful).all()


def test_saved_head_loads_beside_its_model(tmp_path, monkeypatch):
    """Saved as the registry's model folder file and read back by another process's import path:
    the same verdicts; a model without a head has none (None), a damaged file is one clear error."""
    import joblib

    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    head = rh.fit(report_world(1), report_world(2), heavy_threshold=0.9, seed=0)
    folder = rh.registry.root() / "m1"
    folder.mkdir(parents=True)
    joblib.dump(head, folder / rh.HEAD_FILE)
    test = report_world(3)
    assert rh.load("m1").verdict(test).tolist() == head.verdict(test).tolist()
    assert rh.load("m2") is None
    (folder / rh.HEAD_FILE).write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="cannot be read"):
        rh.load("m1")


def test_fit_needs_both_classes_in_each_split():
    one_class = report_world(2)
    one_class["is_harmful"] = False
    with pytest.raises(UserError, match="validation days"):
        rh.fit(report_world(1), one_class, heavy_threshold=0.9)


def test_replay_decides_with_the_head_column():
    """The replay's cascade reads the verdict column it is given: on the hand-made timeline of
    tests/moderation/test_rescore_replay.py (post 1 reported at minute 30, post 3 at 20), a heavy
    model that never reaches the threshold removes nothing; a head that rates a reported post
    0.9 removes both at the triggered moment of their first report, as computed there by hand:
    80 + 44 of 166 harmful views prevented."""
    rows = [(1, m, "view") for m in range(1, 21)] + [(1, 30, "report")]
    rows += [(1, m, "view") for m in range(31, 111)]
    rows += [(2, m, "view") for m in range(1, 41)]
    rows += [(3, m, "view") for m in range(1, 17)] + [(3, 20, "report")]
    rows += [(3, m, "view") for m in range(21, 71)]
    ev = pd.DataFrame(rows, columns=["post_id", "minute", "action"])
    ev["ts"] = [T0 + pd.Timedelta(minutes=m) for m in ev["minute"]]
    ev["ts_ms"] = (ev["ts"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    ev["text"] = None
    posts = pd.DataFrame({"post_id": [1, 2, 3], "created_at": [T0, T0, T0]})
    harmful = pd.Series({1: True, 2: False, 3: True})
    first_report = ev[ev["action"] == "report"].groupby("post_id")["ts"].min()

    def scorer(m: pd.DataFrame) -> pd.DataFrame:
        out = m.copy()
        reported = out["post_id"].map(first_report)
        hit = reported.notna() & (reported <= out["scored_at"])
        out["student"] = 0.9
        out["heavy"] = 0.5
        out["head"] = hit.map({True: 0.9, False: 0.1})
        out["day"] = out["scored_at"].dt.strftime("%Y-%m-%d")
        return out

    args = (posts, ev, harmful, scorer, 0.5, 0.8, (0.0, 1.0))
    heavy = rr.compare(*args, Triggers(), None)
    assert heavy["triggered"]["harmful_views_prevented"] == 0
    head = rr.compare(*args, Triggers(), None, verdict="head")
    assert head["triggered"]["harmful_views_prevented"] == 80 + 44
    assert head["triggered"]["benign_posts_removed"] == 0


# -- the reporters' reputation and the creator's labeled posts (training.rescore_moments.History)
def _history():
    from training.rescore_moments import History

    ms = lambda t: T0 + pd.Timedelta(milliseconds=t)
    labels = pd.DataFrame(
        [(10, True, 100), (11, False, 200), (12, False, 50), (13, True, 60), (20, True, 300)],
        columns=["post_id", "is_harmful", "labeled_at"],
    ).assign(labeled_at=lambda d: d["labeled_at"].map(ms))
    t0 = (T0 - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    reports = pd.DataFrame(
        [
            (5, 10, 40),
            (5, 12, 30),
            (5, 13, 20),
            (5, 20, 150),
            (5, 20, 160),
            (6, 11, 250),
            (6, 20, 260),
            (7, 20, 500),
        ],
        columns=["user_id", "post_id", "ts_ms"],
    ).assign(ts_ms=lambda d: d["ts_ms"] + t0)
    authors = {10: 1, 11: 1, 12: 2, 13: 3, 20: 1, 30: 9}
    return History(reports, labels, authors), ms


def test_history_by_hand():
    known, ms = _history()
    frame = pd.DataFrame(
        {"post_id": [20, 20, 20, 30], "scored_at": [ms(150), ms(400), ms(10), ms(400)]}
    )
    out = known.add(frame)
    # at 150: reporter 5 only; its other reports known by then: posts 10 (harmful, known at
    # max(report 40, label 100)), 12 (benign, 50), 13 (harmful, 60) -> (2 + 1) / (3 + 2) = 0.6;
    # the creator (1): post 10 harmful by then (post 11 labeled at 200, its own label left out)
    assert out["reporter_reputation"].tolist()[0] == pytest.approx(0.6)
    assert out.loc[0, ["creator_harmful_labels", "creator_benign_labels"]].tolist() == [1, 0]
    # at 400: reporters 5 (0.6, its report on this post left out though labeled at 300) and
    # 6 (post 11 benign, known at 250: (0 + 1) / (1 + 2)); reporter 7 reports at 500
    assert out["reporter_reputation"].tolist()[1] == pytest.approx((0.6 + 1 / 3) / 2)
    assert out.loc[1, ["creator_harmful_labels", "creator_benign_labels"]].tolist() == [1, 1]
    # nobody has reported yet / a post with no history: 0.5 and no labels
    assert out["reporter_reputation"].tolist()[2:] == [0.5, 0.5]
    assert out.loc[2, ["creator_harmful_labels", "creator_benign_labels"]].tolist() == [0, 0]
    assert out.loc[3, ["creator_harmful_labels", "creator_benign_labels"]].tolist() == [0, 0]
    # the head's history inputs: the reputation as is, the label counts as log(1 + x)
    x = rh.head_inputs(
        out.assign(student=0.5, views=0.0, reports=1.0, negative_replies=0.0, post_age_hours=1.0),
        history=True,
    )
    assert x[1, 5:] == pytest.approx([(0.6 + 1 / 3) / 2, math.log(2), math.log(2)])
    with pytest.raises(UserError, match="reporter_reputation"):
        rh.head_inputs(
            frame.assign(student=0.5, views=0, reports=0, negative_replies=0, post_age_hours=0),
            history=True,
        )
