"""Mention examples, pair features and labels on a hand-made lake (values worked out by hand)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training import mentions

T0 = pd.Timestamp("2026-10-01T00:00:00Z")


def _ev(i, minute, user, action, post=None, target=None, text=None):
    return {
        "event_id": f"e{i}",
        "event_ts": T0 + pd.Timedelta(minutes=minute),
        "user_id": user,
        "action": action,
        "post_id": post,
        "target_user_id": target,
        "text": text,
    }


def _lake(tmp_path, events, labels=None):
    (tmp_path / "events" / "dt=2026-10-01").mkdir(parents=True)
    (tmp_path / "users").mkdir()
    pd.DataFrame(events).to_parquet(
        tmp_path / "events" / "dt=2026-10-01" / "events.parquet", coerce_timestamps="us"
    )
    users = pd.DataFrame(
        {"user_id": [1, 2, 3, 4], "handle": ["ann", "bob", "cat", "dan"], "created_at": T0}
    )
    users.to_parquet(tmp_path / "users" / "users.parquet", coerce_timestamps="us")
    if labels is not None:
        (tmp_path / "labels").mkdir()
        pd.DataFrame(labels).to_parquet(tmp_path / "labels" / "labels.parquet")
    return tmp_path


def test_pair_features_and_labels_by_hand(tmp_path):
    events = [
        _ev(1, 0, 2, "follow", target=1),  # bob follows ann
        _ev(2, 1, 1, "follow", target=2),  # ann follows bob ...
        _ev(3, 2, 1, "unfollow", target=2),  # ... and unfollows: no longer
        _ev(4, 5, 1, "post", post=10, text="hello world"),
        _ev(5, 6, 2, "like", post=10, target=1),  # bob -> ann interaction
        _ev(6, 7, 3, "post", post=11, text="@ann hi"),  # cat mentions ann
        _ev(7, 8, 1, "block", target=2),  # ann blocked bob before (prior negative)
        _ev(8, 10, 2, "post", post=12, text="@ann you again?"),  # the mention under test
        _ev(9, 30, 1, "mute", target=2),  # ann mutes bob 20 min later: a reaction
        _ev(10, 40, 4, "post", post=13, text="@bob nice @dan"),  # self-mention dropped
        _ev(11, 40 + 25 * 60, 2, "report", post=13, target=4),  # 25 h later: outside 24 h
    ]
    df = mentions.build(_lake(tmp_path, events)).set_index("mention_id")
    assert sorted(df.index) == ["e10", "e6", "e8"]  # e10 names bob only (dan is the author)
    m = df.loc["e8"]
    assert (m["author_id"], m["target_id"], m["post_id"]) == (2, 1, 12)
    assert bool(m["author_follows_target"]) is True
    assert bool(m["target_follows_author"]) is False
    assert m["prior_author_to_target"] == 1  # the like
    assert m["prior_target_to_author"] == 0
    assert m["prior_target_negative"] == 1  # the block at minute 8
    assert m["others_mentioning_target_24h"] == 1  # cat at minute 7
    assert bool(m["y"]) and m["label_source"] == "target_reaction"
    assert not df.loc["e6", "y"] and df.loc["e6", "label_source"] == "none"
    assert not df.loc["e10", "y"]  # bob's report came after the 24 h window


def test_moderator_label_wins(tmp_path):
    events = [
        _ev(1, 0, 2, "post", post=12, text="@ann you again?"),
        _ev(2, 5, 1, "block", target=2),
        _ev(3, 6, 3, "post", post=13, text="saw @ann at the park"),
    ]
    labels = {"post_id": [12, 13], "is_harmful": [False, True]}
    df = mentions.build(_lake(tmp_path, events, labels)).set_index("post_id")
    assert not df.loc[12, "y"] and df.loc[12, "label_source"] == "moderator"
    assert df.loc[13, "y"] and df.loc[13, "label_source"] == "moderator"


def test_model_is_seeded_and_combine_by_hand():
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame({f: rng.integers(0, 3, n) for f in mentions.PAIR_FEATURES})
    df["is_reply"] = False
    df["text"] = np.where(rng.random(n) < 0.5, "@x you again", "@x hello")
    df["y"] = (df["prior_target_negative"] > 0) & (df["text"] == "@x you again")
    a = mentions.score(mentions.fit(df, seed=3), df)
    b = mentions.score(mentions.fit(df, seed=3), df)
    assert np.array_equal(a, b)
    assert a[df["y"]].mean() > a[~df["y"]].mean()
    # post 0.4 / 0.8 = 0.5, mention 0.9 / 0.6 = 1.5 -> 1.5; no mention (nan) keeps 0.9 / 0.8
    out = mentions.combine([0.4, 0.9], 0.8, [0.9, np.nan], 0.6)
    assert np.allclose(out, [1.5, 1.125])


# -- the operating point (threshold rule), by hand ----------------------------------------------
Z2 = 1.645**2  # Wilson with p = 1: lower bound = n / (n + z^2)


def test_day_folds_are_contiguous_blocks():
    days = [f"2026-10-{d:02d}" for d in range(10, 0, -1)]  # given out of order
    folds = mentions.day_folds(days, 4)
    # i * 4 // 10 for i = 0..9 over the sorted days: blocks of 3, 2, 3, 2
    assert [folds[f"2026-10-{d:02d}"] for d in range(1, 11)] == [0, 0, 0, 1, 1, 2, 2, 2, 3, 3]


def test_cross_fit_scores_never_score_a_row_with_a_model_that_saw_it():
    df = pd.DataFrame({"row": range(6), "y": [1, 0, 1, 1, 0, 0]})
    fold = np.array([0, 0, 1, 1, 2, 2])

    def fit_fn(train, seed):  # the "model" = the rows it saw and their mean label
        return set(train["row"]), train["y"].mean()

    def score_fn(model, rows):
        seen, mean = model
        return np.array([mean + (100.0 if r in seen else 0.0) for r in rows["row"]])

    out = mentions.cross_fit_scores(df, fold, fit_fn=fit_fn, score_fn=score_fn)
    # fold 0 scored by rows 2-5 (y 1,1,0,0): 0.5; fold 1 by rows 0,1,4,5: 0.25; fold 2 by 0-3: 0.75
    assert np.allclose(out, [0.5, 0.5, 0.25, 0.25, 0.75, 0.75])


def _frame(sources, ys, weights):
    return pd.DataFrame({"label_source": sources, "y": ys, "label_weight": weights})


def test_threshold_rule_counts_only_weighted_moderator_labels():
    # 60 moderator positives (scores 0.99 .. 0.40); above them a 'none' mention (a target who did
    # not react: not a benign label) and a target reaction, both ignored; one benign random-queue
    # label (weight 250) at 0.30, below every positive.
    pos = list(np.round(np.linspace(0.99, 0.40, 60), 4))
    scores = [1.0, 0.995, *pos, 0.30]
    frame = _frame(
        ["none", "target_reaction", *["moderator"] * 60, "moderator"],
        [False, True, *[True] * 60, False],
        [np.nan, np.nan, *[1.0] * 60, 250.0],
    )
    out = mentions.choose_threshold(scores, frame)
    # the 60 positives: precision 1, lower bound 60 / (60 + z^2) = 0.9569 >= 0.95; adding the
    # benign label: precision 60 / 310
    assert out["threshold"] == 0.40 and out["n_removed"] == 60
    assert abs(out["lower_bound"] - 60 / (60 + Z2)) < 1e-9
    assert (out["moderator_labels"], out["moderator_positive"]) == (61, 60)


def test_threshold_rule_needs_52_clean_labels():
    # with precision 1 the bound n / (n + z^2) first reaches 0.95 at n = 52 (51: 0.9496)
    assert 52 / (52 + Z2) >= 0.95 > 51 / (51 + Z2)
    for n, qualifies in ((51, False), (52, True)):
        scores = list(np.linspace(0.9, 0.5, n))
        frame = _frame(["moderator"] * n, [True] * n, [1.11] * n)  # equal weights: n_eff = n
        out = mentions.choose_threshold(scores, frame)
        assert bool(np.isfinite(out["threshold"])) is qualifies
        assert out["n_removed"] == (n if qualifies else 0)
    # one heavy benign label (weight 250) among 100 clean ones at the top blocks every threshold
    # that includes it: above it only 10 positives (bound 10 / 12.7 < 0.95)
    scores = list(np.linspace(0.99, 0.9, 10)) + [0.85] + list(np.linspace(0.8, 0.1, 90))
    ys = [True] * 10 + [False] + [True] * 90
    frame = _frame(["moderator"] * 101, ys, [1.0] * 10 + [250.0] + [1.0] * 90)
    assert not np.isfinite(mentions.choose_threshold(scores, frame)["threshold"])


class _Queue:
    """A review queue answering from a dict (post_id -> harmful)."""

    def __init__(self, verdicts):
        self.verdicts, self.asked = verdicts, []

    def review(self, post_ids, reason="", inclusion_probability=None):
        self.asked += list(post_ids)
        return pd.DataFrame(
            {"post_id": list(post_ids), "is_harmful": [self.verdicts[p] for p in post_ids]}
        )


def test_audit_threshold_by_hand():
    # 60 queue-labeled harmful posts on top (scores 1.0 .. 0.901); unlabeled below: 2 harmful
    # (0.85, 0.84), 4 harmful (0.80 .. 0.77), 10 benign (0.70 .. 0.61), 5 more (0.50 .. 0.46).
    # Budget 4, strata (share, rate) (0.5, 1), (0.25, 0.25), (0.25, 0.1): the top 2 unlabeled all
    # (pi 1), 1 of the next 4 (pi 1/4), 1 of the next 10 (pi 1/10); the floor = 0.50.
    lab = pd.Series(np.round(1.0 - np.arange(60) * 0.00167, 5), index=range(1, 61))
    unl = [0.85, 0.84, 0.80, 0.79, 0.78, 0.77, *np.round(np.linspace(0.70, 0.61, 10), 3)]
    unl += [0.50, 0.49, 0.48, 0.47, 0.46]
    scores = pd.concat([lab, pd.Series(unl, index=range(101, 101 + len(unl)))])
    verdicts = {p: p <= 106 for p in range(101, 101 + len(unl))}
    queue = _Queue(verdicts)
    out = mentions.audit_threshold(scores, pd.Series(True, index=lab.index), queue, budget=4)
    assert len(queue.asked) == 4 and {101, 102} <= set(queue.asked)
    assert out["floor"] == 0.50 and out["audit_reviews"] == 4 and out["audit_reviews_harmful"] == 3
    # removed set down to the drawn one of the 4 (weight 4): 62 posts of weight 1 + 1 of weight 4,
    # all harmful: n_eff = 66^2 / (62 + 16) = 55.85, bound 55.85 / (55.85 + z^2) = 0.9538 >= 0.95;
    # adding the drawn benign (weight 10): precision 66 / 76 fails.
    n_eff = 66**2 / 78
    assert out["n_removed"] == 63 and out["threshold"] in (0.80, 0.79, 0.78, 0.77)
    assert abs(out["lower_bound"] - n_eff / (n_eff + Z2)) < 1e-9


def test_audit_threshold_without_answers_removes_nothing():
    scores = pd.Series(np.linspace(1.0, 0.1, 80), index=range(80))
    queue = _Queue({})
    queue.review = lambda ids, reason="", inclusion_probability=None: pd.DataFrame(
        columns=["post_id", "is_harmful"]
    )
    out = mentions.audit_threshold(scores, pd.Series(True, index=range(60)), queue, budget=4)
    assert out["threshold"] == float("inf") and out["n_removed"] == 0


# -- the platform's mention model: metrics against the logged labels, training, registry ---------
def test_mention_metrics_by_hand():
    frame = pd.DataFrame(
        {
            "y": [True, True, True, False, False, False],
            "label_source": [
                "moderator",
                "target_reaction",
                "moderator",
                "moderator",
                "none",
                "none",
            ],
        }
    )
    scores = [0.9, 0.6, 0.2, 0.7, 0.1, 0.05]
    m = mentions.mention_metrics(frame, scores, 0.5)
    # flagged: rows 0, 1 (positive) and 3 (negative) -> precision 2/3; recall 2 of 3 positives
    assert (m["flagged"], m["positive"], m["mentions"]) == (3, 3, 6)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    # Wilson at 2 of 3: centre (2/3 + z^2/6) / (1 + z^2/3)
    z = 1.96
    centre = (2 / 3 + z**2 / 6) / (1 + z**2 / 3)
    half = z * np.sqrt((2 / 9) / 3 + z**2 / 36) / (1 + z**2 / 3)
    assert (m["precision_low"], m["precision_high"]) == pytest.approx(
        (centre - half, centre + half)
    )
    # ranking: 0.9 T, 0.7 F, 0.6 T, 0.2 T -> average precision (1 + 2/3 + 3/4) / 3
    assert m["pr_auc"] == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    assert m["recall_at_95p"] == pytest.approx(1 / 3)  # only the top mention is clean
    assert m["label_sources"] == {
        "moderator": {"mentions": 3, "positive": 2, "flagged": 2},
        "target_reaction": {"mentions": 1, "positive": 1, "flagged": 1},
        "none": {"mentions": 2, "positive": 0, "flagged": 0},
    }
    none_flagged = mentions.mention_metrics(frame, scores, float("inf"))
    assert none_flagged["flagged"] == 0 and none_flagged["recall"] == 0.0
    assert np.isnan(none_flagged["precision"])


def _days_lake(tmp_path, n_days=8):
    """Every day: bob mentions ann and ann blocks him 5 minutes later (positive); cat mentions
    dan twice and nobody reacts (negatives); dan's first mention has a benign moderator label."""
    events, labels, i = [], [], 0
    for d in range(n_days):
        base = d * 24 * 60
        for minute, user, action, post, target, text in (
            (10, 2, "post", 100 + 10 * d, None, "@ann you again? nobody asked"),
            (15, 1, "block", None, 2, None),
            (20, 3, "post", 101 + 10 * d, None, "saw @dan at the park"),
            (30, 3, "post", 102 + 10 * d, None, "@dan hello there"),
        ):
            i += 1
            events.append(_ev(i, base + minute, user, action, post, target, text))
        labels.append({"post_id": 101 + 10 * d, "is_harmful": False, "sampling_weight": 250.0})
    return _lake(tmp_path, events, labels)


