"""The net blended with the baseline (TrainConfig.net_blend): the harmful logit is the weighted
sum of the net's logit and the baseline regression's decision function, on every scoring path."""

import numpy as np
import pytest

from tests.training.conftest import make_training_set
from training import baseline
from training.config import DRY_RUN_OVERRIDES, from_dict
from training.multitask import MultiTaskModel


@pytest.fixture(scope="module")
def fitted():
    """(net, baseline, validation rows, their embeddings, training set): fitted once."""
    ts = make_training_set()
    cfg = from_dict({**DRY_RUN_OVERRIDES, "epochs": 2, "wide_ngrams": 2**10})
    train, val = ts.split("train"), ts.split("val").head(40).reset_index(drop=True)
    rng = np.random.default_rng(2)
    net = MultiTaskModel(cfg, ts.behavior_columns, ts.creator_columns).fit(
        train, rng.normal(size=(len(train), 384)).astype(np.float32)
    )
    base = baseline.fit(train, ts.numeric_columns, cfg)
    emb = rng.normal(size=(len(val), 384)).astype(np.float32)
    return net, base, val, emb, ts


def _logit(p):
    return np.log(p / (1 - p))


def test_blend_is_the_weighted_sum_of_both_logits(fitted):
    net, base, val, emb, ts = fitted
    alone = net.predict(val, emb)
    # the regression's own logit, not through predict_proba
    base_logit = base.decision_function(val[["text", *ts.numeric_columns]])
    net.blend_with(base, 0.3)
    blended = net.predict(val, emb)
    assert _logit(blended) == pytest.approx(0.7 * _logit(alone) + 0.3 * base_logit, abs=1e-6)
    net.blend_with(base, 1.0)  # all baseline
    assert net.predict(val, emb) == pytest.approx(base.predict_proba(val[base_cols(base)])[:, 1])
    net.blend_with(base, 0.0)  # off: the net alone again
    assert net.predict(val, emb) == pytest.approx(alone)
    assert net.blend is None
    with pytest.raises(ValueError, match="net_blend"):
        net.blend_with(base, 1.5)


def base_cols(base):
    return ["text", *base.named_steps["features"].transformers[2][2]]


def test_one_post_serving_path_blends_too(fitted):
    from training.online import FastHeavy

    net, base, val, emb, _ = fitted
    net.blend_with(base, 0.4)
    fast = FastHeavy.of(net)
    batch = net.predict(val, emb)
    columns = [*net.behavior_columns, *net.creator_columns]
    for i in range(5):
        row = {c: float(val.loc[i, c]) for c in columns}
        got = fast.predict_all(val.loc[i, "text"], row, emb[i : i + 1])["harmful"]
        assert got[0] == pytest.approx(batch[i], abs=1e-5)


def test_config_rejects_a_weight_outside_0_1():
    assert from_dict({"net_blend": 0.3}).net_blend == 0.3
    with pytest.raises(Exception, match="net_blend"):
        from_dict({"net_blend": -0.1})


# -- net_blend = "auto": the weight chosen on the validation labels ----------------------------------
# A hand-made validation set, one scoring event per post, unit weights. Logits (net, baseline):
#   10 harmful posts H: (3, 3)        -> blend 3 at every weight
#   B_top, benign:      (5, -5)       -> 5 - 10 a: 5, 3.5, 2, 0, -2 at a = 0, .15, .3, .5, .7
#   B_base, benign:     (-5, 13)      -> -5 + 18 a: -5, -2.3, 0.4, 4, 7.6
#   9 benign B:         (-3, -3)      -> -3
# With the isotonic threshold rule (the lowest score whose isotonic fit of y is >= 0.95), a benign
# post above the harmful block pools with it (10 harmful + 1 benign = 0.909 < 0.95): nothing is
# removed. So by hand: a = 0 and 0.15 remove nothing (B_top on top), 0.3 removes the 10 harmful
# posts (B_top at 2 and B_base at 0.4 below 3), 0.5 and 0.7 nothing (B_base on top): a = 0.3.
GRID = (0.0, 0.15, 0.3, 0.5, 0.7)


