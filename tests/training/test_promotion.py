"""Champion/challenger rule on hand-made numbers, day splits, config file, decision log."""

import json
import math

import pytest

from training import promotion
from training.promotion import PromotionConfig, decide, headline, recent_splits
from vigil.errors import UserError


def _m(recall, views, precision, removed=100.0):
    return {
        "recall_at_95p": recall,
        "harmful_views_prevented_share": views,
        "removal_precision": precision,
        "removed_effective_n": removed,
    }


@pytest.mark.parametrize(
    "champion, challenger, promote, failed",
    [
        (_m(0.40, 0.50, 0.97), _m(0.60, 0.70, 0.96), True, []),
        # better recall, worse views prevented: keep
        (_m(0.40, 0.50, 0.97), _m(0.60, 0.45, 0.96), False, ["views_prevented_better"]),
        # better on both, but removals 90% precise over 100 removed posts: the one-sided 95%
        # Wilson upper bound is 0.9393 (hand-computed) < 0.95: keep
        (_m(0.40, 0.50, 0.97), _m(0.60, 0.70, 0.90), False, ["precision_guardrail"]),
        # the same 90% over only 10 removals is no evidence against 95% (upper bound 0.9774)
        (_m(0.40, 0.50, 0.97), _m(0.60, 0.70, 0.90, removed=10.0), True, []),
        # worse views prevented, but the champion's removals are 90% harmful over 100 posts
        # (upper bound 0.9393 < 0.95, as above): its views set no bar, promote
        (_m(0.40, 0.90, 0.90), _m(0.60, 0.50, 0.97), True, []),
        # the champion's 90% over 10 removals is no evidence against it (0.9774): keep
        (
            _m(0.40, 0.90, 0.90, removed=10.0),
            _m(0.60, 0.50, 0.97),
            False,
            ["views_prevented_better"],
        ),
        # a tie is not better
        (_m(0.40, 0.50, 0.97), _m(0.40, 0.70, 0.97), False, ["recall_better"]),
        # challenger removes nothing: precision NaN fails the guardrail
        (
            _m(0.0, 0.0, 0.97),
            _m(0.0, 0.0, math.nan),
            False,
            ["recall_better", "views_prevented_better", "precision_guardrail"],
        ),
    ],
)
def test_decide_promotes_only_when_better_on_both_and_precise(
    champion, challenger, promote, failed
):
    out = decide(champion, challenger, PromotionConfig())
    assert out["promote"] is promote
    assert sorted(k for k, ok in out["checks"].items() if not ok) == sorted(failed)


def test_decide_without_champion_promotes_and_min_gain_applies():
    assert decide(None, _m(0.1, 0.1, 0.5), PromotionConfig())["promote"] is True
    cfg = PromotionConfig(min_recall_gain=0.05)
    # +0.04 recall is below the required +0.05 gain
    assert decide(_m(0.40, 0.5, 0.97), _m(0.44, 0.9, 0.97), cfg)["promote"] is False


def test_headline_reads_train_metrics_layout():
    metrics = {
        "models": {"multitask": {"recall_at_95p": 0.5}},
        "replay": {
            "multitask": {
                "harmful_views_prevented_share": 0.25,
                "removal_precision": 1.0,
                "posts_removed": 3,
            }
        },
    }
    assert headline(metrics) == {
        "recall_at_95p": 0.5,
        "harmful_views_prevented_share": 0.25,
        "removal_precision": 1.0,
        "posts_removed": 3,
        "removed_effective_n": 3.0,  # no weights recorded: the count itself
    }
    assert math.isnan(headline({})["recall_at_95p"])


def test_recent_splits_holdout_is_last_days_and_window_before_it():
    days = [f"2026-10-{d:02d}" for d in range(1, 15)]
    s = recent_splits(days, PromotionConfig(window_days=6, holdout_days=3, val_frac=0.25))
    assert s["test"] == ["2026-10-12", "2026-10-13", "2026-10-14"]
    # 6 days before the holdout: 2026-10-06 .. 2026-10-11; round(6 * 0.25) = 2 validation days
    assert s["train"] == ["2026-10-06", "2026-10-07", "2026-10-08", "2026-10-09"]
    assert s["val"] == ["2026-10-10", "2026-10-11"]
    with pytest.raises(UserError):
        recent_splits(days[:4], PromotionConfig(holdout_days=3))


def test_config_file_overrides_and_rejects_unknown_keys(tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"window_days": 5, "precision_guardrail": 0.8}))
    cfg = PromotionConfig.from_file(f)
    assert (cfg.window_days, cfg.precision_guardrail, cfg.holdout_days) == (5, 0.8, 3)
    f.write_text(json.dumps({"windw_days": 5}))
    with pytest.raises(UserError, match="windw_days"):
        PromotionConfig.from_file(f)


def test_decisions_log_is_strict_json(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    promotion._append({"decision": "keep", "challenger_metrics": _m(0.1, math.nan, 0.9)})
    promotion._append({"decision": "promote"})
    records = promotion.read_decisions()
    assert [r["decision"] for r in records] == ["keep", "promote"]
    assert records[0]["challenger_metrics"]["harmful_views_prevented_share"] is None


def test_data_root_promotion_json_is_what_a_drift_triggered_retrain_uses(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    assert promotion.load_config() == PromotionConfig()  # no file: the defaults
    promotion.config_path().parent.mkdir(parents=True)
    promotion.config_path().write_text(json.dumps({"window_days": 6, "holdout_days": 1}))
    cfg = promotion.load_config()
    assert (cfg.window_days, cfg.holdout_days, cfg.precision_guardrail) == (6, 1, 0.95)
    promotion.config_path().write_text(json.dumps({"holdout": 1}))
    with pytest.raises(UserError, match="holdout"):
        promotion.load_config()


@pytest.mark.parametrize(
    "precision, n, expected",
    # hand-computed one-sided Wilson (z = 1.6449) upper bounds: 1 - lower bound of the failure share
    [(0.90, 100.0, 0.93929), (0.90, 10.0, 0.97737), (1.0, 20.0, 1.0)],
)
def test_precision_upper_bound_hand_values(precision, n, expected):
    assert promotion.precision_upper_bound(precision, n) == pytest.approx(expected, abs=2e-4)
    assert math.isnan(promotion.precision_upper_bound(float("nan"), 0.0))