def test_for_training_fits_and_grades_on_the_logged_labels(tmp_path):
    from vigil.review.files import FileReviewQueue

    lake = _days_lake(tmp_path)
    days = [f"2026-10-0{d + 1}" for d in range(8)]
    splits = {"train": days[:4], "val": days[4:6], "test": days[6:]}
    queue = FileReviewQueue(mentions.AUDIT_QUEUE, mentions.AUDIT_BUDGET, root=tmp_path / "r")
    out = mentions.for_training(lake, splits, seed=7, queue=queue)
    m = out["metrics"]
    assert out["threshold"] == float("inf")  # no review answered: the score removes nothing
    assert (m["train_mentions"], m["train_positive"]) == (18, 6)  # 6 days x 3, one reacted a day
    assert (m["mentions"], m["positive"], m["flagged"]) == (6, 2, 0)
    assert m["label_sources"]["target_reaction"] == {"mentions": 2, "positive": 2, "flagged": 0}
    assert m["label_sources"]["moderator"]["mentions"] == 2
    assert m["pr_auc"] == pytest.approx(1.0)  # the reacted mentions rank first
    too_short = {"train": days[:2], "val": days[2:3], "test": days[3:]}
    assert mentions.for_training(lake, too_short, queue=queue) is None  # < 4 days to fit on


def test_the_mention_model_is_saved_beside_the_post_models(tmp_path, monkeypatch):
    from training import registry

    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "home"))
    df = pd.DataFrame({f: [0, 1] * 10 for f in mentions.PAIR_FEATURES})
    df["is_reply"] = False
    df["text"] = ["@x hi", "@x you again"] * 10
    df["y"] = [False, True] * 10
    model = mentions.fit(df)
    registry.save(
        "m1",
        {"x": 1},
        {"feature_service": "moderation_v1"},
        extra=lambda folder: registry.save_mention(folder, {"model": model, "threshold": 0.5}),
    )
    loaded = registry.load_mention("m1")
    assert loaded["threshold"] == 0.5
    assert np.allclose(mentions.score(loaded["model"], df), mentions.score(model, df))
    registry.save("m2", {"x": 1}, {"feature_service": "moderation_v1"})
    assert registry.load_mention("m2") is None  # trained without mentions: nothing saved