def _sig(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def _validation(rows):
    """(net logit, baseline logit, harmful) rows -> the validation frame choose_blend reads."""
    import pandas as pd

    net, base, y = (np.array(c, dtype=float) for c in zip(*rows))
    return pd.DataFrame(
        {
            "post_id": np.arange(1, len(rows) + 1),
            "multitask_net": net,
            "baseline": _sig(base),
            "is_harmful": y.astype(bool),
            "sampling_weight": 1.0,
        }
    )


HARMFUL = [(3.0, 3.0, 1)] * 10
BENIGN = [(-3.0, -3.0, 0)] * 9
B_TOP = (5.0, -5.0, 0)
B_BASE = (-5.0, 13.0, 0)


def _cfg(**more):
    return from_dict(
        {"threshold_method": "isotonic", "net_blend": "auto", "net_blend_grid": list(GRID), **more}
    )


def test_auto_chooses_the_weight_that_removes_the_most_harmful_validation_posts():
    from training.train import choose_blend

    val = _validation([*HARMFUL, B_TOP, B_BASE, *BENIGN])
    weight, table, (cal, thr, info) = choose_blend(None, val, _cfg())
    removed = {row["weight"]: row["harmful_removed_est"] for row in table}
    assert removed == {0.0: 0.0, 0.15: 0.0, 0.3: 10.0, 0.5: 0.0, 0.7: 0.0}
    assert weight == 0.3 and info is None
    assert thr["n_removed"] == 10 and thr["precision"] == 1.0
    # the chosen threshold sits on the harmful block's calibrated score: sigmoid(3) raw
    assert cal.transform([_sig(3.0)])[0] == pytest.approx(thr["threshold"])


def test_auto_ties_go_to_the_smaller_weight():
    from training.train import choose_blend

    # without B_base, a = 0.3, 0.5 and 0.7 all remove the 10 harmful posts: 0.3 (the smallest)
    val = _validation([*HARMFUL, B_TOP, *BENIGN])
    weight, table, _ = choose_blend(None, val, _cfg())
    assert [row["harmful_removed_est"] for row in table] == [0.0, 0.0, 10.0, 10.0, 10.0]
    assert weight == 0.3
    # a net that already separates the classes: every weight removes all 10; a = 0 (the net alone)
    val = _validation([*HARMFUL, *BENIGN])
    assert choose_blend(None, val, _cfg())[0] == 0.0


def _audit_info(val, uncovered):
    """The score audit's record for the hand-made posts: every post of ``val`` observed (a queue
    label, pi 1), plus ``uncovered`` posts no stratum covers (pi 0, no label)."""
    import pandas as pd

    extra = _validation(uncovered)
    extra["post_id"] += len(val)
    pop = pd.concat([val, extra], ignore_index=True)
    idx = pd.Index(pop["post_id"])
    audit = pd.DataFrame(
        {
            "pi": np.r_[np.ones(len(val)), np.zeros(len(extra))],
            "y": np.r_[val["is_harmful"].astype(float), np.full(len(extra), np.nan)],
            "source": ["queue"] * len(val) + ["none"] * len(extra),
            "phase1_rate": 1.0,
            "sampling_weight": 1.0,
        },
        index=idx,
    )
    audit["observed"] = audit["y"].notna()
    net_alone = pd.Series(_sig(pop["multitask_net"]), index=idx)
    return {
        "population": pop,
        "post_scores": {
            "baseline": pd.Series(pop["baseline"].to_numpy(), index=idx),
            "multitask": net_alone,
        },
        "audit": audit,
        # the net alone's floor: the highest net score of an uncovered post
        "floors": {"baseline": -np.inf, "multitask": float(net_alone[~audit["observed"]].max())},
        "reviews": 0,
        "pending": 0,
        "population_posts": len(pop),
    }


def test_auto_on_the_score_audit_keeps_thresholds_above_each_blends_floor():
    from training.train import choose_blend

    # U: never labeled, no audit stratum covers it (pi 0), logits (4, 1): blend 4 - 3 a =
    # 4, 3.55, 3.1, 2.5, 1.9. Its blended score is the floor below which no threshold may go
    # (the posts there have no chance of review). At a = 0.3 the floor (3.1) is above the harmful
    # block (3): nothing can be removed; at 0.5 and 0.7 the floor is below: all 10 harmful.
    # (a = 0, 0.15: B_top on top, nothing.) By hand: a = 0.5.
    val = _validation([*HARMFUL, B_TOP, *BENIGN])
    info = _audit_info(val, [(4.0, 1.0, 0)])
    weight, table, (_cal, thr, chosen) = choose_blend(info, val, _cfg())
    assert [row["harmful_removed_est"] for row in table] == [0.0, 0.0, 0.0, 10.0, 10.0]
    assert weight == 0.5
    assert chosen["floors"]["multitask"] == pytest.approx(_sig(2.5))
    assert thr["labels"] == "audit" and thr["n_removed"] == 10
    # the chosen blend's population scores are the blend's, the baseline's untouched
    assert chosen["population"]["multitask"].iloc[0] == pytest.approx(_sig(3.0))
    assert chosen["post_scores"]["baseline"].equals(info["post_scores"]["baseline"])


# -- net_blend_rule "strict" / "joint": the weights compared at the Bonferroni level --------------
# Wilson bounds (deterministic), target precision 0.8, unit weights, grid (0, 0.15, 0.3): K = 3,
# the platform's z = 1.645 (one-sided 95%), the strict level 1 - 0.05 / 3 = 0.98333, z = 2.128.
# Wilson lower bound LB(k of n, z) = (p + z^2/2n - z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n):
#                 z = 1.645   z = 2.128
#   20 of 20      0.881       0.815      (a clean block passes at both levels)
#   20 of 21      0.812       0.752
#   21 of 22      0.820       0.761      (one benign post inside: passes only at the platform's z)
#   20 of 22      0.759                  21 of 23  0.768   20 of 23  0.715   21 of 24  0.725
# Posts, logits (net, baseline) -> blend at a = 0 / 0.15 / 0.3:
#   20 harmful H     (3, 3)       3 / 3 / 3
#   harmful H_x      (-0.5, 9.5)  -0.5 / 1.0 / 2.5
#   benign B_x       (-2, 14)     -2 / 0.4 / 2.8      (just above H_x at a = 0.3 only)
#   3 benign B_low   (2.5, 0)     2.5 / 2.125 / 1.75  (above H_x at a = 0.15)
#   3 benign B_top   (5, -15)     5 / 2 / -1          (on top at a = 0)
#   9 benign         (-3, -3)     -3
# (baseline logits within +-16: mix_logits clips the baseline's probability to [1e-7, 1 - 1e-7])
STRICT_GRID = (0.0, 0.15, 0.3)
H_X = (-0.5, 9.5, 1)
B_X = (-2.0, 14.0, 0)
B_LOW = [(2.5, 0.0, 0)] * 3
B_TOP3 = [(5.0, -15.0, 0)] * 3


def _wilson_cfg(rule):
    return from_dict(
        {
            "threshold_method": "wilson",
            "target_precision": 0.8,
            "net_blend": "auto",
            "net_blend_grid": list(STRICT_GRID),
            "net_blend_rule": rule,
        }
    )


def test_strict_config_is_the_bonferroni_level_over_the_grid():
    from training.train import strict_config

    s = strict_config(_wilson_cfg("strict"))
    assert s.confidence_z == pytest.approx(2.128, abs=1e-3)  # Phi^-1(1 - 0.05 / 3)
    assert s.threshold_level == pytest.approx(1 - 0.05 / 3)
    five = strict_config(from_dict({"net_blend": "auto", "net_blend_rule": "strict"}))
    assert five.threshold_level == pytest.approx(0.99)  # bootstrap: 1 - 0.05 / 5
    assert five.confidence_z == pytest.approx(2.326, abs=1e-3)
    one = from_dict({"net_blend": "auto", "net_blend_grid": [0.3], "net_blend_rule": "strict"})
    assert strict_config(one).confidence_z == pytest.approx(one.confidence_z)


def test_a_one_post_win_bought_with_a_benign_post_does_not_move_the_weight():
    """Seed 1 of the sweep in miniature: a = 0.3 removes one harmful post more than a = 0.15
    because a benign post (B_x) sits just above it; "most" moves to 0.3, "strict" does not."""
    from training.train import choose_blend

    # a = 0: B_top on top, then 20 of 23, 21 of 24, ...: nothing passes. a = 0.15: the block
    # (20 of 20) passes at both z, then 20 of 23 (B_low), 20 of 26 (B_top), 21 of 27 (H_x) fail:
    # 20 at both.
    # a = 0.3: the block, then 20 of 21 (B_x), 21 of 22 (H_x) pass at 1.645 (21 harmful removed),
    # fail at 2.128 (the block alone: 20).
    val = _validation([*HARMFUL * 2, H_X, B_X, *B_LOW, *B_TOP3, *BENIGN])
    weight, table, (_cal, thr, _) = choose_blend(None, val, _wilson_cfg("most"))
    assert [row["harmful_removed_est"] for row in table] == [0.0, 20.0, 21.0]
    assert weight == 0.3 and thr["n_removed"] == 22
    for rule in ("strict", "joint"):
        weight, table, (_cal, thr, _) = choose_blend(None, val, _wilson_cfg(rule))
        assert [row["harmful_removed_strict"] for row in table] == [0.0, 20.0, 20.0]
        assert [row["harmful_removed_est"] for row in table] == [0.0, 20.0, 21.0]
        assert weight == 0.15  # a tie at the strict level: the smaller weight
        assert thr["n_removed"] == 20 and thr["precision"] == 1.0


def test_joint_keeps_the_strict_threshold_strict_the_platforms():
    """Only a = 0.3 removes anything; "strict" keeps its platform threshold (B_x and H_x in the
    removed set), "joint" the strict one (the clean block)."""
    from training.train import choose_blend

    # B_mid (9, -15): 9 / 5.4 / 1.8, two of them on top at a = 0.15: 20 of 22, then 20 of 25
    # (B_top), 21 of 26 (H_x) fail; at a = 0.3 they sit below H_x.
    b_mid = [(9.0, -15.0, 0)] * 2
    val = _validation([*HARMFUL * 2, H_X, B_X, *b_mid, *B_TOP3, *BENIGN])
    weight, table, (_cal, thr, _) = choose_blend(None, val, _wilson_cfg("strict"))
    assert [row["harmful_removed_strict"] for row in table] == [0.0, 0.0, 20.0]
    assert weight == 0.3
    assert thr["n_removed"] == 22 and thr["precision"] == pytest.approx(21 / 22)
    assert thr["lower_bound"] == pytest.approx(0.820, abs=1e-3)
    weight, _, (_cal, thr, _) = choose_blend(None, val, _wilson_cfg("joint"))
    assert weight == 0.3 and thr["n_removed"] == 20 and thr["precision"] == 1.0
    assert thr["lower_bound"] == pytest.approx(0.815, abs=1e-3)


def test_config_net_blend_rule():
    assert from_dict({}).net_blend_rule == "strict" and from_dict({}).net_blend == "auto"
    # isotonic has no confidence level: without a rule given it compares as "most"
    assert from_dict({"threshold_method": "isotonic"}).net_blend_rule == "most"
    assert (
        from_dict({"threshold_method": "isotonic", "net_blend_rule": "most"}).net_blend_rule
        == "most"
    )
    for bad in (
        {"net_blend_rule": "best"},
        {"net_blend_rule": "strict", "threshold_method": "isotonic"},
        {"net_blend_rule": "joint", "threshold_method": "isotonic"},
    ):
        with pytest.raises(Exception, match="net_blend_rule"):
            from_dict(bad)


def test_config_net_blend_auto_and_grid():
    cfg = from_dict({"net_blend": "auto", "net_blend_grid": [0.5, 0, 0.5]})
    assert cfg.net_blend == "auto" and cfg.net_blend_grid == (0.0, 0.5)
    assert from_dict({"net_blend": "0.3"}).net_blend == 0.3
    for bad in ({"net_blend": "best"}, {"net_blend_grid": []}, {"net_blend_grid": [0.2, 1.5]}):
        with pytest.raises(Exception, match="net_blend"):
            from_dict(bad)


@pytest.mark.slow
def test_train_with_auto_records_the_choice_and_scores_with_it(vigil_home, monkeypatch):
    """A dry-run training with net_blend "auto" on the hand-made set, thresholds from the queue
    labels, then from the score audit (verdict files by the generator's abusive words): the
    record lists every grid weight, the chosen one removes the most harmful validation posts
    (ties -> smaller), and the registered net scores with that blend."""
    import json

    import pandas as pd

    from tests.training.test_no_truth import ABUSIVE, with_population
    from training import registry
    from training.config import load
    from training.train import train

    monkeypatch.delenv("VIGIL_REVIEW_ANSWERER", raising=False)
    cfg = load(
        dry_run=True,
        target_precision=0.8,
        audit_budget=15,
        audit_prescreen_share=0.5,
        audit_prescreen_rate=1.0,
        threshold_method="wilson",
        net_blend="auto",
    )
    ts = with_population(make_training_set())
    for round_ in ("queues", "audit"):
        summary = train(cfg, training_set=ts)
        thr = summary["thresholds"]
        assert thr["multitask_labels"] == round_
        table = thr["multitask_net_blend_choice"]
        assert [row["weight"] for row in table] == list(GRID)
        est = [row["harmful_removed_est"] for row in table]
        first_best = GRID[est.index(max(est))]
        assert thr["multitask_net_blend"] == first_best
        bundle = registry.load(summary["model_id"])
        net = bundle["multitask"]
        assert (net.blend is None) == (first_best == 0.0)
        val = ts.split("val").head(20).reset_index(drop=True)
        emb = np.zeros((len(val), 384), dtype=np.float32)
        base_logit = bundle["baseline"].decision_function(val[base_cols(bundle["baseline"])])
        want = (1 - first_best) * net.net_logit(val, emb) + first_best * base_logit
        assert _logit(net.predict(val, emb)) == pytest.approx(want, abs=1e-5)
        if round_ == "queues":  # the moderators answer the audit's requests
            requests = pd.read_parquet(vigil_home / "review" / "requests" / "score_audit.parquet")
            text = ts.population.groupby("post_id")["text"].first()
            verdicts = vigil_home / "review" / "verdicts"
            verdicts.mkdir(parents=True)
            with open(verdicts / "shift-1.jsonl", "w") as f:
                for pid in requests["post_id"]:
                    harmful = bool(ABUSIVE & set(text[pid].split()))
                    row = {
                        "post_id": int(pid),
                        "is_harmful": harmful,
                        "harm_types": ["harassment"] if harmful else [],
                        "reviewer": "test",
                        "reviewed_at": "2026-10-07T09:00:00Z",
                    }
                    f.write(json.dumps(row) + "\n")
